// Progressive profiling around the pure engine: what the engine needs from the database (one
// read, src/answers/repository.ts), and what a screen's outcome writes (one transaction: its
// consents, its answers with their history, rewards and events through src/answers/service.ts,
// and the prompt log). Knows nothing of HTTP or oidc-provider.
import type { Transaction } from 'kysely';
import { answerValues, currentAnswers, engineState, type CurrentAnswer, type EngineState } from '../answers/repository.ts';
export type { CurrentAnswer } from '../answers/repository.ts';
import { recordAnswers } from '../answers/service.ts';
import type { Config } from '../config/schema.ts';
import { consentSnapshot, consentStates, needsReconsent, purposeAllows, recordConsent, type ConsentState } from '../consent/ledger.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import {
  selectQuestions, validateAnswer,
  type AnswerRejection, type AnswerValue, type AskedQuestion,
} from './engine.ts';
import type { Question, ScreenSet, Trigger } from './format.ts';

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

  /** What the engine needs of the account, read once (src/answers/repository.ts). */
  function engineStateAt(accountId: string, sessionKey: string, now: Date) {
    return engineState(db, accountId, sessionKey, {
      intervalStart: new Date(now.getTime() - 1000 * settings.min_interval),
      // The longest window a rule looks back over.
      lookBack: new Date(now.getTime() - 1000 * Math.max(settings.min_interval, settings.skip_cooldown)),
    });
  }

  /**
   * Purposes whose consent was given to an earlier version of their text: the user is asked to
   * renew it (until then nothing under it is released), on the same cadence as questions.
   */
  function reconsentDue(state: Extract<EngineState, { blocked: false }>, now: Date): string[] {
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
      const state = await engineStateAt(signIn.accountId, signIn.sessionKey, now);
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
      const [previous, consents] = await Promise.all([
        answerValues(db, accountId, found.questions.map((q) => q.id)),
        consentStates(db, accountId),
      ]);
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
        // Stored only with consent (or under another legal basis): each event says which.
        const consentOf = (purpose: string) => consentSnapshot(purpose, config.purposes[purpose],
          needed.includes(purpose) ? { action: 'granted', version: config.purposes[purpose]!.version, at: now } : consents.get(purpose));
        await recordAnswers(trx, config, {
          accountId: input.accountId, clientId: input.clientId, locale: input.locale, source: SOURCE,
          set: { id: set.id, version: set.version },
          answers: accepted.map(({ question, value }) => ({ question, value, consent: consentOf(question.purpose) })),
        }, now);
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
    currentAnswers: (accountId: string): Promise<CurrentAnswer[]> => currentAnswers(db, accountId),

    /** The question with this id in the screen-sets now in use. */
    question(questionId: string): Question | undefined {
      return questionIndex(deps.screenSets()).get(questionId)?.question;
    },

    /** The screen-set now in use that asks this question. */
    screenSetOf(questionId: string): ScreenSet | undefined {
      return questionIndex(deps.screenSets()).get(questionId)?.set;
    },
  };
}

export type Profiling = ReturnType<typeof createProfiling>;

// Question ids are unique across screen-sets (the loader checks it). Releasing claims looks up
// each answer's question, so the index is built once per list of sets (a reload makes a new list).
const questionIndexes = new WeakMap<readonly ScreenSet[], Map<string, { question: Question; set: ScreenSet }>>();

function questionIndex(sets: readonly ScreenSet[]): Map<string, { question: Question; set: ScreenSet }> {
  let index = questionIndexes.get(sets);
  if (!index) {
    index = new Map(sets.flatMap((set) => set.questions.map((question) => [question.id, { question, set }] as const)));
    questionIndexes.set(sets, index);
  }
  return index;
}

