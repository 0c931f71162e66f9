// Answers, their history, rewards and their outbox events: the one place that decides what a
// recorded, changed or erased answer writes. The question screen (src/screensets/profiling.ts),
// the preference center and retention (src/consent/) call these in their own transactions, so an
// answer is stored with its consent, its prompt-log rows or its erasure batch, or not at all.
// Every write takes the caller's Transaction first; the SQL is in ./repository.ts.
import type { Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { consentSnapshot, consentStates, type ConsentSnapshot } from '../consent/ledger.ts';
import { recordEvent } from '../events/outbox.ts';
import type { AnswerValue } from '../screensets/engine.ts';
import type { Question } from '../screensets/format.ts';
import { localize } from '../screensets/loader.ts';
import type { AnswerSource, Database } from '../storage/schema.ts';
import { deleteAnswers, insertHistory, insertReward, lockAnswers, questionsUnder, upsertAnswers } from './repository.ts';

type Locales = Pick<Config, 'locales'>;

/** The screen-set a question was asked from: its id and the version the user saw. */
export interface SetRef {
  id: string;
  version: number;
}

/** Answers given on one question screen of a screen-set. */
export interface ScreenAnswers {
  accountId: string;
  clientId: string;
  locale: string;
  source: AnswerSource;
  set: SetRef;
  answers: readonly {
    question: Question;
    value: AnswerValue;
    /** The consent the answer is stored under, as its event carries it. */
    consent: ConsentSnapshot;
  }[];
}

/**
 * Records answers given on a question screen: the current answers, a history row each, an
 * answer.recorded or answer.changed event (an answer confirmed unchanged refreshes its time and
 * is no news downstream), and the questions' rewards, once per account and question.
 */
export async function recordAnswers(trx: Transaction<Database>, config: Locales, input: ScreenAnswers, now: Date): Promise<void> {
  if (input.answers.length === 0) return;
  const { accountId, clientId, locale, source, set } = input;
  const previous = await lockAnswers(trx, accountId, input.answers.map((a) => a.question.id));
  await upsertAnswers(trx, input.answers.map(({ question, value }) => ({
    accountId, questionId: question.id, value, purpose: question.purpose, setId: set.id, at: now,
  })));
  await insertHistory(trx, input.answers.map(({ question, value }) => ({
    accountId, questionId: question.id, value, purpose: question.purpose, setId: set.id, setVersion: set.version,
    label: localize(question.label, locale, config.locales.default), locale, clientId, source, at: now,
  })));
  for (const { question, value, consent } of input.answers) {
    const before = previous.get(question.id)?.value;
    const payload = {
      account_id: accountId, question_id: question.id, screenset_id: set.id, screenset_version: set.version,
      purpose: question.purpose, value, client_id: clientId, locale, source, consent,
    };
    if (before === undefined) await recordEvent(trx, { type: 'answer.recorded', accountId, payload }, now);
    else if (!sameValue(before, value)) {
      await recordEvent(trx, { type: 'answer.changed', accountId, payload: { ...payload, previous_value: before } }, now);
    }
    if (question.reward) await grantReward(trx, config, { accountId, clientId, locale }, question, now);
  }
}

/** A change to an answer the account already has, made outside a question screen (the preference center). */
export interface AnswerChange {
  accountId: string;
  question: Question;
  /** The screen-set the question belongs to now: the one its label and purpose are read from. */
  set: SetRef;
  value: AnswerValue;
  locale: string;
  source: AnswerSource;
  /** The app the user made the change in, if any. */
  clientId: string | null;
}

/**
 * Changes an existing answer, with its history row and, when the value differs, an
 * answer.changed event carrying the purpose's consent now. False: the account has no answer to
 * the question (nothing is written).
 */
export async function changeAnswer(trx: Transaction<Database>, config: Pick<Config, 'locales' | 'purposes'>, change: AnswerChange, now: Date): Promise<boolean> {
  const { accountId, question, set, value, locale, source } = change;
  const before = (await lockAnswers(trx, accountId, [question.id])).get(question.id);
  if (!before) return false;
  await upsertAnswers(trx, [{ accountId, questionId: question.id, value, purpose: question.purpose, setId: set.id, at: now }]);
  await insertHistory(trx, [{
    accountId, questionId: question.id, value, purpose: question.purpose, setId: set.id, setVersion: set.version,
    label: localize(question.label, locale, config.locales.default), locale, clientId: change.clientId, source, at: now,
  }]);
  if (!sameValue(before.value, value)) {
    const consent = consentSnapshot(question.purpose, config.purposes[question.purpose], (await consentStates(trx, accountId)).get(question.purpose));
    await recordEvent(trx, {
      type: 'answer.changed', accountId,
      payload: { account_id: accountId, question_id: question.id, purpose: question.purpose, value, previous_value: before.value, locale, source, consent },
    }, now);
  }
  return true;
}

/** Deletes answers, each with a history row (its earlier values blanked) and an answer.deleted event. */
export async function eraseAnswers(
  trx: Transaction<Database>, accountId: string, questionIds: readonly string[],
  how: { locale: string; source: AnswerSource | 'retention' }, now: Date,
): Promise<void> {
  const deleted = await deleteAnswers(trx, accountId, questionIds);
  if (deleted.length === 0) return;
  // The question may be gone from the screen-sets (retention runs long after): the row names it
  // by id, with no set version or app, rather than guess them.
  await insertHistory(trx, deleted.map((row) => ({
    accountId, questionId: row.questionId, value: null, purpose: row.purpose, setId: row.setId, setVersion: 0,
    label: row.questionId, locale: how.locale, clientId: null, source: how.source, at: now,
  })));
  for (const row of deleted) {
    await recordEvent(trx, {
      type: 'answer.deleted', accountId,
      payload: { account_id: accountId, question_id: row.questionId, purpose: row.purpose, source: how.source },
    }, now);
  }
}

/** Deletes every answer the account gave under a purpose (a withdrawn consent, with its answers). */
export async function eraseAnswersUnder(
  trx: Transaction<Database>, accountId: string, purpose: string, how: { locale: string; source: AnswerSource }, now: Date,
): Promise<void> {
  await eraseAnswers(trx, accountId, await questionsUnder(trx, accountId, purpose), how, now);
}

async function grantReward(
  trx: Transaction<Database>, config: Locales, input: { accountId: string; clientId: string; locale: string }, question: Question, now: Date,
): Promise<void> {
  const reward = question.reward!;
  const label = localize(reward.label, input.locale, config.locales.default);
  const points = reward.points ?? null;
  // Once per account and question: answering again, or a second node racing, grants nothing more.
  if (!await insertReward(trx, { accountId: input.accountId, questionId: question.id, points, label, at: now })) return;
  await recordEvent(trx, {
    type: 'reward.granted', accountId: input.accountId,
    payload: { account_id: input.accountId, question_id: question.id, points, label, client_id: input.clientId },
  }, now);
}

function sameValue(a: AnswerValue, b: AnswerValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
