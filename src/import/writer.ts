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
// Two batches are written at once, on two connections, while the next is read and checked: the
// file and two database backends work at the same time (PostgreSQL's work is most of an import),
// and at most three batches are in memory. The later line must still win, as when the batches ran
// one after the other:
//   - a batch with an email or external id of the batch before it starts once that one is done;
//   - any other starts once the one before it has claimed its accounts (locked the ones it
//     matched, inserted the ones it creates, with their identities): an account both match by
//     different keys (one line's external id, the other's old address) is then read by the later
//     batch only after the earlier one's commit, through the lock.
import { createHash, randomUUID } from 'node:crypto';
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

/** Where a batch stands among the batches written at the same time (runBatch). */
interface BatchTurn {
  /** Resolves when the batch before this one has claimed its accounts. */
  after: Promise<void>;
  /** Resolves when the batch before this one is done. */
  finished: Promise<void>;
  /** To call once this batch has claimed its accounts (or is done, if it was refused before it did). */
  claimed: () => void;
  /** A batch the database refuses is written again one record at a time. */
  oneByOne: boolean;
}

/** The emails and external ids a batch's records match accounts by. */
function accountKeys(items: readonly ReadItem[]): Set<string> {
  const keys = new Set<string>();
  for (const item of items) {
    if (!item.ok) continue;
    keys.add(`email ${item.record.email}`);
    if (item.record.externalId) keys.add(`external_id ${item.record.externalId}`);
  }
  return keys;
}

/** A record written again on its own, after its batch was refused: nothing to wait for. */
const ALONE: BatchTurn = { after: Promise.resolve(), finished: Promise.resolve(), claimed: () => {}, oneByOne: false };

/** Batches written at once, each in its own transaction on its own connection. */
const BATCHES_IN_FLIGHT = 2;

/** The tables an import fills, in the order it writes them; their statistics are refreshed as they grow (statisticsRefresher). */
export const IMPORTED_TABLES = ['accounts', 'identities', 'consent_ledger', 'consent_current', 'answers', 'answer_history', 'communication_ledger'] as const;
/** The fewest accounts created before the first refresh: below it, any plan is fast. */
const FIRST_REFRESH = 1_000;

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
 * index pages. The time is the import's, not the account's creation. Made from a random (version
 * 4) UUID, whose random bits Node draws from a cached pool: crypto.randomBytes asked the system
 * for 16 bytes each time, a second of every 100,000 accounts.
 */
function uuidV7(now: Date): string {
  const time = now.getTime().toString(16).padStart(12, '0');
  const random = randomUUID();
  // The random UUID's variant bits (10) are version 7's too; its version digit becomes 7.
  return `${time.slice(0, 8)}-${time.slice(8)}-7${random.slice(15)}`;
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
    const catalog: ImportCatalog = importCatalog(config, [...questions.values()].map(({ question }) => ({ id: question.id, purpose: question.purpose, question })));
    return { questions, catalog };
  }

  /**
   * The accounts the records match, as changes.ts reads them, with their ids. Inside a
   * transaction the accounts are locked until it ends: the batch after this one (written at the
   * same time) and a user's own change wait for it rather than write over it.
   */
  async function loadSnapshots(executor: Executor, records: readonly ImportRecord[], lock: boolean): Promise<(({ id: string } & AccountSnapshot) | undefined)[]> {
    const externalIds = [...new Set(records.flatMap((r) => (r.externalId ? [r.externalId] : [])))];
    const emails = [...new Set(records.map((r) => r.email))];
    const matching = executor.selectFrom('accounts').selectAll()
      .where((eb) => eb.or([
        eb('email', 'in', emails),
        ...(externalIds.length > 0 ? [eb('external_id', 'in', externalIds)] : []),
      ]))
      // In one order, so that two transactions locking some of the same accounts cannot deadlock.
      .orderBy('id');
    const accounts = await (lock ? matching.forUpdate() : matching).execute();
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
  async function plan(executor: Executor, batch: readonly Checked[], catalog: ImportCatalog, now: Date, lock: boolean): Promise<(Plan | { at: Position; error: string })[]> {
    const snapshots = await loadSnapshots(executor, batch.map((c) => c.record), lock);
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
    // A purpose's text in a language is the same for every account: hashed once per batch.
    const textHashes = new Map<string, string>();
    const textHash = (purposeId: string, locale: string) => {
      const key = `${purposeId}\n${locale}`;
      let hash = textHashes.get(key);
      if (hash === undefined) textHashes.set(key, hash = consentTextHash(config.purposes[purposeId]!, locale, config.locales.default));
      return hash;
    };
    const rows = plans.flatMap((p) => p.changes.consents.ledger.map((entry) => ({
      subject: p.accountId, purpose: entry.purpose, purpose_version: entry.version, action: entry.action, locale: p.locale, at: entry.at,
      // The text shown is known only for the purpose's current version.
      text_hash: entry.version === config.purposes[entry.purpose]!.version ? textHash(entry.purpose, p.locale) : UNKNOWN_TEXT_HASH,
    })));
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

  /** Writes the plans; `claimed` is called once every account they write is locked or inserted. */
  async function writePlans(trx: Transaction<Database>, plans: readonly Plan[], events: EventsMode, questions: ReturnType<typeof questionsNow>['questions'], now: Date, claimed: () => void) {
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
    claimed();
    // Consents before answers: an answer row takes the consent its purpose has when it is written
    // (answers.consent_version, kept by the database), so answers written first would be
    // rewritten by the consents that follow them.
    const consents = await writeConsents(trx, plans);
    await writeAnswers(trx, plans, questions);
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

  /**
   * Plans and writes one batch of checked records; their reports, in order. It begins once
   * `turn.after` (the batch before it has claimed its accounts) and calls `turn.claimed` once it
   * has claimed its own; a batch the database refuses is written again one record at a time once
   * `turn.finished` (the batch before it is done), so that it sees everything before it.
   */
  async function runBatch(batch: readonly Checked[], options: WriteOptions, turn: BatchTurn): Promise<RecordReport[]> {
    let claimed = false;
    const claim = () => {
      if (!claimed) turn.claimed();
      claimed = true;
    };
    try {
      await turn.after;
      if (batch.length === 0) return [];
      const { questions, catalog } = questionsNow();
      const now = clock();
      const report = (planned: Plan | { at: Position; error: string }): RecordReport => ('error' in planned
        ? { at: planned.at, outcome: 'failed', error: planned.error }
        : { at: planned.at, outcome: planned.changes.outcome, accountId: planned.accountId });
      if (options.dryRun) return (await plan(db, batch, catalog, now, false)).map(report);
      try {
        return await db.transaction().execute(async (trx) => {
          // Not waiting for each batch to reach the disk: a crash loses at most the last batches
          // written, and importing the file again writes exactly those (a re-import changes only
          // what is missing). About a third faster on PostgreSQL.
          await sql`set local synchronous_commit = off`.execute(trx);
          const planned = await plan(trx, batch, catalog, now, true);
          const writable = planned.filter((p): p is Plan => !('error' in p) && p.changes.outcome !== 'unchanged');
          if (writable.length > 0) await writePlans(trx, writable, options.events, questions, now, claim);
          claim();
          return planned.map(report);
        });
      } catch (error) {
        if (isDatabaseUnavailable(error)) throw error;
        if (!turn.oneByOne) return batch.map(({ at }) => ({ at, outcome: 'failed', error: refusal(error) }));
        // Even a batch of one is tried again: it may have been refused for the batch before it
        // (an address both create), which is done now, so the record becomes an update of it.
        // A batch refused before it claimed its accounts keeps the next one waiting until these
        // records are written, so the later lines still come after them.
        await turn.finished;
        const reports: RecordReport[] = [];
        for (const checked of batch) reports.push(...await runBatch([checked], options, ALONE));
        return reports;
      }
    } finally {
      claim();
    }
  }

  /** A batch as read: records that failed to read are reported in their place. */
  async function runItems(items: readonly ReadItem[], options: WriteOptions, turn: BatchTurn): Promise<RecordReport[]> {
    const checked = items.flatMap((item) => (item.ok ? [{ at: item.at, record: item.record }] : []));
    const written = (await runBatch(checked, options, turn))[Symbol.iterator]();
    return items.map((item) => (item.ok ? written.next().value! : { at: item.at, outcome: 'failed' as const, error: item.error }));
  }

  /**
   * PostgreSQL plans a batch's lookups (the accounts its records match, by address or external id)
   * from each table's statistics, which nothing refreshes while an import fills the tables unless
   * autovacuum runs, and then only about once a minute. A table it still believes empty or small
   * is scanned whole for every batch: a million accounts into a database without autovacuum slowed
   * from 3,400 accounts/s to 1,000 and took 12 minutes, most of it reading the accounts table
   * again and again. So the writer refreshes the statistics itself (ANALYZE reads a sample, not
   * the table) each time the accounts grew by half since it last did: some twenty times over a
   * million accounts into an empty database, and not at all for a few thousand into a big one.
   */
  function statisticsRefresher() {
    /** The accounts there were when the run began, as PostgreSQL last counted them. */
    let before = 0;
    /** The accounts created by the run at which to refresh next. */
    let next = Infinity;
    let refreshing: Promise<void> | undefined;
    let failure: unknown;
    return {
      async start() {
        const { rows: [row] } = await sql<{ accounts: number }>`select greatest(reltuples, 0)::bigint as accounts from pg_class where oid = 'accounts'::regclass`.execute(db);
        before = Number(row?.accounts ?? 0);
        next = Math.max(FIRST_REFRESH, before / 2);
      },
      /** After each batch: refreshes, beside the batches being written, once `created` reaches the mark. */
      created(created: number) {
        if (refreshing || created < next) return;
        refreshing = sql`analyze ${sql.join(IMPORTED_TABLES.map((table) => sql.table(table)))}`.execute(db).then(
          () => { next = created + (before + created) / 2; },
          (error: unknown) => { failure = error; next = Infinity; },
        ).finally(() => { refreshing = undefined; });
      },
      /** Waits for a refresh under way; a failed one fails the run, as any other database failure. */
      async done() {
        await refreshing;
        if (failure !== undefined) throw failure;
      },
    };
  }

  return {
    async write(items, options, onRecord = () => {}) {
      const tally = createTally();
      const size = options.batchSize ?? DEFAULT_BATCH_SIZE;
      const statistics = statisticsRefresher();
      if (!options.dryRun) await statistics.start();
      const done = (reports: readonly RecordReport[]) => {
        for (const r of reports) {
          tally.count(r.outcome);
          onRecord(r);
        }
        statistics.created(tally.counts.created);
      };
      // Two batches are written while the next is read; the reports come out in file order.
      let claimed: Promise<void> = Promise.resolve();
      let finished: Promise<void> = Promise.resolve();
      const inFlight: Promise<void>[] = [];
      let previousKeys = new Set<string>();
      let batch: ReadItem[] = [];
      let entries = 0;
      const flush = async () => {
        const full = batch;
        batch = [];
        entries = 0;
        if (inFlight.length >= BATCHES_IN_FLIGHT) await inFlight.shift();
        let claim!: () => void;
        const keys = accountKeys(full);
        const overlaps = [...keys].some((key) => previousKeys.has(key));
        previousKeys = keys;
        const turn: BatchTurn = { after: overlaps ? finished : claimed, finished, claimed: () => claim(), oneByOne: true };
        claimed = new Promise((resolve) => { claim = resolve; });
        const written = runItems(full, options, turn);
        // Reported in file order: after the batch before this one.
        const reported = Promise.all([finished, written]).then(([, reports]) => done(reports));
        finished = reported;
        inFlight.push(reported);
        // Handled here so that a failure waits, without crashing the process, for the await below.
        reported.catch(() => {});
      };
      for await (const item of items) {
        batch.push(item);
        if (item.ok) entries += item.record.answers.length + item.record.consents.length + item.record.communication.length + item.record.identities.length;
        if (batch.length >= size || entries >= BATCH_ENTRIES) await flush();
      }
      if (batch.length > 0) await flush();
      await Promise.all(inFlight);
      await finished;
      await statistics.done();
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
