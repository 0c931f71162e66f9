// Writing imported records: for each batch of checked records, the accounts they match are
// loaded (by external id, else by email), src/import/changes.ts decides what each record changes,
// and exactly that is written, in one transaction per batch with a few statements per table
// (arrays unnested into multi-row inserts), so that a million accounts go in at database speed.
//
// One bad record never stops the rest: a record is checked before it is written (the line format
// when read, then its references and its changes against the account), and when a batch is
// refused by the database anyway (two lines of one batch for the same account, an email another
// account took), its records are written again one at a time, each in its own transaction, so
// that only the ones the database refuses fail, each with its line and the reason.
//
// While a batch is being written the next one is read and checked: the file and the database
// work at the same time, and at most two batches are in memory.
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { upsertAnswers, insertHistory } from '../answers/repository.ts';
import { consentTextHash, refreshConsentCurrent } from '../consent/ledger.ts';
import { recordEvent } from '../events/outbox.ts';
import { localize } from '../screensets/loader.ts';
import type { Question, ScreenSet } from '../screensets/format.ts';
import { isDatabaseUnavailable, type DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { unnestInsert } from '../storage/unnest.ts';
import { accountChanges, type AccountChanges, type AccountSnapshot, type AnswerHistoryEntry, type CurrentAnswer } from './changes.ts';
import type { Position, ReadItem } from './read.ts';
import type { ImportRecord } from './record.ts';
import { checkReferences, importCatalog, type ImportCatalog } from './references.ts';
import { accountImportedPayload, createTally, type EventsMode, type ImportCounts, type RecordOutcome } from './run.ts';
import type { ImportFormat } from './read.ts';

export interface ImportWriterDeps {
  db: DB;
  config: Config;
  clock: () => Date;
  /** The screen-sets in use: the questions answers may be imported for. */
  screenSets: () => readonly ScreenSet[];
}

export interface WriteOptions {
  /** Check and decide everything, write nothing. */
  dryRun: boolean;
  events: EventsMode;
  /** Records per transaction. */
  batchSize?: number;
}

/** What became of one record. */
export interface RecordReport {
  at: Position;
  outcome: RecordOutcome;
  accountId?: string;
  error?: string;
}

export interface ImportRun {
  id: string;
  format: ImportFormat;
  source: 'cli' | 'api';
  events: EventsMode;
  startedAt: Date;
  counts: ImportCounts;
}

export interface ImportWriter {
  /** Writes every item in order, reporting each record as it is done; answers the counts. */
  write(items: AsyncIterable<ReadItem> | Iterable<ReadItem>, options: WriteOptions, report?: (record: RecordReport) => void): Promise<ImportCounts>;
  /** The run's one account.imported event (none on a dry run). */
  recordRun(run: ImportRun): Promise<void>;
}

export const DEFAULT_BATCH_SIZE = 500;
/** A batch is also cut at this many answers, consents and settings, whatever its record count. */
const BATCH_ENTRIES = 20_000;
/** The text hash of a consent given to an earlier version of a purpose, whose text Parley never had. */
const UNKNOWN_TEXT_HASH = createHash('sha256').update('').digest('hex');

interface Checked { at: Position; record: ImportRecord }

interface Plan {
  at: Position;
  record: ImportRecord;
  accountId: string;
  created: boolean;
  changes: AccountChanges;
  /** The account's language after the import: the labels and ledger rows are in it. */
  locale: string;
}

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * A new account's id: a UUID version 7 (RFC 9562), its first 48 bits the time. A million imported
 * accounts then go into the indexes on account ids (theirs, their answers', history's, ledgers')
 * at one end, rather than at a random place each, which keeps an import's writes to the same few
 * index pages. The time is the import's, not the account's creation.
 */
function uuidV7(now: Date): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now.getTime(), 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Both drivers (pg, PGlite) hand jsonb back parsed: a stored "espresso" is the string espresso. */
const fromJson = <T>(value: unknown): T => value as T;
const iso = (date: Date) => date.toISOString();

/** Why the database refused a record, in the words of the line format. */
function refusal(error: unknown): string {
  const { constraint, message } = error as { constraint?: string; message?: string };
  const text = `${constraint ?? ''} ${message ?? ''}`;
  if (/accounts_email_key/.test(text)) return 'email: another account has this email address';
  if (/accounts_external_id/.test(text)) return 'external_id: another account was imported under this external_id';
  if (/identities_pk/.test(text)) return 'identities: one of these identities is linked to another account';
  return `the database refused the record: ${message ?? String(error)}`;
}

export function createImportWriter(deps: ImportWriterDeps): ImportWriter {
  const { db, config, clock } = deps;

  function questionsNow() {
    const sets = deps.screenSets();
    const questions = new Map<string, { question: Question; set: ScreenSet }>();
    for (const set of sets) for (const question of set.questions) questions.set(question.id, { question, set });
    const catalog: ImportCatalog = importCatalog(config, [...questions.values()].map(({ question }) => ({ id: question.id, purpose: question.purpose })));
    return { questions, catalog };
  }

  /** The accounts the records match, as changes.ts reads them, with their ids. */
  async function loadSnapshots(executor: Executor, records: readonly ImportRecord[]): Promise<(({ id: string } & AccountSnapshot) | undefined)[]> {
    const externalIds = [...new Set(records.flatMap((r) => (r.externalId ? [r.externalId] : [])))];
    const emails = [...new Set(records.map((r) => r.email))];
    const accounts = await executor.selectFrom('accounts').selectAll()
      .where((eb) => eb.or([
        eb('email', 'in', emails),
        ...(externalIds.length > 0 ? [eb('external_id', 'in', externalIds)] : []),
      ])).execute();
    if (accounts.length === 0) return records.map(() => undefined);

    const ids = accounts.map((a) => a.id);
    const [identities, answers, history, consents, communication] = await Promise.all([
      executor.selectFrom('identities').select(['account_id', 'provider', 'subject']).where('account_id', 'in', ids).execute(),
      executor.selectFrom('answers').select(['account_id', 'question_id', 'value', 'purpose', 'updated_at']).where('account_id', 'in', ids).execute(),
      executor.selectFrom('answer_history').select(['account_id', 'question_id', 'value', 'purpose', 'recorded_at']).where('account_id', 'in', ids).execute(),
      executor.selectFrom('consent_ledger').select(['subject', 'purpose', 'purpose_version', 'action', 'at']).where('subject', 'in', ids).orderBy('id').execute(),
      executor.selectFrom('communication_ledger').select(['account_id', 'channel', 'topic', 'enabled', 'at']).where('account_id', 'in', ids).orderBy('id').execute(),
    ]);
    const group = <R, K extends keyof R>(rows: R[], key: K) => {
      const map = new Map<unknown, R[]>();
      for (const row of rows) map.set(row[key], [...(map.get(row[key]) ?? []), row]);
      return (id: string) => map.get(id) ?? [];
    };
    const identitiesOf = group(identities, 'account_id');
    const answersOf = group(answers, 'account_id');
    const historyOf = group(history, 'account_id');
    const consentsOf = group(consents, 'subject');
    const communicationOf = group(communication, 'account_id');
    const snapshots = new Map(accounts.map((a): [string, { id: string } & AccountSnapshot] => [a.id, {
      id: a.id,
      externalId: a.external_id,
      email: a.email,
      emailVerified: a.email_verified_at !== null,
      name: a.name,
      locale: a.locale,
      createdAt: a.created_at,
      passwordHash: a.password_hash,
      identities: identitiesOf(a.id).map((i) => ({ provider: i.provider, subject: i.subject })),
      answers: answersOf(a.id).map((r): CurrentAnswer => ({ questionId: r.question_id, value: fromJson(r.value), purpose: r.purpose, answeredAt: r.updated_at })),
      answerHistory: historyOf(a.id).map((r): AnswerHistoryEntry => ({ questionId: r.question_id, value: r.value === null ? null : fromJson(r.value), purpose: r.purpose, at: r.recorded_at })),
      consentLedger: consentsOf(a.id).map((r) => ({ purpose: r.purpose, version: r.purpose_version, action: r.action, at: r.at })),
      communicationLedger: communicationOf(a.id).map((r) => ({ channel: r.channel, topic: r.topic, enabled: r.enabled, at: r.at })),
    }]));
    const byExternalId = new Map(accounts.filter((a) => a.external_id !== null).map((a) => [a.external_id!, a.id]));
    const byEmail = new Map(accounts.map((a) => [a.email, a.id]));
    return records.map((r) => {
      const id = (r.externalId ? byExternalId.get(r.externalId) : undefined) ?? byEmail.get(r.email);
      return id === undefined ? undefined : snapshots.get(id);
    });
  }

  /** Each record's plan, or the reason it cannot be imported. */
  async function plan(executor: Executor, batch: readonly Checked[], catalog: ImportCatalog, now: Date): Promise<(Plan | { at: Position; error: string })[]> {
    const snapshots = await loadSnapshots(executor, batch.map((c) => c.record));
    return batch.map(({ at, record }, i) => {
      const problems = checkReferences(record, catalog);
      if (problems.length > 0) return { at, error: problems.join('; ') };
      const existing = snapshots[i];
      const decided = accountChanges(record, existing, now);
      if (!decided.ok) return { at, error: decided.error };
      const locale = record.locale ?? existing?.locale ?? config.locales.default;
      return { at, record, accountId: existing?.id ?? uuidV7(now), created: !existing, changes: decided.changes, locale };
    });
  }

  /** Every answers and answer_history row of an import: the one place they are written. */
  async function writeAnswers(trx: Transaction<Database>, plans: readonly Plan[], questions: ReturnType<typeof questionsNow>['questions']) {
    const setOf = (questionId: string) => questions.get(questionId)!;
    await upsertAnswers(trx, plans.flatMap((p) => p.changes.answers.current.map((a) => ({
      accountId: p.accountId, questionId: a.questionId, value: a.value, purpose: a.purpose, setId: setOf(a.questionId).set.id, at: a.answeredAt,
    }))));
    await insertHistory(trx, plans.flatMap((p) => p.changes.answers.history.map((entry) => {
      const { set, question } = setOf(entry.questionId);
      return {
        accountId: p.accountId, questionId: entry.questionId, value: entry.value, purpose: entry.purpose,
        setId: set.id, setVersion: set.version, label: localize(question.label, p.locale, config.locales.default),
        locale: p.locale, clientId: null, source: 'import' as const, at: entry.at,
      };
    })));
  }

  /**
   * Every consent_ledger row of an import: the one place they are written. Each plan's
   * changes.consents.current holds, per purpose, the imported entry that is newer than anything
   * the account had: the one a table of current consents would take, in this transaction.
   */
  async function writeConsents(trx: Transaction<Database>, plans: readonly Plan[]) {
    const rows = plans.flatMap((p) => p.changes.consents.ledger.map((entry) => {
      const purpose = config.purposes[entry.purpose]!;
      return {
        subject: p.accountId, purpose: entry.purpose, purpose_version: entry.version, action: entry.action, locale: p.locale, at: entry.at,
        // The text shown is known only for the purpose's current version.
        text_hash: entry.version === purpose.version ? consentTextHash(purpose, p.locale, config.locales.default) : UNKNOWN_TEXT_HASH,
      };
    }));
    if (rows.length === 0) return rows;
    await unnestInsert('consent_ledger', [
      ['subject', 'text', (r: typeof rows[number]) => r.subject],
      ['purpose', 'text', (r) => r.purpose],
      ['purpose_version', 'integer', (r) => r.purpose_version],
      ['action', 'text', (r) => r.action],
      ['client_id', 'text', () => null],
      ['source', 'text', () => 'import'],
      ['locale', 'text', (r) => r.locale],
      ['text_hash', 'text', (r) => r.text_hash],
      ['at', 'timestamptz', (r) => iso(r.at)],
    ], rows).execute(trx);
    // The current consent moves only where an imported row is newer than anything the account
    // had (changes.ts); an older imported row joins the ledger as history and changes nothing.
    await refreshConsentCurrent(trx, plans.flatMap((p) => p.changes.consents.current.map((c) => ({ subject: p.accountId, purpose: c.purpose }))));
    return rows;
  }

  async function writePlans(trx: Transaction<Database>, plans: readonly Plan[], events: EventsMode, questions: ReturnType<typeof questionsNow>['questions'], now: Date) {
    const created = plans.filter((p) => p.created);
    if (created.length > 0) {
      await unnestInsert('accounts', [
        ['id', 'text', (p: Plan) => p.accountId],
        ['email', 'text', (p) => p.changes.profile.email],
        ['name', 'text', (p) => p.changes.profile.name ?? null],
        ['locale', 'text', (p) => p.changes.profile.locale ?? null],
        ['password_hash', 'text', (p) => p.changes.passwordHash ?? null],
        ['email_verified_at', 'timestamptz', (p) => (p.changes.profile.emailVerified ? iso(now) : null)],
        ['external_id', 'text', (p) => p.changes.profile.externalId ?? null],
        ['created_at', 'timestamptz', (p) => iso(p.changes.createdAt!)],
        ['updated_at', 'timestamptz', () => iso(now)],
      ], created).execute(trx);
    }
    for (const p of plans) {
      if (p.created || p.changes.outcome !== 'updated') continue;
      const { profile, passwordHash } = p.changes;
      const set = {
        ...(profile.externalId !== undefined ? { external_id: profile.externalId } : {}),
        ...(profile.email !== undefined ? { email: profile.email } : {}),
        ...(profile.emailVerified ? { email_verified_at: now } : {}),
        ...(profile.name !== undefined ? { name: profile.name } : {}),
        ...(profile.locale !== undefined ? { locale: profile.locale } : {}),
        ...(passwordHash !== undefined ? { password_hash: passwordHash } : {}),
      };
      if (Object.keys(set).length > 0) await trx.updateTable('accounts').set({ ...set, updated_at: now }).where('id', '=', p.accountId).execute();
    }
    const identities = plans.flatMap((p) => p.changes.identities.map((i) => ({ accountId: p.accountId, ...i })));
    if (identities.length > 0) {
      await unnestInsert('identities', [
        ['provider', 'text', (r: typeof identities[number]) => r.provider],
        ['subject', 'text', (r) => r.subject],
        ['account_id', 'text', (r) => r.accountId],
        ['linked_at', 'timestamptz', () => iso(now)],
      ], identities).execute(trx);
    }
    await writeAnswers(trx, plans, questions);
    const consents = await writeConsents(trx, plans);
    const communication = plans.flatMap((p) => p.changes.communication.ledger.map((entry) => ({ accountId: p.accountId, ...entry })));
    if (communication.length > 0) {
      await unnestInsert('communication_ledger', [
        ['account_id', 'text', (r: typeof communication[number]) => r.accountId],
        ['channel', 'text', (r) => r.channel],
        ['topic', 'text', (r) => r.topic],
        ['enabled', 'boolean', (r) => r.enabled],
        ['source', 'text', () => 'import'],
        ['at', 'timestamptz', (r) => iso(r.at)],
      ], communication).execute(trx);
    }
    if (events === 'all') await recordAccountEvents(trx, plans, consents, now);
  }

  /**
   * --events all: what the same changes made in Parley would have announced. Answers are not
   * announced one by one (their events name the app and screen they were given on, which an
   * import does not have); receivers read them from the API.
   */
  async function recordAccountEvents(trx: Transaction<Database>, plans: readonly Plan[], consents: Awaited<ReturnType<typeof writeConsents>>, now: Date) {
    for (const p of plans) {
      if (p.created) {
        await recordEvent(trx, { type: 'account.created', accountId: p.accountId, payload: { account_id: p.accountId, email_verified: p.changes.profile.emailVerified ?? false } }, now);
      }
      const settings = p.changes.communication.current;
      if (settings.length > 0) {
        await recordEvent(trx, {
          type: 'preferences.changed', accountId: p.accountId,
          payload: { account_id: p.accountId, source: 'import', changes: settings.map((s) => ({ channel: s.channel, topic: s.topic, enabled: s.enabled })) },
        }, now);
      }
    }
    for (const row of consents) {
      const purpose = config.purposes[row.purpose]!;
      await recordEvent(trx, {
        type: row.action === 'granted' ? 'consent.granted' : 'consent.withdrawn', accountId: row.subject,
        payload: {
          account_id: row.subject, purpose: row.purpose, purpose_version: row.purpose_version, legal_basis: purpose.legal_basis,
          client_id: null, source: 'import', locale: row.locale, text_hash: row.text_hash,
        },
      }, now);
    }
  }

  /** Plans and writes one batch of checked records; their reports, in order. */
  async function runBatch(batch: readonly Checked[], options: WriteOptions, retryOneByOne: boolean): Promise<RecordReport[]> {
    if (batch.length === 0) return [];
    const { questions, catalog } = questionsNow();
    const now = clock();
    const report = (planned: Plan | { at: Position; error: string }): RecordReport => ('error' in planned
      ? { at: planned.at, outcome: 'failed', error: planned.error }
      : { at: planned.at, outcome: planned.changes.outcome, accountId: planned.accountId });
    if (options.dryRun) return (await plan(db, batch, catalog, now)).map(report);
    try {
      return await db.transaction().execute(async (trx) => {
        // Not waiting for each batch to reach the disk: a crash loses at most the last batches
        // written, and importing the file again writes exactly those (a re-import changes only
        // what is missing). About a third faster on PostgreSQL.
        await sql`set local synchronous_commit = off`.execute(trx);
        const planned = await plan(trx, batch, catalog, now);
        const writable = planned.filter((p): p is Plan => !('error' in p) && p.changes.outcome !== 'unchanged');
        if (writable.length > 0) await writePlans(trx, writable, options.events, questions, now);
        return planned.map(report);
      });
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw error;
      if (!retryOneByOne || batch.length === 1) return batch.map(({ at }) => ({ at, outcome: 'failed', error: refusal(error) }));
      const reports: RecordReport[] = [];
      for (const checked of batch) reports.push(...await runBatch([checked], options, false));
      return reports;
    }
  }

  /** A batch as read: records that failed to read are reported in their place. */
  async function runItems(items: readonly ReadItem[], options: WriteOptions): Promise<RecordReport[]> {
    const checked = items.flatMap((item) => (item.ok ? [{ at: item.at, record: item.record }] : []));
    const written = (await runBatch(checked, options, true))[Symbol.iterator]();
    return items.map((item) => (item.ok ? written.next().value! : { at: item.at, outcome: 'failed' as const, error: item.error }));
  }

  return {
    async write(items, options, onRecord = () => {}) {
      const tally = createTally();
      const size = options.batchSize ?? DEFAULT_BATCH_SIZE;
      const done = (reports: readonly RecordReport[]) => {
        for (const r of reports) {
          tally.count(r.outcome);
          onRecord(r);
        }
      };
      // One batch is written while the next is read; the reports come out in file order.
      let writing: Promise<void> = Promise.resolve();
      let batch: ReadItem[] = [];
      let entries = 0;
      const flush = async () => {
        const full = batch;
        batch = [];
        entries = 0;
        await writing;
        writing = runItems(full, options).then(done);
        // Handled here so that a failure waits, without crashing the process, for the await below.
        writing.catch(() => {});
      };
      for await (const item of items) {
        batch.push(item);
        if (item.ok) entries += item.record.answers.length + item.record.consents.length + item.record.communication.length + item.record.identities.length;
        if (batch.length >= size || entries >= BATCH_ENTRIES) await flush();
      }
      if (batch.length > 0) await flush();
      await writing;
      return tally.counts;
    },

    async recordRun(run) {
      await db.transaction().execute((trx) => recordEvent(trx, {
        type: 'account.imported', accountId: null,
        payload: { ...accountImportedPayload({ ...run, finishedAt: clock() }) },
      }, clock()));
    },
  };
}
