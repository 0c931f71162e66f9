import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { storedPayloadSchemas } from '../../src/events/schemas.ts';
import type { EventType } from '../../src/events/outbox.ts';
import { consentStates } from '../../src/consent/ledger.ts';
import { readImport } from '../../src/import/read.ts';
import { createImportWriter, type ImportWriter, type RecordReport } from '../../src/import/writer.ts';
import { loadScreenSets, screenSetContext } from '../../src/screensets/loader.ts';
import type { Storage } from '../../src/storage/database.ts';
import { openTestStorage, ownDatabase } from '../support/database.ts';

// The writer against a real database (PGlite, or PostgreSQL with TEST_DATABASE_URL): the sample
// file goes in with its original times and source 'import', a second run changes nothing, a dry
// run writes nothing, and a record the database refuses fails alone, with its line.

const NOW = new Date('2026-11-01T00:00:00Z');
const config = loadConfig({ env: {}, overrides: { screensets: { dir: 'screensets' } } });
const sets = loadScreenSets('screensets', screenSetContext(config)).sets;

let storage: Storage;
let drop: () => Promise<void>;
let writer: ImportWriter;

beforeAll(async () => {
  const own = await ownDatabase('import_writer');
  drop = own.drop;
  storage = await openTestStorage(own.backend);
  writer = createImportWriter({ db: storage.db, config, clock: () => NOW, screenSets: () => sets });
});
afterAll(async () => {
  await storage?.close();
  await drop?.();
});

async function run(input: Readable, options: { dryRun?: boolean; events?: 'none' | 'all'; batchSize?: number } = {}) {
  const reports: RecordReport[] = [];
  const counts = await writer.write(readImport(input, 'parley', { now: NOW, firebaseScrypt: false }),
    { dryRun: options.dryRun ?? false, events: options.events ?? 'none', batchSize: options.batchSize }, (r) => reports.push(r));
  const failed = Object.fromEntries(reports.filter((r) => r.outcome === 'failed').map((r) => [r.at.where, r.error]));
  return { counts, reports, failed };
}

const fixture = () => createReadStream(new URL('../fixtures/import/parley-users.jsonl', import.meta.url));
const lines = (...records: object[]) => Readable.from([records.map((r) => JSON.stringify(r)).join('\n')]);

async function tableCounts() {
  const count = async (table: 'accounts' | 'identities' | 'answers' | 'answer_history' | 'consent_ledger' | 'communication_ledger' | 'outbox_events') =>
    Number((await storage.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  return {
    accounts: await count('accounts'), identities: await count('identities'), answers: await count('answers'),
    answer_history: await count('answer_history'), consent_ledger: await count('consent_ledger'),
    communication_ledger: await count('communication_ledger'), outbox_events: await count('outbox_events'),
  };
}

describe('importing the sample file', () => {
  it('creates the good lines with their original times, and reports each bad line with its number', async () => {
    const { counts, failed } = await run(fixture());
    expect(counts).toEqual({ created: 4, updated: 0, unchanged: 0, failed: 6 });
    expect(Object.keys(failed)).toEqual(['line 5', 'line 6', 'line 7', 'line 8', 'line 9', 'line 11']);
    expect(failed['line 6']).toMatch(/pasword/);

    const db = storage.db;
    const ann = await db.selectFrom('accounts').selectAll().where('external_id', '=', 'legacy-1001').executeTakeFirstOrThrow();
    expect(ann).toMatchObject({ email: 'ann.lee@example.com', name: 'Ann Lee', locale: 'de-DE', created_at: new Date('2019-04-02T10:00:00Z') });
    expect(ann.password_hash).toMatch(/^\$foreign\$2y\$10\$/);
    expect(ann.email_verified_at).not.toBeNull();
    expect(await db.selectFrom('identities').select(['provider', 'subject']).where('account_id', '=', ann.id).execute()).toEqual([{ provider: 'google', subject: '108234' }]);
    const answer = await db.selectFrom('answers').selectAll().where('account_id', '=', ann.id).executeTakeFirstOrThrow();
    expect(answer).toMatchObject({ question_id: 'brew_method', value: 'espresso', purpose: 'personalization', set_id: 'coffee', updated_at: new Date('2023-06-01T06:00:00Z') });
    const history = await db.selectFrom('answer_history').select(['value', 'source', 'recorded_at', 'locale']).where('account_id', '=', ann.id).orderBy('recorded_at').execute();
    expect(history).toEqual([
      { value: 'filter', source: 'import', recorded_at: new Date('2021-01-05T08:00:00Z'), locale: 'de-DE' },
      { value: 'espresso', source: 'import', recorded_at: new Date('2023-06-01T06:00:00Z'), locale: 'de-DE' },
    ]);
    expect(await db.selectFrom('consent_ledger').select(['purpose', 'purpose_version', 'action', 'source', 'at']).where('subject', '=', ann.id).execute())
      .toEqual([{ purpose: 'personalization', purpose_version: 1, action: 'granted', source: 'import', at: new Date('2021-01-05T08:00:00Z') }]);
    expect(await db.selectFrom('communication_ledger').select(['channel', 'topic', 'enabled', 'source', 'at']).where('account_id', '=', ann.id).execute())
      .toEqual([{ channel: 'email', topic: 'news', enabled: true, source: 'import', at: new Date('2021-01-05T08:00:00Z') }]);
    // Without email_verified, the address stays unverified; without a password, there is none.
    const bo = await db.selectFrom('accounts').selectAll().where('email', '=', 'bo@example.com').executeTakeFirstOrThrow();
    expect(bo.email_verified_at).toBeNull();
    expect(bo.password_hash).toMatch(/^\$foreign\$pbkdf2-sha256\$/);
  });

  it('changes nothing when the same file is imported again', async () => {
    const before = await tableCounts();
    const { counts } = await run(fixture(), { batchSize: 2 });
    expect(counts).toEqual({ created: 0, updated: 0, unchanged: 4, failed: 6 });
    expect(await tableCounts()).toEqual(before);
  });

  it('updates what a newer export adds, and appends to the history', async () => {
    const { counts } = await run(lines({
      external_id: 'legacy-1002', email: 'bo@example.com', email_verified: true, name: 'Bo',
      answers: [{ question_id: 'brew_method', value: 'filter', answered_at: '2024-01-01T00:00:00Z', purpose: 'personalization' }],
    }));
    expect(counts).toEqual({ created: 0, updated: 1, unchanged: 0, failed: 0 });
    const bo = await storage.db.selectFrom('accounts').selectAll().where('email', '=', 'bo@example.com').executeTakeFirstOrThrow();
    expect(bo).toMatchObject({ name: 'Bo', email_verified_at: NOW });
    expect(await storage.db.selectFrom('answer_history').select('source').where('account_id', '=', bo.id).execute()).toEqual([{ source: 'import' }]);
  });
});

describe('records the database refuses', () => {
  it('writes the rest of the batch, and names the line that failed and why', async () => {
    const { counts, failed, reports } = await run(lines(
      { external_id: 'batch-1', email: 'batch-1@example.com' },
      // Ann's Google identity: one identity belongs to one account.
      { external_id: 'batch-2', email: 'batch-2@example.com', identities: [{ provider: 'google', subject: '108234' }] },
      { external_id: 'batch-3', email: 'batch-3@example.com' },
      // The same address twice in one batch: the second line finds the first's account.
      { email: 'batch-4@example.com', name: 'Four' },
      { email: 'batch-4@example.com', name: 'Four again' },
      { email: 'batch-5@example.com', answers: [{ question_id: 'no_such_question', value: 'x', answered_at: '2024-01-01T00:00:00Z', purpose: 'personalization' }] },
    ));
    expect(counts).toEqual({ created: 3, updated: 1, unchanged: 0, failed: 2 });
    expect(failed).toEqual({
      'line 2': 'identities: one of these identities is linked to another account',
      'line 6': 'answers[0].question_id: no screen-set asks "no_such_question"',
    });
    expect(reports.map((r) => r.at.line)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await storage.db.selectFrom('accounts').select('email').where('email', 'like', 'batch-%').orderBy('email').execute())
      .toEqual(['batch-1', 'batch-3', 'batch-4'].map((b) => ({ email: `${b}@example.com` })));
  });

  it('refuses an address already imported under another external_id', async () => {
    const { failed } = await run(lines({ external_id: 'someone-else', email: 'ann.lee@example.com' }));
    expect(failed).toEqual({ 'line 1': expect.stringMatching(/^email: .*another external_id/) });
  });
});

describe('batches written at the same time', () => {
  it('lets a later line for the same account win, whether the account is new or already there', async () => {
    const named = (email: string, name: string, value: string, at: string) => ({
      email, name, answers: [{ question_id: 'brew_method', value, answered_at: at, purpose: 'personalization' }],
    });
    const steps = [['espresso', '2024-01-01'], ['filter', '2024-02-01'], ['french_press', '2024-03-01'], ['espresso', '2024-04-01'], ['filter', '2024-05-01']] as const;
    // One record per batch, each for the same account as the one before it: each batch waits
    // for the one before it to be done, and sees what it wrote.
    const fresh = 'pipe.new@example.com';
    const { counts, failed } = await run(lines(
      ...steps.map(([value, day], i) => named(fresh, `New ${i}`, value, `${day}T00:00:00Z`)),
      ...steps.map(([value, day], i) => ({ ...named('ann.lee@example.com', `Ann ${i}`, value, `${day}T12:00:00Z`), external_id: 'legacy-1001' })),
    ), { batchSize: 1 });
    expect(failed).toEqual({});
    expect(counts).toEqual({ created: 1, updated: 9, unchanged: 0, failed: 0 });
    for (const [email, name, hour] of [[fresh, 'New 4', '00'], ['ann.lee@example.com', 'Ann 4', '12']] as const) {
      const account = await storage.db.selectFrom('accounts').select(['id', 'name']).where('email', '=', email).executeTakeFirstOrThrow();
      expect(account.name).toBe(name);
      const answer = await storage.db.selectFrom('answers').select(['value', 'updated_at']).where('account_id', '=', account.id).where('question_id', '=', 'brew_method').executeTakeFirstOrThrow();
      expect(answer).toEqual({ value: 'filter', updated_at: new Date(`2024-05-01T${hour}:00:00Z`) });
      const history = await storage.db.selectFrom('answer_history').select('recorded_at').where('account_id', '=', account.id)
        .where('recorded_at', '>=', new Date('2024-01-01T00:00:00Z')).orderBy('id').execute();
      expect(history.map((h) => h.recorded_at.toISOString().slice(0, 10))).toEqual(steps.map(([, day]) => day));
    }
  });

  it('reads an account the batch before it changed only once that batch is done, even when they match it by different keys', async () => {
    // The first line moves Cleo's account (found by its external id) to a new address; the next
    // batch's line has her old address and no external id. As one after the other: no account
    // has the old address any more, so the second line is a new account.
    await run(lines({ external_id: 'cleo-1', email: 'cleo.old@example.com', name: 'Cleo' }));
    const { counts, failed } = await run(lines(
      { external_id: 'cleo-1', email: 'cleo.new@example.com', name: 'Cleo' },
      { email: 'cleo.old@example.com', name: 'Someone with her old address' },
    ), { batchSize: 1 });
    expect(failed).toEqual({});
    expect(counts).toEqual({ created: 1, updated: 1, unchanged: 0, failed: 0 });
    expect(await storage.db.selectFrom('accounts').select(['external_id', 'email', 'name']).where('email', 'like', 'cleo.%').orderBy('email').execute()).toEqual([
      { external_id: 'cleo-1', email: 'cleo.new@example.com', name: 'Cleo' },
      { external_id: null, email: 'cleo.old@example.com', name: 'Someone with her old address' },
    ]);
  });

  it('gives a new account a UUID version 7 id that begins with the import\'s time', async () => {
    await run(lines({ email: 'seven@example.com' }));
    const { id } = await storage.db.selectFrom('accounts').select('id').where('email', '=', 'seven@example.com').executeTakeFirstOrThrow();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(id.replace(/-/g, '').slice(0, 12)).toBe(NOW.getTime().toString(16).padStart(12, '0'));
  });
});

describe('the tables\' statistics', () => {
  it('are refreshed as an import fills the tables, so that lookups keep using their indexes', async () => {
    // PostgreSQL counts a table's rows only when it is analyzed; inserts alone leave the count
    // where it was (-1, never analyzed, on a new database). Nothing else here analyzes: PGlite
    // has no autovacuum, and the test database's last ANALYZE was before these accounts.
    const counted = async () => Number((await sql<{ n: number }>`select reltuples::bigint as n from pg_class where oid = 'accounts'::regclass`.execute(storage.db)).rows[0]!.n);
    const before = await counted();
    const accounts = Array.from({ length: 1_200 }, (_, i) => ({ email: `counted-${i}@example.com` }));
    expect((await run(lines(...accounts))).counts.created).toBe(1_200);
    expect(before).toBeLessThan(1_000);
    expect(await counted()).toBeGreaterThanOrEqual(1_000);
  });
});

describe('--dry-run and events', () => {
  it('decides everything and writes nothing on a dry run', async () => {
    const before = await tableCounts();
    const { counts } = await run(lines({ email: 'dry-1@example.com' }, { external_id: 'legacy-1001', email: 'ann.lee@example.com', name: 'Ann L.' }, { email: 'bad' }), { dryRun: true });
    expect(counts).toEqual({ created: 1, updated: 1, unchanged: 0, failed: 1 });
    expect(await tableCounts()).toEqual(before);
  });

  it('writes no per-account events by default, and one account.imported per run', async () => {
    const outbox = () => storage.db.selectFrom('outbox_events').select(['type', 'account_id', 'payload']).orderBy('seq').execute();
    const before = (await outbox()).length;
    const { counts } = await run(lines({ email: 'quiet@example.com', consents: [{ purpose: 'offers', version: 1, action: 'granted', at: '2024-01-01T00:00:00Z' }] }));
    expect((await outbox()).length).toBe(before);
    await writer.recordRun({ id: '6f1f0a3e-8a0d-4c55-9d5a-0a4f0b7c9e11', format: 'parley', source: 'cli', events: 'none', startedAt: NOW, counts });
    const events = (await outbox()).slice(before);
    expect(storedPayloadSchemas['account.imported'].safeParse(events[0]?.payload).error?.issues ?? []).toEqual([]);
    expect(events).toEqual([{
      type: 'account.imported', account_id: null,
      payload: expect.objectContaining({ version: 1, run_id: '6f1f0a3e-8a0d-4c55-9d5a-0a4f0b7c9e11', created: 1, failed: 0, source: 'cli', format: 'parley' }),
    }]);
  });

  it('writes each account\'s events with --events all', async () => {
    const before = (await storage.db.selectFrom('outbox_events').select('id').execute()).length;
    await run(lines({
      email: 'loud@example.com', consents: [{ purpose: 'offers', version: 1, action: 'granted', at: '2024-01-01T00:00:00Z' }],
      communication: [{ channel: 'email', topic: 'offers', enabled: true, at: '2024-01-01T00:00:00Z' }],
    }), { events: 'all' });
    const events = (await storage.db.selectFrom('outbox_events').select(['type', 'payload']).orderBy('seq').execute()).slice(before);
    expect(events.map((e) => e.type)).toEqual(['account.created', 'preferences.changed', 'consent.granted']);
    expect(events[2]!.payload).toMatchObject({ source: 'import', purpose: 'offers', client_id: null });
    for (const event of events) {
      expect(storedPayloadSchemas[event.type as EventType].safeParse(event.payload).error?.issues ?? [], event.type).toEqual([]);
    }
  });
});

describe('the current consent', () => {
  const consent = (action: 'granted' | 'withdrawn', at: string) => ({ purpose: 'personalization', version: 1, action, at });
  const current = async (accountId: string) => (await consentStates(storage.db, accountId)).get('personalization')?.action;

  it('moves to an imported consent newer than the account has, and not to an older one', async () => {
    const email = 'cora.current@example.com';
    expect((await run(lines({ email, consents: [consent('granted', '2022-01-01T00:00:00Z')] }))).failed).toEqual({});
    const { id } = await storage.db.selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    expect(await current(id)).toBe('granted');

    await run(lines({ email, consents: [consent('withdrawn', '2023-01-01T00:00:00Z')] }));
    expect(await current(id)).toBe('withdrawn');

    // An older grant from another export joins the ledger as history; the withdrawal stays current.
    await run(lines({ email, consents: [consent('granted', '2020-01-01T00:00:00Z')] }));
    expect(await storage.db.selectFrom('consent_ledger').select('id').where('subject', '=', id).execute()).toHaveLength(3);
    expect(await current(id)).toBe('withdrawn');
  });
});

describe('an answer the question could not have been given', () => {
  it('is refused with its key path, and nothing of the record is written', async () => {
    const email = 'dana.values@example.com';
    const answer = (value: unknown) => ({ question_id: 'brew_method', value, answered_at: '2023-01-01T00:00:00Z', purpose: 'personalization' });
    const { counts, failed } = await run(lines({ email, answers: [answer('espresso'), answer('purple')] }));
    expect(counts.failed).toBe(1);
    expect(failed['line 1']).toMatch(/answers\[1\]\.value: "purple" is not an answer "brew_method" accepts/);
    expect(await storage.db.selectFrom('accounts').select('id').where('email', '=', email).execute()).toEqual([]);
  });
});
