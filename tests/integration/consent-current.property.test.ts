import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { consentStates, consentStatus, purposeAllows, recordConsent, refreshConsentCurrent, type ConsentState } from '../../src/consent/ledger.ts';
import { createRelease } from '../../src/consent/release.ts';
import { createSegments } from '../../src/segments/service.ts';
import { screenSetSchema, type Question } from '../../src/screensets/format.ts';
import type { Storage } from '../../src/storage/database.ts';
import type { ConsentAction } from '../../src/storage/schema.ts';
import { DEFAULT_BACKEND, openTestStorage } from '../support/database.ts';

// The release rule has two forms: purposeAllows in TypeScript (tokens, userinfo, the engine) and
// the SQL of segment queries, both over consent_current. On random ledgers, written row by row
// through recordConsent or in bulk with refreshConsentCurrent (as an import writes them), the
// stored current consent must be the latest ledger row, and the two forms must agree on which
// answers may be used and on each purpose's consent state.

const NOW = new Date(Date.UTC(2026, 10, 29, 12));
const PURPOSES = ['personalization', 'offers', 'service'] as const;
const CONSENT_PURPOSES = ['personalization', 'offers'] as const;

// Offers at version 3: grants of versions 1 and 2 are outdated. Service rests on a contract.
const purposes = {
  personalization: { legal_basis: 'consent', version: 1, title: 'Personalization' },
  offers: { legal_basis: 'consent', version: 3, title: 'Offers' },
  service: { legal_basis: 'contract', version: 1, title: 'Running the service' },
} as const;
const config: Config = loadConfig({ env: {}, overrides: { env: 'test', purposes } });

interface LedgerRow { account: number; purpose: (typeof CONSENT_PURPOSES)[number]; action: ConsentAction; version: number; bulk: boolean }

const row: fc.Arbitrary<LedgerRow> = fc.record({
  account: fc.integer({ min: 0, max: 4 }),
  purpose: fc.constantFrom(...CONSENT_PURPOSES),
  action: fc.constantFrom<ConsentAction>('granted', 'withdrawn'),
  version: fc.integer({ min: 1, max: 3 }),
  bulk: fc.boolean(),
}).map((r) => ({ ...r, version: Math.min(r.version, config.purposes[r.purpose]!.version) }));

describe(`consent_current on ${DEFAULT_BACKEND.name}`, () => {
  let storage: Storage;
  beforeAll(async () => { storage = await openTestStorage(); });
  afterAll(async () => { await storage?.close(); });

  it('holds the latest ledger row, and the TypeScript and SQL release rules agree on it', async () => {
    const { db } = storage;
    let questions = new Map<string, Question>();
    const segments = createSegments({ db, config, question: (id) => questions.get(id), clock: () => NOW });

    await fc.assert(fc.asyncProperty(fc.array(row, { maxLength: 14 }), async (ledger) => {
      // Questions and accounts of this run only, so that queries see nothing else in a shared database.
      const tag = `c${randomUUID().replaceAll('-', '').slice(0, 12)}`;
      const set = screenSetSchema.parse({
        id: `${tag}-set`, title: 'Consent', trigger: ['after_login'],
        questions: PURPOSES.map((purpose) => ({ id: `${tag}_${purpose}`, type: 'boolean', purpose, label: purpose })),
      });
      questions = new Map(set.questions.map((q) => [q.id, q]));
      const accounts = Array.from({ length: 5 }, () => randomUUID());
      await db.insertInto('accounts').values(accounts.map((id) => ({
        id, email: `${id}@consent.test`, password_hash: 'unused', created_at: NOW, updated_at: NOW,
      }))).execute();
      await db.insertInto('answers').values(accounts.flatMap((id) => PURPOSES.map((purpose) => ({
        account_id: id, question_id: `${tag}_${purpose}`, value: 'true', purpose, set_id: set.id, created_at: NOW, updated_at: NOW,
      })))).execute();

      // Appended in order in one transaction, bulk runs brought into consent_current after they are inserted.
      await db.transaction().execute(async (trx) => {
        let pending: LedgerRow[] = [];
        const flush = async () => {
          if (pending.length === 0) return;
          await trx.insertInto('consent_ledger').values(pending.map((r) => ({
            subject: accounts[r.account]!, purpose: r.purpose, purpose_version: r.version, action: r.action,
            client_id: null, source: 'api' as const, locale: 'en', text_hash: 'x', at: NOW,
          }))).execute();
          await refreshConsentCurrent(trx, pending.map((r) => ({ subject: accounts[r.account]!, purpose: r.purpose })));
          pending = [];
        };
        for (const r of ledger) {
          if (r.bulk) {
            pending.push(r);
            continue;
          }
          await flush();
          // recordConsent writes the purpose's version of the day: a config of that day.
          const then = { ...config, purposes: { ...config.purposes, [r.purpose]: { ...config.purposes[r.purpose]!, version: r.version } } };
          await recordConsent(trx, then, {
            accountId: accounts[r.account]!, purpose: r.purpose, action: r.action, clientId: null, source: 'api', locale: 'en',
          }, NOW);
        }
        await flush();
      });

      const release = createRelease({
        db, config,
        currentAnswers: async () => PURPOSES.map((purpose) => ({ questionId: `${tag}_${purpose}`, value: true, purpose })),
        claimOf: () => undefined,
      });
      const members = async (condition: Parameters<typeof segments.count>[0]) =>
        new Set((await segments.accounts(condition, { purposes: [...PURPOSES] }, { limit: 100 })).accountIds);

      for (const [index, account] of accounts.entries()) {
        // The latest row per purpose, from the ledger as generated.
        const latest = new Map<string, ConsentState>();
        for (const r of ledger.filter((l) => l.account === index)) latest.set(r.purpose, { action: r.action, version: r.version, at: NOW });
        const stored = await consentStates(db, account);
        expect(new Map([...stored].map(([p, s]) => [p, [s.action, s.version]])))
          .toEqual(new Map([...latest].map(([p, s]) => [p, [s.action, s.version]])));

        const released = await release.forClient(account, PURPOSES);
        for (const purpose of PURPOSES) {
          const allowed = purposeAllows(config.purposes[purpose], latest.get(purpose));
          expect(`${tag}_${purpose}` in released.preferences, `release of ${purpose}`).toBe(allowed);
          expect((await members({ answered: `${tag}_${purpose}` })).has(account), `segment of ${purpose}`).toBe(allowed);
        }
      }
      // Each purpose's consent state, as segments filter on it, against consentStatus.
      for (const purpose of CONSENT_PURPOSES) {
        for (const state of ['granted', 'withdrawn', 'none', 'outdated'] as const) {
          const matched = await members({ all: [{ answered: `${tag}_service` }, { consent: purpose, state }] });
          const expected = accounts.filter((_, index) => {
            const last = ledger.filter((l) => l.account === index && l.purpose === purpose).at(-1);
            return consentStatus(config.purposes[purpose], last && { action: last.action, version: last.version, at: NOW }) === state;
          });
          expect([...matched].sort(), `${purpose} ${state}`).toEqual(expected.sort());
        }
      }
    }), { numRuns: 25 });
  }, 120_000);
});
