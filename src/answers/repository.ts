// Every statement on answers, answer_history and rewards, and the one read the screen-set engine
// makes. Plain functions, the database or the caller's transaction first; a statement that locks
// rows or writes takes a Transaction. The rules (what is recorded when, and which event says so)
// are in ./service.ts.
import { sql, type Transaction } from 'kysely';
import type { ConsentState } from '../consent/ledger.ts';
import type { AnswerValue, PromptLogEntry, StoredAnswer } from '../screensets/engine.ts';
import type { DB } from '../storage/database.ts';
import type { AnswerSource, Database, ImportSource } from '../storage/schema.ts';
import { unnestInsert } from '../storage/unnest.ts';

type Reader = DB | Transaction<Database>;

/** A current answer, as written. */
export interface AnswerRow {
  accountId: string;
  questionId: string;
  value: AnswerValue;
  /** The purpose it is given under: release follows what the user agreed to then. */
  purpose: string;
  setId: string;
  at: Date;
}

/** A row of an answer's history; value null: the answer was deleted. */
export interface HistoryRow {
  accountId: string;
  questionId: string;
  value: AnswerValue | null;
  purpose: string;
  setId: string;
  setVersion: number;
  /** The question as the user read it, in their locale. */
  label: string;
  locale: string;
  clientId: string | null;
  source: AnswerSource | 'retention' | ImportSource;
  at: Date;
}

/** A current answer with what release and display need to know about it. */
export interface CurrentAnswer {
  questionId: string;
  value: AnswerValue;
  purpose: string;
  setId: string;
  updatedAt: Date;
}

/** What the engine needs of an account, unless a screen was shown within the minimum interval. */
export type EngineState =
  | { blocked: true }
  | {
    blocked: false;
    createdAt: Date;
    answers: Map<string, StoredAnswer>;
    history: PromptLogEntry[];
    shownThisSession: number;
    consents: Map<string, ConsentState>;
  };

/**
 * Everything the engine needs, in one round trip: the account's age, its answers, its current
 * consents, and the prompt-log rows that can still matter (declines for good; the rest only after
 * `lookBack`, or in this session). Undefined: no such account.
 */
export async function engineState(
  db: Reader, accountId: string, sessionKey: string, window: { intervalStart: Date; lookBack: Date },
): Promise<EngineState | undefined> {
  // Most sign-ins come within min_interval of the last screen: then nothing can be asked, and
  // the aggregates are not even built. Otherwise only the rows a rule can use are read
  // ('answered' rows never matter: the answers table says what is answered), with times as
  // epoch milliseconds, which are cheaper to build and parse than timestamps.
  const { rows } = await sql<{ created_at: Date; blocked: boolean; answers: unknown; log: unknown; consents: unknown }>`
    with recent as (
      select exists(select 1 from prompt_log where account_id = ${accountId} and outcome = 'shown' and at > ${window.intervalStart}) as blocked
    )
    select a.created_at, recent.blocked,
      case when recent.blocked then null else
        (select coalesce(json_agg(json_build_array(question_id, value, (extract(epoch from updated_at) * 1000)::float8)), '[]')
           from answers where account_id = a.id) end as answers,
      case when recent.blocked then null else
        (select coalesce(string_agg(concat_ws(' ', question_id, set_id, set_version, outcome,
                  (extract(epoch from at) * 1000)::bigint, case when session_key = ${sessionKey} then 1 else 0 end), E'\n'), '')
           from prompt_log where account_id = a.id and outcome <> 'answered'
             and (outcome = 'declined' or at > ${window.lookBack} or session_key = ${sessionKey})) end as log,
      case when recent.blocked then null else
        (select coalesce(json_agg(json_build_array(purpose, action, purpose_version, (extract(epoch from at) * 1000)::float8)), '[]')
           from consent_current where subject = a.id) end as consents
    from accounts a cross join recent where a.id = ${accountId}`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  if (row.blocked) return { blocked: true };
  const answers = new Map<string, StoredAnswer>();
  for (const [questionId, value, updatedAt] of parseJson<[string, AnswerValue, number][]>(row.answers)) {
    answers.set(questionId, { value, updatedAt: new Date(updatedAt) });
  }
  const history: PromptLogEntry[] = [];
  let shownThisSession = 0;
  // One line a row, fields separated by spaces: ids never contain spaces (the format forbids it).
  for (const line of (row.log as string).split('\n')) {
    if (line === '') continue;
    const [questionId, setId, setVersion, outcome, at, thisSession] = line.split(' ') as [string, string, string, PromptLogEntry['outcome'], string, string];
    history.push({ questionId, setId, setVersion: Number(setVersion), outcome, at: new Date(Number(at)) });
    if (thisSession === '1' && outcome === 'shown') shownThisSession++;
  }
  const consents = new Map<string, ConsentState>();
  for (const [purpose, action, version, at] of parseJson<[string, ConsentState['action'], number, number][]>(row.consents)) {
    consents.set(purpose, { action, version, at: new Date(at) });
  }
  return { blocked: false, createdAt: new Date(row.created_at), answers, history, shownThisSession, consents };
}

/** The account's answers to these questions, by question id. */
export async function answerValues(db: Reader, accountId: string, questionIds: readonly string[]): Promise<Map<string, AnswerValue>> {
  if (questionIds.length === 0) return new Map();
  const rows = await db.selectFrom('answers').select(['question_id', 'value'])
    .where('account_id', '=', accountId).where('question_id', 'in', questionIds).execute();
  return new Map(rows.map((r) => [r.question_id, r.value as AnswerValue]));
}

/** The same, with the rows locked until the caller's transaction ends: for a change decided on them. */
export async function lockAnswers(trx: Transaction<Database>, accountId: string, questionIds: readonly string[]): Promise<Map<string, { value: AnswerValue; setId: string }>> {
  if (questionIds.length === 0) return new Map();
  const rows = await trx.selectFrom('answers').select(['question_id', 'value', 'set_id'])
    .where('account_id', '=', accountId).where('question_id', 'in', questionIds).forUpdate().execute();
  return new Map(rows.map((r) => [r.question_id, { value: r.value as AnswerValue, setId: r.set_id }]));
}

/** The account's current answers, oldest question first. */
export async function currentAnswers(db: Reader, accountId: string): Promise<CurrentAnswer[]> {
  const rows = await db.selectFrom('answers').select(['question_id', 'value', 'purpose', 'set_id', 'updated_at'])
    .where('account_id', '=', accountId).orderBy('created_at').orderBy('question_id').execute();
  return rows.map((r) => ({ questionId: r.question_id, value: r.value as AnswerValue, purpose: r.purpose, setId: r.set_id, updatedAt: r.updated_at }));
}

/**
 * The account's answers (or the one to `questionId`), latest first, each with the question as it
 * last read and the app it was last answered in on a question screen.
 */
export async function answerEntries(db: Reader, accountId: string, questionId?: string) {
  let query = db.selectFrom('answers as a')
    .select(['a.question_id', 'a.value', 'a.purpose', 'a.updated_at'])
    .select((eb) => [
      eb.selectFrom('answer_history as h').select('h.label')
        .whereRef('h.account_id', '=', 'a.account_id').whereRef('h.question_id', '=', 'a.question_id')
        .orderBy('h.id', 'desc').limit(1).as('label'),
      eb.selectFrom('answer_history as h').select('h.client_id')
        .whereRef('h.account_id', '=', 'a.account_id').whereRef('h.question_id', '=', 'a.question_id').where('h.source', '=', 'screen')
        .orderBy('h.id', 'desc').limit(1).as('client_id'),
    ])
    .where('a.account_id', '=', accountId)
    .orderBy('a.updated_at', 'desc').orderBy('a.question_id');
  if (questionId !== undefined) query = query.where('a.question_id', '=', questionId);
  const rows = await query.execute();
  return rows.map((r) => ({
    questionId: r.question_id, value: r.value as AnswerValue, purpose: r.purpose, updatedAt: r.updated_at,
    label: r.label ?? null, clientId: r.client_id ?? null,
  }));
}

/** The questions the account answered under a purpose. */
export async function questionsUnder(db: Reader, accountId: string, purpose: string): Promise<string[]> {
  const rows = await db.selectFrom('answers').select('question_id')
    .where('account_id', '=', accountId).where('purpose', '=', purpose).execute();
  return rows.map((r) => r.question_id);
}

/**
 * Up to `limit` answers under a purpose last given before `cutoff`, oldest first, locked; rows
 * another transaction holds are passed over, so several nodes erase without waiting on each other.
 */
export async function answersDueForErasure(trx: Transaction<Database>, purpose: string, cutoff: Date, limit: number) {
  const rows = await trx.selectFrom('answers').select(['account_id', 'question_id'])
    .where('purpose', '=', purpose).where('updated_at', '<', cutoff)
    .orderBy('updated_at').limit(limit).forUpdate().skipLocked().execute();
  return rows.map((r) => ({ accountId: r.account_id, questionId: r.question_id }));
}

/**
 * Writes current answers, many accounts' at once: new ones are inserted, existing ones take the
 * new value, purpose, set and time (created_at stays). One (account, question) at most once per call.
 */
export async function upsertAnswers(trx: Transaction<Database>, rows: readonly AnswerRow[]): Promise<void> {
  if (rows.length === 0) return;
  await unnestInsert<AnswerRow>('answers', [
    ['account_id', 'text', (r) => r.accountId],
    ['question_id', 'text', (r) => r.questionId],
    ['value', 'jsonb', (r) => JSON.stringify(r.value)],
    ['purpose', 'text', (r) => r.purpose],
    ['set_id', 'text', (r) => r.setId],
    ['created_at', 'timestamptz', (r) => r.at.toISOString()],
    ['updated_at', 'timestamptz', (r) => r.at.toISOString()],
  ], rows, sql`on conflict (account_id, question_id) do update
    set value = excluded.value, purpose = excluded.purpose, set_id = excluded.set_id, updated_at = excluded.updated_at`).execute(trx);
}

/** Appends history rows, many accounts' at once, in the order given. */
export async function insertHistory(trx: Transaction<Database>, rows: readonly HistoryRow[]): Promise<void> {
  if (rows.length === 0) return;
  await unnestInsert<HistoryRow>('answer_history', [
    ['account_id', 'text', (r) => r.accountId],
    ['question_id', 'text', (r) => r.questionId],
    ['value', 'jsonb', (r) => (r.value === null ? null : JSON.stringify(r.value))],
    ['purpose', 'text', (r) => r.purpose],
    ['set_id', 'text', (r) => r.setId],
    ['set_version', 'integer', (r) => r.setVersion],
    ['label', 'text', (r) => r.label],
    ['locale', 'text', (r) => r.locale],
    ['client_id', 'text', (r) => r.clientId],
    ['source', 'text', (r) => r.source],
    ['recorded_at', 'timestamptz', (r) => r.at.toISOString()],
  ], rows).execute(trx);
}

/**
 * Deletes answers and blanks the values in their history (erased means erased: the history keeps
 * when a question was answered, not what the answer was). Returns what was deleted.
 */
export async function deleteAnswers(trx: Transaction<Database>, accountId: string, questionIds: readonly string[]) {
  if (questionIds.length === 0) return [];
  const deleted = await trx.deleteFrom('answers').where('account_id', '=', accountId).where('question_id', 'in', questionIds)
    .returning(['question_id', 'purpose', 'set_id']).execute();
  if (deleted.length > 0) {
    await trx.updateTable('answer_history').set({ value: null })
      .where('account_id', '=', accountId).where('question_id', 'in', deleted.map((r) => r.question_id)).execute();
  }
  return deleted.map((r) => ({ questionId: r.question_id, purpose: r.purpose, setId: r.set_id }));
}

/** Grants a reward unless this account already has the one of this question; true if granted now. */
export async function insertReward(
  trx: Transaction<Database>, reward: { accountId: string; questionId: string; points: number | null; label: string; at: Date },
): Promise<boolean> {
  const granted = await trx.insertInto('rewards').values({
    account_id: reward.accountId, question_id: reward.questionId, points: reward.points, label: reward.label, granted_at: reward.at,
  }).onConflict((oc) => oc.columns(['account_id', 'question_id']).doNothing()).returning('question_id').executeTakeFirst();
  return granted !== undefined;
}

/** The account's answers, their history and its rewards, as the data export lists them (one query after another: in one snapshot). */
export async function exportRows(db: Reader, accountId: string) {
  const answers = await db.selectFrom('answers').select(['question_id', 'value', 'purpose', 'set_id', 'created_at', 'updated_at'])
    .where('account_id', '=', accountId).orderBy('question_id').execute();
  const history = await db.selectFrom('answer_history')
    .select(['question_id', 'value', 'purpose', 'set_id', 'set_version', 'label', 'locale', 'client_id', 'source', 'recorded_at'])
    .where('account_id', '=', accountId).orderBy('id').execute();
  const rewards = await db.selectFrom('rewards').select(['question_id', 'points', 'label', 'granted_at'])
    .where('account_id', '=', accountId).orderBy('question_id').execute();
  return { answers, history, rewards };
}

/** PostgreSQL returns json as text through some drivers and parsed through others. */
function parseJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}
