import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { consentStates, needsReconsent, purposeAllows, recordConsent, type ConsentChange } from '../../src/consent/ledger.ts';
import { eraseExpiredAnswers } from '../../src/consent/retention.ts';
import type { Storage } from '../../src/storage/database.ts';
import { openTestStorage } from '../support/database.ts';

// The consent ledger and the retention job against a real database.

let storage: Storage;
const base = loadConfig({ env: {}, overrides: { env: 'test' } });
const at = (day: number) => new Date(Date.UTC(2026, 0, day));

beforeAll(async () => { storage = await openTestStorage(); });
afterAll(async () => { await storage?.close(); });

function withVersion(version: number): Config {
  return { ...base, purposes: { ...base.purposes, offers: { ...base.purposes.offers!, version } } };
}

async function record(config: Config, change: Omit<ConsentChange, 'clientId' | 'source' | 'locale'>, day: number) {
  await storage.db.transaction().execute((trx) => recordConsent(trx, config, { ...change, clientId: null, source: 'api', locale: 'en' }, at(day)));
}

describe('the consent ledger', () => {
  it('appends grants and withdrawals and derives the current state across versions', async () => {
    const accountId = randomUUID();
    const v1 = withVersion(1);
    const v2 = withVersion(2);
    await record(v1, { accountId, purpose: 'offers', action: 'granted' }, 1);
    await record(v1, { accountId, purpose: 'offers', action: 'withdrawn' }, 2);
    await record(v1, { accountId, purpose: 'offers', action: 'granted' }, 3);
    await record(v1, { accountId, purpose: 'personalization', action: 'granted' }, 3);

    const rows = await storage.db.selectFrom('consent_ledger').select(['purpose', 'action', 'purpose_version']).where('subject', '=', accountId).orderBy('id').execute();
    expect(rows.map((r) => `${r.purpose}:${r.action}:v${r.purpose_version}`)).toEqual([
      'offers:granted:v1', 'offers:withdrawn:v1', 'offers:granted:v1', 'personalization:granted:v1',
    ]);
    let states = await consentStates(storage.db, accountId);
    expect(states.get('offers')).toMatchObject({ action: 'granted', version: 1 });
    expect(purposeAllows(v1.purposes.offers, states.get('offers'))).toBe(true);

    // The text is bumped: the old consent no longer covers it, and the user is asked again.
    expect(purposeAllows(v2.purposes.offers, states.get('offers'))).toBe(false);
    expect(needsReconsent(v2.purposes.offers, states.get('offers'))).toBe(true);
    await record(v2, { accountId, purpose: 'offers', action: 'granted' }, 4);
    states = await consentStates(storage.db, accountId);
    expect(purposeAllows(v2.purposes.offers, states.get('offers'))).toBe(true);
    expect(needsReconsent(v2.purposes.offers, states.get('offers'))).toBe(false);

    // A withdrawal is not something to renew.
    await record(v2, { accountId, purpose: 'personalization', action: 'withdrawn' }, 5);
    states = await consentStates(storage.db, accountId);
    expect(needsReconsent(v2.purposes.personalization, states.get('personalization'))).toBe(false);
    expect(purposeAllows(v2.purposes.personalization, states.get('personalization'))).toBe(false);

    const events = await storage.db.selectFrom('outbox_events').select(['type', 'payload']).where('account_id', '=', accountId).orderBy('seq').execute();
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'consent.withdrawn', 'consent.granted', 'consent.granted', 'consent.granted', 'consent.withdrawn']);
    expect(events[4]!.payload).toMatchObject({ purpose: 'offers', purpose_version: 2, legal_basis: 'consent' });
  });

  it('hashes the text the user saw, per language', async () => {
    const accountId = randomUUID();
    await storage.db.transaction().execute(async (trx) => {
      await recordConsent(trx, base, { accountId, purpose: 'offers', action: 'granted', clientId: null, source: 'api', locale: 'en' }, at(1));
      await recordConsent(trx, base, { accountId, purpose: 'offers', action: 'granted', clientId: null, source: 'api', locale: 'ar' }, at(1));
    });
    const hashes = await storage.db.selectFrom('consent_ledger').select('text_hash').where('subject', '=', accountId).orderBy('id').execute();
    expect(hashes[0]!.text_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashes[0]!.text_hash).not.toBe(hashes[1]!.text_hash);
  });

  it('treats purposes on another legal basis as allowed without consent', () => {
    expect(purposeAllows({ ...base.purposes.offers!, legal_basis: 'contract' }, undefined)).toBe(true);
    expect(purposeAllows(undefined, undefined)).toBe(false);
  });
});

describe('retention', () => {
  it('erases answers older than their purpose allows, with history and an event, and keeps the rest', async () => {
    const accountId = randomUUID();
    await storage.db.insertInto('accounts').values({ id: accountId, email: `${accountId}@example.com`, password_hash: 'x', updated_at: at(1) }).execute();
    const answer = (question: string, purpose: string, day: number) => ({
      account_id: accountId, question_id: question, value: JSON.stringify('x'), purpose, set_id: 's', created_at: at(day), updated_at: at(day),
    });
    // A purpose of this test's own: other test files share the PostgreSQL database and write answers under offers.
    await storage.db.insertInto('answers').values([answer('old_offer', 'short_lived', 1), answer('new_offer', 'short_lived', 300), answer('old_taste', 'personalization', 1)]).execute();
    await storage.db.insertInto('answer_history').values({
      account_id: accountId, question_id: 'old_offer', value: JSON.stringify('x'), purpose: 'short_lived', set_id: 's', set_version: 1,
      label: 'Old offer?', locale: 'en', client_id: null, source: 'screen', recorded_at: at(1),
    }).execute();
    const config = { ...base, purposes: { ...base.purposes, short_lived: { ...base.purposes.offers!, retention: 100 * 24 * 3600 } } };

    expect(await eraseExpiredAnswers(storage.db, config, at(302))).toBeGreaterThanOrEqual(1);
    const left = await storage.db.selectFrom('answers').select('question_id').where('account_id', '=', accountId).orderBy('question_id').execute();
    expect(left.map((r) => r.question_id)).toEqual(['new_offer', 'old_taste']);
    const history = await storage.db.selectFrom('answer_history').select(['question_id', 'value', 'source']).where('account_id', '=', accountId).orderBy('id').execute();
    // The history keeps that it was answered, and when, but not the value.
    expect(history).toEqual([{ question_id: 'old_offer', value: null, source: 'screen' }, { question_id: 'old_offer', value: null, source: 'retention' }]);
    const events = await storage.db.selectFrom('outbox_events').select(['type', 'payload']).where('account_id', '=', accountId).execute();
    expect(events).toEqual([{ type: 'answer.deleted', payload: expect.objectContaining({ question_id: 'old_offer', source: 'retention' }) }]);
  });
});
