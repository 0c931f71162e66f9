import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { conditionHolds, selectQuestions, type EngineInput, type PromptLogEntry, type StoredAnswer } from '../../src/screensets/engine.ts';
import type { Condition, Question, ScreenSet } from '../../src/screensets/format.ts';

// Small pools of ids make collisions (shared questions in history, conditions that hold, equal
// priorities) likely, which is where the rules interact.
const QUESTION_IDS = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'q9', 'q10', 'q11'];
const SET_IDS = ['s0', 's1', 's2', 's3', 's4', 's5'];
const CLIENTS = ['demo-shop', 'mobile-app'];
const NOW = new Date('2026-03-10T12:00:00Z').getTime();
const HOUR = 3600;
const DAY = 24 * HOUR;
const RUNS = { numRuns: 1000 };

const secondsUpTo = (max: number) => fc.integer({ min: 0, max });
const pastDate = (maxSeconds: number) => secondsUpTo(maxSeconds).map((s) => new Date(NOW - s * 1000));

const condition: fc.Arbitrary<Condition> = fc.letrec<{ condition: Condition }>((tie) => ({
  condition: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(...QUESTION_IDS).map((questionId): Condition => ({ op: 'answered', questionId })),
    fc.constantFrom(...QUESTION_IDS).map((questionId): Condition => ({ op: 'not_answered', questionId })),
    fc.record({ questionId: fc.constantFrom(...QUESTION_IDS), values: fc.array(fc.boolean(), { minLength: 1, maxLength: 2 }) })
      .map(({ questionId, values }): Condition => ({ op: 'in', questionId, values })),
    fc.array(tie('condition'), { minLength: 1, maxLength: 3 }).map((conditions): Condition => ({ op: 'all', conditions })),
    fc.array(tie('condition'), { minLength: 1, maxLength: 3 }).map((conditions): Condition => ({ op: 'any', conditions })),
  ),
})).condition;

const audience = fc.record({
  clients: fc.subarray(CLIENTS, { minLength: 1 }),
  locales: fc.subarray(['en', 'ar'], { minLength: 1 }),
  min_account_age: fc.integer({ min: 1, max: 30 * DAY }),
  when: condition,
}, { requiredKeys: [] });

/** Screen-sets with distinct ids, and question ids unique across all of them, as the loader ensures. */
const screenSets: fc.Arbitrary<ScreenSet[]> = fc.tuple(
  fc.shuffledSubarray(SET_IDS, { minLength: 1 }),
  fc.shuffledSubarray(QUESTION_IDS, { minLength: 1 }),
).chain(([setIds, questionIds]) => fc.tuple(
  ...setIds.map((id, index) => fc.record({
    version: fc.integer({ min: 1, max: 3 }),
    trigger: fc.subarray(['after_registration', 'after_login'] as const, { minLength: 1 }),
    priority: fc.integer({ min: -1, max: 2 }),
    max_questions: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    audience: fc.option(audience, { nil: undefined }),
    reaskAfter: fc.array(fc.option(fc.integer({ min: 1, max: 60 * DAY }), { nil: undefined }), { minLength: questionIds.length, maxLength: questionIds.length }),
  }).map(({ reaskAfter, max_questions, audience: setAudience, ...fields }): ScreenSet => ({
    id,
    title: id,
    ...fields,
    ...(max_questions === undefined ? {} : { max_questions }),
    ...(setAudience === undefined ? {} : { audience: setAudience }),
    // Deal the question ids out to the sets round-robin; a set may end up without questions.
    questions: questionIds.flatMap((questionId, q): Question[] => (q % setIds.length === index
      ? [{ id: questionId, type: 'boolean', label: questionId, purpose: 'personalization', required: false, ...(reaskAfter[q] === undefined ? {} : { reask_after: reaskAfter[q] }) }]
      : [])),
  }))),
)).map((sets) => sets.filter((set) => set.questions.length > 0));

const historyEntry: fc.Arbitrary<PromptLogEntry> = fc.record({
  questionId: fc.constantFrom(...QUESTION_IDS),
  setId: fc.constantFrom(...SET_IDS),
  setVersion: fc.integer({ min: 1, max: 3 }),
  outcome: fc.constantFrom('shown', 'answered', 'skipped', 'declined'),
  at: pastDate(60 * DAY),
});

const answers = fc.dictionary(
  fc.constantFrom(...QUESTION_IDS),
  fc.record({ value: fc.boolean(), updatedAt: pastDate(90 * DAY) }),
  { maxKeys: QUESTION_IDS.length },
).map((record) => new Map<string, StoredAnswer>(Object.entries(record)));

const engineInput: fc.Arbitrary<EngineInput> = fc.record({
  sets: screenSets,
  settings: fc.record({
    // Biased towards the default and a fresh session, so that most inputs leave room to ask.
    max_questions_per_session: fc.oneof(fc.constant(2), fc.integer({ min: 0, max: 3 })),
    min_interval: secondsUpTo(2 * DAY),
    skip_cooldown: secondsUpTo(14 * DAY),
  }),
  client: fc.record({ id: fc.constantFrom(...CLIENTS), profiling: fc.boolean() }),
  session: fc.record({
    trigger: fc.constantFrom('after_registration', 'after_login'),
    promptNone: fc.boolean(),
    locale: fc.constantFrom('en', 'ar', 'ar-EG', 'ja'),
    questionsShownThisSession: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
  }),
  account: fc.record({ createdAt: pastDate(40 * DAY) }),
  answers,
  history: fc.array(historyEntry, { maxLength: 30 }),
  now: fc.constant(new Date(NOW)),
});

/** Inputs in which something may be asked: a client that profiles, a sign-in with a user to ask. */
const askableInput = engineInput.map((input) => ({
  ...input,
  client: { ...input.client, profiling: true },
  session: { ...input.session, promptNone: false },
}));

const ms = (seconds: number) => seconds * 1000;

/** An independent reading of the audience rules, to check the engine's choice against. */
function audienceAllows(set: ScreenSet, input: EngineInput): boolean {
  const a = set.audience;
  if (!set.trigger.includes(input.session.trigger)) return false;
  if (!a) return true;
  return (!a.clients || a.clients.includes(input.client.id))
    && (!a.locales || a.locales.some((l) => input.session.locale === l || input.session.locale.startsWith(`${l}-`)))
    && (a.min_account_age === undefined || NOW - input.account.createdAt.getTime() >= ms(a.min_account_age))
    && (!a.when || conditionHolds(a.when, input.answers));
}

describe('selectQuestions: invariants', () => {
  it('never asks more than the per-session ceiling allows, nor more than the screen-set allows', () => {
    fc.assert(fc.property(engineInput, (input) => {
      const selection = selectQuestions(input);
      if (!selection) return;
      const remaining = input.settings.max_questions_per_session - input.session.questionsShownThisSession;
      expect(selection.questions.length).toBeGreaterThan(0);
      expect(selection.questions.length).toBeLessThanOrEqual(remaining);
      expect(selection.questions.length).toBeLessThanOrEqual(selection.set.max_questions ?? Infinity);
    }), RUNS);
  });

  it('never asks a question declined at the screen-set\'s current version', () => {
    fc.assert(fc.property(askableInput, (input) => {
      const selection = selectQuestions(input);
      for (const { question } of selection?.questions ?? []) {
        const declined = input.history.some((e) => e.outcome === 'declined' && e.questionId === question.id
          && e.setId === selection!.set.id && e.setVersion === selection!.set.version);
        expect(declined).toBe(false);
      }
    }), RUNS);
  });

  it('never asks for prompt=none, for a client with profiling: false, or within min_interval of the last screen', () => {
    fc.assert(fc.property(engineInput, (input) => {
      const lastScreenTooRecent = input.history.some((e) => e.outcome === 'shown' && NOW - e.at.getTime() < ms(input.settings.min_interval));
      if (input.session.promptNone || !input.client.profiling || lastScreenTooRecent) {
        expect(selectQuestions(input)).toBeNull();
      }
    }), RUNS);
  });

  it('asks only questions of one screen-set whose trigger and audience match, in file order, each due', () => {
    fc.assert(fc.property(askableInput, (input) => {
      const selection = selectQuestions(input);
      if (!selection) return;
      const { set, questions } = selection;
      expect(input.sets).toContain(set);
      expect(audienceAllows(set, input)).toBe(true);
      const positions = questions.map(({ question }) => set.questions.indexOf(question));
      expect(positions.every((p) => p >= 0)).toBe(true);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      for (const { question, currentAnswer } of questions) {
        const answer = input.answers.get(question.id);
        expect(currentAnswer).toBe(answer?.value);
        if (answer) expect(NOW - answer.updatedAt.getTime()).toBeGreaterThanOrEqual(ms(question.reask_after ?? Infinity));
        const skippedRecently = input.history.some((e) => e.outcome === 'skipped' && e.questionId === question.id
          && NOW - e.at.getTime() < ms(input.settings.skip_cooldown));
        expect(skippedRecently).toBe(false);
      }
    }), RUNS);
  });

  it('decides the same for equal inputs, whatever the order of the screen-sets', () => {
    const withShuffledSets = askableInput.chain((input) => fc.tuple(
      fc.constant(input),
      fc.shuffledSubarray([...input.sets], { minLength: input.sets.length, maxLength: input.sets.length }),
    ));
    fc.assert(fc.property(withShuffledSets, ([input, shuffled]) => {
      const first = selectQuestions(input);
      expect(selectQuestions(structuredClone(input))).toEqual(first);
      expect(selectQuestions({ ...input, sets: shuffled })).toEqual(first);
    }), RUNS);
  });

  it('asks something whenever a matching screen-set has a question due and nothing forbids asking', () => {
    // The other side of the rules: the engine is not allowed to stay silent for no reason.
    const fresh = askableInput.map((input) => ({
      ...input,
      settings: { ...input.settings, max_questions_per_session: 2 },
      session: { ...input.session, questionsShownThisSession: 0 },
      answers: new Map<string, StoredAnswer>(),
      history: [],
    }));
    fc.assert(fc.property(fresh, (input) => {
      const anySetApplies = input.sets.some((set) => audienceAllows(set, input));
      expect(selectQuestions(input) !== null).toBe(anySetApplies);
    }), RUNS);
  });
});
