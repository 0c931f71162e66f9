// Progressive profiling around the pure engine: what the engine needs from the database (one
// read), and what a screen's outcome writes (one transaction: answers, their history, the prompt
// log, rewards and outbox events). Knows nothing of HTTP or oidc-provider.
import { sql, type Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { consentSnapshot, consentStates, needsReconsent, purposeAllows, recordConsent, type ConsentState } from '../consent/ledger.ts';
import { recordEvent } from '../events/outbox.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import {
  selectQuestions, validateAnswer,
  type AnswerRejection, type AnswerValue, type AskedQuestion, type PromptLogEntry, type StoredAnswer,
} from './engine.ts';
import type { Question, ScreenSet, Trigger } from './format.ts';
import { localize } from './loader.ts';

export interface ProfilingDeps {
  db: DB;
  config: Config;
  clock: () => Date;
  screenSets: () => readonly ScreenSet[];
}

/** A sign-in about to finish: who, into which app, in which session. */
export interface SignInContext {
  accountId: string;
  clientId: string;
  /** Identifies one sign-in session: the per-session ceiling counts the questions shown in it. */
  sessionKey: string;
  trigger: Trigger;
  promptNone: boolean;
  locale: string;
}

/**
 * The questions chosen for a screen, by reference: small enough to travel in the interaction.
 * A re-consent screen (after a purpose's text changed) is the pseudo screen-set RECONSENT_SET
 * whose "questions" are the purposes to renew.
 */
export interface PendingScreen {
  setId: string;
  setVersion: number;
  questionIds: string[];
}

export const RECONSENT_SET = '_reconsent';

/** A pending screen resolved against the screen-sets now in use. */
export type Screen =
  | {
    kind: 'questions';
    set: ScreenSet;
    questions: AskedQuestion[];
    /** Purposes of these questions that need the user's consent before an answer can be stored. */
    consentNeeded: string[];
  }
  | { kind: 'reconsent'; purposes: string[] };

export interface ScreenSubmission {
  accountId: string;
  clientId: string;
  sessionKey: string;
  locale: string;
  pending: PendingScreen;
  /** The raw form values of each question on the screen, by question id. */
  values: ReadonlyMap<string, string[]>;
  /** Questions the user ticked "Don't ask me again" for; their values are ignored. */
  declined: ReadonlySet<string>;
  /** Purposes whose consent box the user ticked. */
  consents: ReadonlySet<string>;
}

export type SubmissionResult =
  | { ok: true; answered: string[]; skipped: string[]; declined: string[]; consented: string[] }
  /**
   * Nothing was stored: each refused question with the reason, and the purposes an answer was
   * given for without the consent it needs.
   */
  | { ok: false; errors: Map<string, AnswerRejection>; consentMissing: string[] };

/** A current answer with what release and display need to know about it. */
export interface CurrentAnswer {
  questionId: string;
  value: AnswerValue;
  purpose: string;
  setId: string;
  updatedAt: Date;
}

const SOURCE = 'screen' as const;

/** The screen's outcome is already recorded for this session; the second submission changes nothing. */
class ScreenAlreadyRecorded extends Error {
  constructor() {
    super('this screen was already saved in this sign-in session');
    this.name = 'ScreenAlreadyRecorded';
  }
}

/** Runs a screen's transaction; a second submission of the same screen is a no-op, not an error. */
async function once(write: () => Promise<void>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (error instanceof ScreenAlreadyRecorded) return false;
    throw error;
  }
}

export function createProfiling(deps: ProfilingDeps) {
  const { db, config, clock } = deps;
  const settings = config.profiling;

  /**
   * Everything the engine needs, in one round trip: the account's age, its answers, and the
   * prompt-log rows that can still matter (declines for good; the rest only within the longest
   * window a rule looks back over, or in this session).
   */
  async function engineState(accountId: string, sessionKey: string, now: Date) {
    const lookBack = new Date(now.getTime() - 1000 * Math.max(settings.min_interval, settings.skip_cooldown));
    const intervalStart = new Date(now.getTime() - 1000 * settings.min_interval);
    // Most sign-ins come within min_interval of the last screen: then nothing can be asked, and
    // the aggregates are not even built. Otherwise only the rows a rule can use are read
    // ('answered' rows never matter: the answers table says what is answered), with times as
    // epoch milliseconds, which are cheaper to build and parse than timestamps.
    const { rows } = await sql<{ created_at: Date; blocked: boolean; answers: unknown; log: unknown; consents: unknown }>`
      with recent as (
        select exists(select 1 from prompt_log where account_id = ${accountId} and outcome = 'shown' and at > ${intervalStart}) as blocked
      )
      select a.created_at, recent.blocked,
        case when recent.blocked then null else
          (select coalesce(json_agg(json_build_array(question_id, value, (extract(epoch from updated_at) * 1000)::float8)), '[]')
             from answers where account_id = a.id) end as answers,
        case when recent.blocked then null else
          (select coalesce(string_agg(concat_ws(' ', question_id, set_id, set_version, outcome,
                    (extract(epoch from at) * 1000)::bigint, case when session_key = ${sessionKey} then 1 else 0 end), E'\n'), '')
             from prompt_log where account_id = a.id and outcome <> 'answered'
               and (outcome = 'declined' or at > ${lookBack} or session_key = ${sessionKey})) end as log,
        case when recent.blocked then null else
          (select coalesce(json_agg(json_build_array(purpose, action, purpose_version, (extract(epoch from at) * 1000)::float8)), '[]')
             from consent_current where subject = a.id) end as consents
      from accounts a cross join recent where a.id = ${accountId}`.execute(db);
    const row = rows[0];
    if (!row) return undefined;
    if (row.blocked) return { blocked: true as const };
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
    return { blocked: false as const, createdAt: new Date(row.created_at), answers, history, shownThisSession, consents };
  }

  /**
   * Purposes whose consent was given to an earlier version of their text: the user is asked to
   * renew it (until then nothing under it is released), on the same cadence as questions.
   */
  function reconsentDue(state: Extract<Awaited<ReturnType<typeof engineState>>, { blocked: false }>, now: Date): string[] {
    const minIntervalMs = settings.min_interval * 1000;
    if (state.history.some((e) => e.outcome === 'shown' && now.getTime() - e.at.getTime() < minIntervalMs)) return [];
    const cooldownMs = settings.skip_cooldown * 1000;
    const skippedRecently = (purpose: string) => state.history.some((e) => e.setId === RECONSENT_SET && e.questionId === purpose
      && e.outcome === 'skipped' && now.getTime() - e.at.getTime() < cooldownMs);
    return [...state.consents]
      .filter(([purpose, consent]) => needsReconsent(config.purposes[purpose], consent) && !skippedRecently(purpose))
      .map(([purpose]) => purpose)
      .sort();
  }

  /** Purposes among `purposes` whose consent this user has not given at the current version. */
  function consentMissing(purposes: Iterable<string>, consents: ReadonlyMap<string, ConsentState>): string[] {
    return [...new Set(purposes)].filter((p) => !purposeAllows(config.purposes[p], consents.get(p)));
  }

  function questionsOf(pending: PendingScreen): { set: ScreenSet; questions: Question[] } | undefined {
    // A screen-set reloaded in between may have lost the set or some questions; show what is left.
    const set = deps.screenSets().find((s) => s.id === pending.setId);
    if (!set) return undefined;
    const questions = pending.questionIds
      .map((id) => set.questions.find((q) => q.id === id))
      .filter((q): q is Question => q !== undefined);
    return questions.length > 0 ? { set, questions } : undefined;
  }

  interface LogContext { accountId: string; sessionKey: string; clientId: string; setId: string; setVersion: number }

  async function logOutcome(trx: Transaction<Database>, input: LogContext, questionIds: string[], outcome: 'answered' | 'skipped' | 'declined', at: Date) {
    if (questionIds.length === 0) return;
    const logged = await trx.insertInto('prompt_log').values(questionIds.map((questionId) => ({
      account_id: input.accountId, session_key: input.sessionKey, client_id: input.clientId,
      set_id: input.setId, set_version: input.setVersion, question_id: questionId, outcome, at,
    })))
      .onConflict((oc) => oc.columns(['account_id', 'session_key', 'question_id']).where('outcome', '<>', 'shown').doNothing())
      .returning('question_id')
      .execute();
    // The same screen was already saved in this session (a double submit, two tabs): this
    // transaction is rolled back, so nothing is stored twice.
    if (logged.length < questionIds.length) throw new ScreenAlreadyRecorded();
  }

  /** The re-consent screen: renews the ticked purposes; the others count as "Not now". */
  async function renewConsents(input: ScreenSubmission, now: Date): Promise<SubmissionResult> {
    const consents = await consentStates(db, input.accountId);
    const due = input.pending.questionIds.filter((p) => needsReconsent(config.purposes[p], consents.get(p)));
    const renewed = due.filter((p) => input.consents.has(p));
    const context = { ...input, setId: RECONSENT_SET, setVersion: 0 };
    const recorded = await once(() => db.transaction().execute(async (trx) => {
      for (const purpose of renewed) {
        await recordConsent(trx, config, {
          accountId: input.accountId, purpose, action: 'granted', clientId: input.clientId, source: SOURCE, locale: input.locale,
        }, now);
      }
      await logOutcome(trx, context, renewed, 'answered', now);
      await logOutcome(trx, context, due.filter((p) => !renewed.includes(p)), 'skipped', now);
    }));
    return { ok: true, answered: [], skipped: [], declined: [], consented: recorded ? renewed : [] };
  }

  return {
    /** The screen to show in this sign-in, if any. Reads the database once; writes nothing. */
    async pendingScreen(signIn: SignInContext): Promise<PendingScreen | null> {
      const client = config.clientsById.get(signIn.clientId);
      if (signIn.promptNone || !client || !client.profiling || settings.max_questions_per_session === 0) return null;
      const now = clock();
      const state = await engineState(signIn.accountId, signIn.sessionKey, now);
      // A screen within min_interval: nothing is asked, whatever else is due.
      if (!state || state.blocked) return null;
      const reconsent = reconsentDue(state, now);
      if (reconsent.length > 0) return { setId: RECONSENT_SET, setVersion: 0, questionIds: reconsent };
      const sets = deps.screenSets();
      if (sets.length === 0) return null;
      const withdrawn = new Set([...state.consents].filter(([, c]) => c.action === 'withdrawn').map(([purpose]) => purpose));
      const selection = selectQuestions({
        sets, settings,
        client: { id: signIn.clientId, profiling: client.profiling },
        session: { trigger: signIn.trigger, promptNone: signIn.promptNone, locale: signIn.locale, questionsShownThisSession: state.shownThisSession },
        account: { createdAt: state.createdAt },
        answers: state.answers,
        history: state.history,
        withdrawnPurposes: withdrawn,
        now,
      });
      if (!selection) return null;
      return { setId: selection.set.id, setVersion: selection.set.version, questionIds: selection.questions.map((q) => q.question.id) };
    },

    /** The questions of a pending screen with the answers given before (shown as defaults) and the consents they need. */
    async screen(accountId: string, pending: PendingScreen): Promise<Screen | undefined> {
      if (pending.setId === RECONSENT_SET) {
        const consents = await consentStates(db, accountId);
        const purposes = pending.questionIds.filter((p) => needsReconsent(config.purposes[p], consents.get(p)));
        return purposes.length > 0 ? { kind: 'reconsent', purposes } : undefined;
      }
      const found = questionsOf(pending);
      if (!found) return undefined;
      const [rows, consents] = await Promise.all([
        db.selectFrom('answers').select(['question_id', 'value'])
          .where('account_id', '=', accountId)
          .where('question_id', 'in', found.questions.map((q) => q.id))
          .execute(),
        consentStates(db, accountId),
      ]);
      const previous = new Map(rows.map((r) => [r.question_id, r.value as AnswerValue]));
      return {
        kind: 'questions',
        set: found.set,
        questions: found.questions.map((question) => previous.has(question.id)
          ? { question, currentAnswer: previous.get(question.id)! }
          : { question }),
        consentNeeded: consentMissing(found.questions.map((q) => q.purpose), consents),
      };
    },

    /** Records that the screen was shown in this session; showing the same screen again records nothing more. */
    async markShown(input: { accountId: string; sessionKey: string; clientId: string }, pending: PendingScreen): Promise<void> {
      const now = clock();
      await db.insertInto('prompt_log').values(pending.questionIds.map((questionId) => ({
        account_id: input.accountId, session_key: input.sessionKey, client_id: input.clientId,
        set_id: pending.setId, set_version: pending.setVersion, question_id: questionId, outcome: 'shown' as const, at: now,
      })))
        .onConflict((oc) => oc.columns(['account_id', 'session_key', 'question_id']).where('outcome', '=', 'shown').doNothing())
        .execute();
    },

    /**
     * Saves a screen: every value is validated first and, if any is refused, nothing is stored.
     * Otherwise answers, their history, rewards, the prompt log and the outbox events are
     * written in one transaction. A blank optional question counts as skipped.
     */
    async submit(input: ScreenSubmission): Promise<SubmissionResult> {
      const now = clock();
      if (input.pending.setId === RECONSENT_SET) return renewConsents(input, now);
      const found = questionsOf(input.pending);
      if (!found) return { ok: true, answered: [], skipped: [], declined: [], consented: [] };
      const { set } = found;
      const errors = new Map<string, AnswerRejection>();
      const accepted: { question: Question; value: AnswerValue }[] = [];
      const skipped: string[] = [];
      const declined: string[] = [];
      for (const question of found.questions) {
        if (input.declined.has(question.id)) {
          declined.push(question.id);
          continue;
        }
        const check = validateAnswer(question, input.values.get(question.id), now);
        if (!check.ok) errors.set(question.id, check);
        else if (check.value === null) skipped.push(question.id);
        else accepted.push({ question, value: check.value });
      }
      if (errors.size > 0) return { ok: false, errors, consentMissing: [] };

      // An answer under a consent-based purpose is stored only together with that consent.
      const consents = accepted.length === 0 ? new Map<string, ConsentState>() : await consentStates(db, input.accountId);
      const needed = consentMissing(accepted.map((a) => a.question.purpose), consents);
      const missing = needed.filter((p) => !input.consents.has(p));
      if (missing.length > 0) return { ok: false, errors, consentMissing: missing };

      const recorded = await once(() => db.transaction().execute(async (trx) => {
        for (const purpose of needed) {
          await recordConsent(trx, config, {
            accountId: input.accountId, purpose, action: 'granted', clientId: input.clientId, source: SOURCE, locale: input.locale,
          }, now);
        }
        const previous = accepted.length === 0 ? [] : await trx.selectFrom('answers').select(['question_id', 'value'])
          .where('account_id', '=', input.accountId)
          .where('question_id', 'in', accepted.map((a) => a.question.id))
          .forUpdate()
          .execute();
        const previousValues = new Map(previous.map((r) => [r.question_id, r.value as AnswerValue]));
        for (const { question, value } of accepted) {
          const json = JSON.stringify(value);
          await trx.insertInto('answers').values({
            account_id: input.accountId, question_id: question.id, value: json, purpose: question.purpose,
            set_id: set.id, created_at: now, updated_at: now,
          }).onConflict((oc) => oc.columns(['account_id', 'question_id']).doUpdateSet({
            value: json, purpose: question.purpose, set_id: set.id, updated_at: now,
          })).execute();
          await trx.insertInto('answer_history').values({
            account_id: input.accountId, question_id: question.id, value: json, purpose: question.purpose,
            set_id: set.id, set_version: set.version,
            label: localize(question.label, input.locale, config.locales.default),
            locale: input.locale, client_id: input.clientId, source: SOURCE, recorded_at: now,
          }).execute();
          const before = previousValues.get(question.id);
          // Stored only with consent (or under another legal basis): the event says which.
          const consent = consentSnapshot(question.purpose, config.purposes[question.purpose],
            needed.includes(question.purpose) ? { action: 'granted', version: config.purposes[question.purpose]!.version, at: now } : consents.get(question.purpose));
          const payload = {
            account_id: input.accountId, question_id: question.id, screenset_id: set.id, screenset_version: set.version,
            purpose: question.purpose, value, client_id: input.clientId, locale: input.locale, source: SOURCE, consent,
          };
          // Confirming an answer unchanged refreshes it (and its reask clock) but is no news downstream.
          if (before === undefined) await recordEvent(trx, { type: 'answer.recorded', accountId: input.accountId, payload }, now);
          else if (!sameValue(before, value)) {
            await recordEvent(trx, { type: 'answer.changed', accountId: input.accountId, payload: { ...payload, previous_value: before } }, now);
          }
          if (question.reward) await grantReward(trx, input, question, now);
        }
        const base = { accountId: input.accountId, sessionKey: input.sessionKey, clientId: input.clientId, setId: set.id, setVersion: set.version };
        await logOutcome(trx, base, accepted.map((a) => a.question.id), 'answered', now);
        await logOutcome(trx, base, skipped, 'skipped', now);
        await logOutcome(trx, base, declined, 'declined', now);
      }));
      if (!recorded) return { ok: true, answered: [], skipped: [], declined: [], consented: [] };
      return { ok: true, answered: accepted.map((a) => a.question.id), skipped, declined, consented: needed };
    },

    /** "Not now": every question on the screen (or consent to renew) is hidden for the skip cooldown. */
    async skip(input: Omit<ScreenSubmission, 'values' | 'declined' | 'consents'>): Promise<void> {
      const { pending } = input;
      const set = pending.setId === RECONSENT_SET ? undefined : questionsOf(pending)?.set;
      const ids = pending.setId === RECONSENT_SET ? pending.questionIds : questionsOf(pending)?.questions.map((q) => q.id) ?? [];
      await once(() => db.transaction().execute((trx) => logOutcome(trx,
        { ...input, setId: set?.id ?? pending.setId, setVersion: set?.version ?? pending.setVersion }, ids, 'skipped', clock())));
    },

    /** The account's current answers, oldest question first. */
    async currentAnswers(accountId: string): Promise<CurrentAnswer[]> {
      const rows = await db.selectFrom('answers').select(['question_id', 'value', 'purpose', 'set_id', 'updated_at'])
        .where('account_id', '=', accountId).orderBy('created_at').orderBy('question_id').execute();
      return rows.map((r) => ({ questionId: r.question_id, value: r.value as AnswerValue, purpose: r.purpose, setId: r.set_id, updatedAt: r.updated_at }));
    },

    /** The question with this id in the screen-sets now in use. */
    question(questionId: string): Question | undefined {
      return questionIndex(deps.screenSets()).get(questionId);
    },
  };

  async function grantReward(trx: Transaction<Database>, input: ScreenSubmission, question: Question, now: Date) {
    const reward = question.reward!;
    const label = localize(reward.label, input.locale, config.locales.default);
    // Once per account and question: answering again, or a second node racing, grants nothing more.
    const granted = await trx.insertInto('rewards').values({
      account_id: input.accountId, question_id: question.id, points: reward.points ?? null, label, granted_at: now,
    }).onConflict((oc) => oc.columns(['account_id', 'question_id']).doNothing()).returning('question_id').executeTakeFirst();
    if (!granted) return;
    await recordEvent(trx, {
      type: 'reward.granted', accountId: input.accountId,
      payload: { account_id: input.accountId, question_id: question.id, points: reward.points ?? null, label, client_id: input.clientId },
    }, now);
  }
}

export type Profiling = ReturnType<typeof createProfiling>;

// Question ids are unique across screen-sets (the loader checks it). Releasing claims looks up
// each answer's question, so the index is built once per list of sets (a reload makes a new list).
const questionIndexes = new WeakMap<readonly ScreenSet[], Map<string, Question>>();

function questionIndex(sets: readonly ScreenSet[]): Map<string, Question> {
  let index = questionIndexes.get(sets);
  if (!index) {
    index = new Map(sets.flatMap((set) => set.questions.map((q) => [q.id, q] as const)));
    questionIndexes.set(sets, index);
  }
  return index;
}

/** PostgreSQL returns json as text through some drivers and parsed through others. */
function parseJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

function sameValue(a: AnswerValue, b: AnswerValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
