import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../src/accounts/passwords.ts';
import { createAccounts } from '../../src/accounts/service.ts';
import { createThrottle } from '../../src/accounts/throttle.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createPreferenceCenter } from '../../src/consent/preference-center.ts';
import { createTerms } from '../../src/consent/terms.ts';
import { envelope } from '../../src/events/envelope.ts';
import { envelopeSchema, EVENT_TYPES, storedPayloadSchemas } from '../../src/events/schemas.ts';
import type { EventType } from '../../src/events/outbox.ts';
import { openScreenSetLibrary } from '../../src/screensets/library.ts';
import { screenSetContext } from '../../src/screensets/loader.ts';
import { createProfiling } from '../../src/screensets/profiling.ts';
import type { Storage } from '../../src/storage/database.ts';
import { openTestStorage } from '../support/database.ts';
import { testMail } from '../support/mail.ts';
import { createIdentities } from '../../src/federation/identities.ts';
import { createSecurityNotices } from '../../src/accounts/security-notices.ts';
import { signOutSessions } from '../../src/accounts/session-devices.ts';

// The payload schemas hold for what the application really writes: one account goes through
// every change that emits an event, through the real services, and each event in its outbox is
// checked against its schema, strictly (an undocumented field fails), as stored and as sent.

const silent = pino({ level: 'silent' });
const mailboxDir = mkdtempSync(path.join(os.tmpdir(), 'parley-webhook-payloads-'));
const config = loadConfig({
  env: {},
  overrides: {
    env: 'test', screensets: { dir: 'tests/fixtures/screensets-e2e' }, mail: { mailbox_dir: mailboxDir },
    accounts: { argon2: { memory_kib: 8192, iterations: 1, parallelism: 1 } },
    terms: [{ id: 'tos', version: 1, title: { en: 'Terms of service', ar: 'شروط الخدمة' }, url: 'https://example.com/terms' }],
  },
});
const library = openScreenSetLibrary({ dir: config.screensets.dir, context: screenSetContext(config), watch: false, logger: silent });

let storage: Storage;
let now = new Date('2026-06-01T10:00:00Z');
const clock = () => now;

beforeAll(async () => { storage = await openTestStorage(); });
afterAll(async () => {
  await storage?.close();
  rmSync(mailboxDir, { recursive: true, force: true });
});

describe('event payloads written by the application', () => {
  it('match their JSON Schema for every event type, as stored and as delivered', async () => {
    const { db } = storage;
    const accounts = createAccounts({
      db, config, clock, logger: silent, mail: testMail({ db, config, clock }).outbox,
      hasher: createPasswordHasher(config.accounts.argon2), throttle: createThrottle(db, config.throttle, clock),
    });
    const profiling = createProfiling({ db, config, clock, screenSets: library.current });
    let grants = [{ grantId: 'grant-1', clientId: 'spa', scopes: ['openid'] }];
    const preferenceCenter = createPreferenceCenter({
      db, config, clock, pseudonymSecret: 'a pseudonym secret for tests',
      question: (id) => profiling.question(id), screenSetOf: (id) => profiling.screenSetOf(id),
      // One app holding a grant, until the user disconnects it.
      grants: { list: async () => grants, revoke: async () => { grants = []; }, revokeAll: async () => {} },
    });

    const terms = createTerms({ db, config, clock });
    const registered = await accounts.register({
      email: `payloads-${Date.now()}@example.com`, password: 'a long and quiet river', locale: 'en',
      extras: [terms.registrationAgreement(new Set(['tos']), { locale: 'en', clientId: 'spa' })],
    });
    if (registered.outcome !== 'signed_in') throw new Error(`registration: ${registered.outcome}`);
    const accountId = registered.account.id;
    const screen = (values: Record<string, string>) => profiling.submit({
      accountId, clientId: 'spa', sessionKey: `session-${now.getTime()}`, locale: 'ar',
      pending: { setId: 'welcome', setVersion: 1, questionIds: ['favourite_drink', 'birthday'] },
      values: new Map(Object.entries(values).map(([k, v]) => [k, [v]])), declined: new Set(), consents: new Set(['personalization', 'offers']),
    });
    expect(await screen({ favourite_drink: 'tea', birthday: '1991-07-14' })).toMatchObject({ ok: true });
    now = new Date(now.getTime() + 60_000);
    expect(await screen({ favourite_drink: 'coffee', birthday: '1991-07-14' })).toMatchObject({ ok: true });
    expect(await preferenceCenter.updateAnswer({ accountId, questionId: 'favourite_drink', raw: ['tea'], locale: 'en' })).toEqual({ ok: true });
    await preferenceCenter.setCommunication(accountId, new Set(['email:news', 'sms:offers']));
    await preferenceCenter.setConsent({ accountId, purpose: 'offers', action: 'withdrawn', deleteAnswers: true, locale: 'en' });
    expect(await preferenceCenter.revokeApp(accountId, 'spa')).toBe(true);
    // Linking and unlinking an upstream identity (the account keeps its password, so it may go).
    const identities = createIdentities({ db, clock, logger: silent, revokeSessions: async () => {} });
    const identity = { provider: 'demo-id', subject: `demo-${accountId}`, email: 'someone@demo-id.test', emailVerified: true, emailVerifiedClaimed: true };
    await identities.link({ accountId, identity, reclaim: false, source: 'account' });
    await identities.unlink(accountId, 'demo-id');
    const notices = createSecurityNotices({ mail: testMail({ db, config, clock }).outbox, clock });
    await accounts.setPassword(accountId, 'another long and quiet river', (trx) => notices.record(trx, accountId, 'password_changed'));
    await signOutSessions(db, accountId, { allBut: 'this-browser' }, now, async () => 2);
    // The account's events; its mail (the verification link) shares the outbox but is no event.
    const eventsOfAccount = () => db.selectFrom('outbox_events').select(['id', 'type', 'account_id', 'payload', 'created_at'])
      .where('account_id', '=', accountId).where('type', 'not like', 'mail.%').orderBy('seq').execute();
    // Deleting the account removes its earlier events (they carry its data): read them first.
    const before = await eventsOfAccount();
    expect(await preferenceCenter.deleteAccount(accountId)).toBe(true);
    const rows = [...before, ...await eventsOfAccount()];
    const types = new Set(rows.map((r) => r.type));
    // account.imported reports an import run, not an account: tests/integration/import-writer.test.ts checks it.
    expect([...EVENT_TYPES].filter((t) => t !== 'account.imported' && !types.has(t))).toEqual([]);

    for (const row of rows) {
      const type = row.type as EventType;
      const payload = row.payload;
      const stored = storedPayloadSchemas[type].safeParse(payload);
      expect(stored.error?.issues ?? [], `${type} as stored: ${JSON.stringify(payload)}`).toEqual([]);

      const event = { id: row.id, type, accountId: row.account_id, payload, createdAt: row.created_at };
      const body: unknown = JSON.parse(JSON.stringify(envelope(event)));
      const delivered = envelopeSchema(type).safeParse(body);
      expect(delivered.error?.issues ?? [], `${type} as delivered: ${JSON.stringify(body)}`).toEqual([]);
    }
  });
});
