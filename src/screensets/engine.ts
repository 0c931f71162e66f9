// Which questions, if any, to ask this user now — and whether a submitted answer is acceptable.
//
// selectQuestions is a pure function of (screen-sets, the user's answers and prompt history, the
// client, the sign-in session, the clock): the product's rules of which questions to ask, and
// when, live here and nowhere else, and it is tested without a database. It runs on every
// sign-in: it reads the prompt log once per call into a flat array and never scans it per question.
import type { Config } from '../config/schema.ts';
import {
  compileAnswerPattern, isCalendarDate, resolveDateBound,
  type Condition, type Question, type ScreenSet, type Trigger,
} from './format.ts';

/** A stored answer: an option value or text, a number, yes/no, a date (YYYY-MM-DD), or a multi_choice selection. */
export type AnswerValue = string | number | boolean | string[];

export interface StoredAnswer {
  value: AnswerValue;
  updatedAt: Date;
}

export type PromptOutcome = 'shown' | 'answered' | 'skipped' | 'declined';

/** One row of the prompt log: what happened to one question on one screen. */
export interface PromptLogEntry {
  questionId: string;
  setId: string;
  setVersion: number;
  outcome: PromptOutcome;
  at: Date;
}

export interface EngineInput {
  sets: readonly ScreenSet[];
  /** Durations in seconds, as in the configuration. */
  settings: Config['profiling'];
  client: { id: string; profiling: boolean };
  session: {
    /** after_registration for the first sign-in of a new account, after_login otherwise: the caller knows which. */
    trigger: Trigger;
    promptNone: boolean;
    locale: string;
    /** Questions already shown in this sign-in session, by any screen-set. */
    questionsShownThisSession: number;
  };
  account: { createdAt: Date };
  /** The user's current answers by question id. */
  answers: ReadonlyMap<string, StoredAnswer>;
  history: readonly PromptLogEntry[];
  /** Purposes the user withdrew consent for: their questions are not asked (the preference center can change it). */
  withdrawnPurposes?: ReadonlySet<string>;
  now: Date;
}

export interface AskedQuestion {
  question: Question;
  /** The answer given before, shown as the default when the question is asked again after reask_after. */
  currentAnswer?: AnswerValue;
}

/** One screen: questions from one screen-set, in the set's order. */
export interface Selection {
  set: ScreenSet;
  questions: AskedQuestion[];
}

const MS_PER_SECOND = 1000;

/** The screen to show now, or null when nothing should be asked. */
export function selectQuestions(input: EngineInput): Selection | null {
  const { settings, session, client } = input;
  // Never for prompt=none (there is no user to ask) and never for a client that opted out.
  if (session.promptNone || !client.profiling) return null;
  const budget = settings.max_questions_per_session - session.questionsShownThisSession;
  if (budget <= 0) return null;

  const now = input.now.getTime();
  // At most one profiling screen per user within min_interval, whichever screen-set it came from.
  const minIntervalMs = settings.min_interval * MS_PER_SECOND;
  for (const entry of input.history) {
    if (entry.outcome === 'shown' && now - entry.at.getTime() < minIntervalMs) return null;
  }

  const sets = prepare(input.sets);
  const hidden = hiddenUntil(input.history, sets, settings.skip_cooldown * MS_PER_SECOND);
  for (const { set, firstPosition } of sets.ordered) {
    if (!setApplies(set, input, now)) continue;
    // One screen shows questions from one screen-set, within both its ceiling and the session's.
    const limit = Math.min(budget, set.max_questions ?? budget);
    const asked: AskedQuestion[] = [];
    for (let i = 0; i < set.questions.length && asked.length < limit; i++) {
      const question = set.questions[i]!;
      if (now < hidden[firstPosition + i]!) continue;
      if (input.withdrawnPurposes?.has(question.purpose)) continue;
      const answer = input.answers.get(question.id);
      if (answer && !isReaskDue(question, answer, now)) continue;
      asked.push(answer ? { question, currentAnswer: answer.value } : { question });
    }
    if (asked.length > 0) return { set, questions: asked };
  }
  return null;
}

/**
 * What the engine derives from a list of screen-sets alone: their order, and a position for each
 * question so that the prompt log can be indexed into a flat array. Computed once per list, not on
 * every sign-in; the engine never changes a list, and neither may its callers.
 */
interface PreparedSets {
  /** Higher priority first; equal priorities by id, so that the order never depends on the input's. */
  ordered: { set: ScreenSet; firstPosition: number }[];
  /** Question ids are unique across screen-sets (the loader checks it). */
  positionOf: Map<string, number>;
  setAt: ScreenSet[];
}

const preparedSets = new WeakMap<readonly ScreenSet[], PreparedSets>();

function prepare(sets: readonly ScreenSet[]): PreparedSets {
  let prepared = preparedSets.get(sets);
  if (prepared) return prepared;
  prepared = { ordered: [], positionOf: new Map(), setAt: [] };
  const ordered = [...sets].sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const set of ordered) {
    prepared.ordered.push({ set, firstPosition: prepared.setAt.length });
    for (const question of set.questions) {
      prepared.positionOf.set(question.id, prepared.setAt.length);
      prepared.setAt.push(set);
    }
  }
  preparedSets.set(sets, prepared);
  return prepared;
}

/**
 * Until when (ms since the epoch) the prompt log hides each question, by position: for
 * skip_cooldown after a "Not now"; for good after a "Don't ask me again", until the author bumps
 * the version of the screen-set the question was declined in (a question moved to another set
 * stays declined). 'shown' is a screen-level fact, and what is answered the answers say.
 */
function hiddenUntil(history: readonly PromptLogEntry[], sets: PreparedSets, skipCooldownMs: number): Float64Array {
  const until = new Float64Array(sets.setAt.length);
  for (const entry of history) {
    if (entry.outcome !== 'skipped' && entry.outcome !== 'declined') continue;
    const position = sets.positionOf.get(entry.questionId);
    // Rows about questions that are in no screen-set any more change nothing.
    if (position === undefined) continue;
    if (entry.outcome === 'skipped') {
      until[position] = Math.max(until[position]!, entry.at.getTime() + skipCooldownMs);
    } else {
      const set = sets.setAt[position]!;
      if (entry.setId !== set.id || entry.setVersion >= set.version) until[position] = Infinity;
    }
  }
  return until;
}

function setApplies(set: ScreenSet, input: EngineInput, now: number): boolean {
  if (!set.trigger.includes(input.session.trigger)) return false;
  const { audience } = set;
  if (!audience) return true;
  if (audience.clients && !audience.clients.includes(input.client.id)) return false;
  if (audience.locales && !audience.locales.some((locale) => localeMatches(locale, input.session.locale))) return false;
  if (audience.min_account_age !== undefined
    && now - input.account.createdAt.getTime() < audience.min_account_age * MS_PER_SECOND) return false;
  return audience.when === undefined || conditionHolds(audience.when, input.answers);
}

/** An audience locale "pt" includes sessions in "pt-BR". */
function localeMatches(audienceLocale: string, sessionLocale: string): boolean {
  return sessionLocale === audienceLocale || sessionLocale.startsWith(`${audienceLocale}-`);
}

/** Whether an audience condition holds for these answers. */
export function conditionHolds(condition: Condition, answers: ReadonlyMap<string, StoredAnswer>): boolean {
  switch (condition.op) {
    case 'all': return condition.conditions.every((c) => conditionHolds(c, answers));
    case 'any': return condition.conditions.some((c) => conditionHolds(c, answers));
    case 'answered': return answers.has(condition.questionId);
    case 'not_answered': return !answers.has(condition.questionId);
    case 'in': {
      const answer = answers.get(condition.questionId);
      if (!answer) return false;
      const { value } = answer;
      return Array.isArray(value) ? value.some((v) => condition.values.includes(v)) : condition.values.includes(value);
    }
  }
}

/** An answer stands until it is reask_after old; preferences change, so then it is asked again. */
function isReaskDue(question: Question, answer: StoredAnswer, now: number): boolean {
  return question.reask_after !== undefined && now - answer.updatedAt.getTime() >= question.reask_after * MS_PER_SECOND;
}

// ---------------------------------------------------------------------------------------------
// Answers submitted on the screen

/** The parameters of each way an answer can be refused; the HTTP layer turns them into messages. */
export interface AnswerErrorParams {
  required: Record<string, never>;
  single_value_expected: Record<string, never>;
  not_an_option: Record<string, never>;
  too_few_selections: { min: number };
  too_many_selections: { max: number };
  not_a_boolean: Record<string, never>;
  not_a_date: Record<string, never>;
  date_too_early: { min: string };
  date_too_late: { max: string };
  not_a_number: Record<string, never>;
  number_too_small: { min: number };
  number_too_large: { max: number };
  number_off_step: { step: number; base: number };
  not_on_scale: { min: number; max: number };
  text_too_long: { max_length: number };
  pattern_mismatch: Record<string, never>;
  control_characters: Record<string, never>;
}

export type AnswerErrorCode = keyof AnswerErrorParams;

/** The same codes at run time, for the HTTP table's tests; `satisfies` keeps it to exactly the codes above. */
export const ANSWER_ERROR_CODES = Object.keys({
  required: true, single_value_expected: true, not_an_option: true, too_few_selections: true, too_many_selections: true,
  not_a_boolean: true, not_a_date: true, date_too_early: true, date_too_late: true, not_a_number: true,
  number_too_small: true, number_too_large: true, number_off_step: true, not_on_scale: true, text_too_long: true,
  pattern_mismatch: true, control_characters: true,
} satisfies Record<AnswerErrorCode, true>) as readonly AnswerErrorCode[];

declare module '../errors.ts' {
  interface ErrorCodes { answer: AnswerErrorCode }
}

export type AnswerRejection = {
  [Code in AnswerErrorCode]: { ok: false; code: Code; params: AnswerErrorParams[Code] };
}[AnswerErrorCode];

/** An accepted answer; `value` is null when an optional question was left blank (it counts as skipped). */
export type AnswerCheck = { ok: true; value: AnswerValue | null } | AnswerRejection;

function reject<Code extends AnswerErrorCode>(code: Code, params: AnswerErrorParams[Code]): AnswerRejection {
  return { ok: false, code, params } as AnswerRejection;
}

const NONE = {} as Record<string, never>;

/**
 * Checks a submitted form value against its question: type, options, bounds, number of
 * selections, pattern. Nothing the browser enforces is trusted; a tampered value is refused here.
 */
export function validateAnswer(question: Question, raw: string | string[] | undefined, now: Date): AnswerCheck {
  if (question.type === 'multi_choice') return validateSelections(question, raw);
  if (Array.isArray(raw) && raw.length > 1) return reject('single_value_expected', NONE);
  const text = (Array.isArray(raw) ? raw[0] ?? '' : raw ?? '').trim();
  if (text === '') return question.required ? reject('required', NONE) : { ok: true, value: null };

  switch (question.type) {
    case 'single_choice':
      return question.options.some((o) => o.value === text) ? { ok: true, value: text } : reject('not_an_option', NONE);
    case 'boolean':
      if (text === 'true') return { ok: true, value: true };
      if (text === 'false') return { ok: true, value: false };
      return reject('not_a_boolean', NONE);
    case 'date': {
      const date = asciiDigits(text);
      if (!isCalendarDate(date)) return reject('not_a_date', NONE);
      const bounds = dateBounds(question, now);
      if (bounds.min !== undefined && date < bounds.min) return reject('date_too_early', { min: bounds.min });
      if (bounds.max !== undefined && date > bounds.max) return reject('date_too_late', { max: bounds.max });
      return { ok: true, value: date };
    }
    case 'number': {
      const value = parseNumber(text);
      if (value === undefined) return reject('not_a_number', NONE);
      if (question.min !== undefined && value < question.min) return reject('number_too_small', { min: question.min });
      if (question.max !== undefined && value > question.max) return reject('number_too_large', { max: question.max });
      if (question.step !== undefined) {
        const base = question.min ?? 0;
        const steps = (value - base) / question.step;
        // Decimal steps are inexact in binary (0.3 / 0.1 = 2.9999999999999996).
        if (Math.abs(steps - Math.round(steps)) > 1e-9) return reject('number_off_step', { step: question.step, base });
      }
      return { ok: true, value };
    }
    case 'scale': {
      const value = parseNumber(text);
      if (value === undefined || !Number.isInteger(value) || value < question.min || value > question.max) {
        return reject('not_on_scale', { min: question.min, max: question.max });
      }
      return { ok: true, value };
    }
    case 'text': {
      // NUL and other control characters are no part of an answer (and PostgreSQL refuses NUL).
      if (/\p{Cc}/u.test(text)) return reject('control_characters', NONE);
      // Counted in code points, never more strictly than the browser's maxlength (UTF-16 units).
      if ([...text].length > question.max_length) return reject('text_too_long', { max_length: question.max_length });
      if (question.pattern !== undefined && !compileAnswerPattern(question.pattern).test(text)) {
        return reject('pattern_mismatch', NONE);
      }
      return { ok: true, value: text };
    }
  }
}

function validateSelections(question: Extract<Question, { type: 'multi_choice' }>, raw: string | string[] | undefined): AnswerCheck {
  const chosen = new Set((Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map((v) => v.trim()).filter((v) => v !== ''));
  if (chosen.size === 0) return question.required ? reject('required', NONE) : { ok: true, value: null };
  const known = question.options.map((o) => o.value);
  for (const value of chosen) if (!known.includes(value)) return reject('not_an_option', NONE);
  if (question.min_selections !== undefined && chosen.size < question.min_selections) {
    return reject('too_few_selections', { min: question.min_selections });
  }
  if (question.max_selections !== undefined && chosen.size > question.max_selections) {
    return reject('too_many_selections', { max: question.max_selections });
  }
  // Stored in the order of the options, so that equal selections are equal values.
  return { ok: true, value: known.filter((v) => chosen.has(v)) };
}

// The server does not know the user's time zone. Relative date bounds are resolved where they are
// most permissive (UTC−12 for a lower bound, UTC+14 for an upper one), so that nobody is refused a
// date that is valid where they are: "not in the future" accepts today's date in Kiribati.
const EARLIEST_UTC_OFFSET_MS = -12 * 3600 * 1000;
const LATEST_UTC_OFFSET_MS = 14 * 3600 * 1000;

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The calendar dates a date question accepts today, for validation and for the input's min/max attributes. */
export function dateBounds(question: Extract<Question, { type: 'date' }>, now: Date): { min?: string; max?: string } {
  const bounds: { min?: string; max?: string } = {};
  if (question.min) bounds.min = resolveDateBound(question.min, isoDay(now.getTime() + EARLIEST_UTC_OFFSET_MS));
  if (question.max) bounds.max = resolveDateBound(question.max, isoDay(now.getTime() + LATEST_UTC_OFFSET_MS));
  return bounds;
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

function parseNumber(text: string): number | undefined {
  const normalized = asciiDigits(text);
  if (!NUMBER.test(normalized)) return undefined;
  const value = Number(normalized);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Digits as typed on Japanese (full-width, folded by NFKC) and Arabic keyboards (Arabic-Indic and
 * Persian digits, the Arabic decimal separator), so that "٣٠" is 30 on the Arabic page.
 */
function asciiDigits(text: string): string {
  return text.normalize('NFKC')
    .replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660))
    .replace(/[\u06F0-\u06F9]/g, (d) => String(d.charCodeAt(0) - 0x06F0))
    .replace(/\u066B/g, '.')
    .replace(/\u2212/g, '-');
}
