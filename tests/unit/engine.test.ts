import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../src/config/load.ts';
import { selectQuestions, type EngineInput, type PromptLogEntry, type Selection, type StoredAnswer } from '../../src/screensets/engine.ts';
import { screenSetSchema, type ScreenSet } from '../../src/screensets/format.ts';
import { loadScreenSets, screenSetContext } from '../../src/screensets/loader.ts';

// Screen-sets are written as in a file, so that each rule reads in an author's terms.
const parseSet = (file: Record<string, unknown>): ScreenSet => screenSetSchema.parse(file);
const yesNo = (id: string, extra: Record<string, unknown> = {}) =>
  ({ id, type: 'boolean', purpose: 'personalization', label: id, ...extra });

const NOW = new Date('2026-03-10T12:00:00Z');
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const ago = (ms: number) => new Date(NOW.getTime() - ms);

const onboardingFile = {
  id: 'onboarding', title: 'Welcome', trigger: ['after_registration', 'after_login'], priority: 10,
  questions: [yesNo('goal'), yesNo('level'), yesNo('minutes')],
};
const onboarding = parseSet(onboardingFile);
const coffee = parseSet({
  id: 'coffee', title: 'Your coffee', trigger: ['after_login'],
  questions: [
    { id: 'brew_method', type: 'single_choice', purpose: 'personalization', label: 'How?', reask_after: '180d',
      options: [{ value: 'espresso', label: 'Espresso' }, { value: 'filter', label: 'Filter' }] },
    yesNo('milk'),
  ],
});

function input(overrides: {
  sets?: ScreenSet[];
  settings?: Partial<EngineInput['settings']>;
  client?: Partial<EngineInput['client']>;
  session?: Partial<EngineInput['session']>;
  accountAge?: number;
  answers?: Record<string, StoredAnswer>;
  history?: PromptLogEntry[];
} = {}): EngineInput {
  return {
    sets: overrides.sets ?? [coffee, onboarding],
    settings: { max_questions_per_session: 2, min_interval: 20 * 3600, skip_cooldown: 7 * 86400, ...overrides.settings },
    client: { id: 'demo-shop', profiling: true, ...overrides.client },
    session: { trigger: 'after_login', promptNone: false, locale: 'en', questionsShownThisSession: 0, ...overrides.session },
    account: { createdAt: ago(overrides.accountAge ?? 30 * DAY) },
    answers: new Map(Object.entries(overrides.answers ?? {})),
    history: overrides.history ?? [],
    now: NOW,
  };
}

const answered = (value: StoredAnswer['value'], age = DAY): StoredAnswer => ({ value, updatedAt: ago(age) });
const logged = (questionId: string, outcome: PromptLogEntry['outcome'], age: number, setId = 'onboarding', setVersion = 1): PromptLogEntry =>
  ({ questionId, setId, setVersion, outcome, at: ago(age) });

/** "set: question, question", or "nothing": the tables below read as the rules do. */
function asked(selection: Selection | null): string {
  if (!selection) return 'nothing';
  return `${selection.set.id}: ${selection.questions.map((q) => q.question.id).join(', ')}`;
}

describe('selectQuestions', () => {
  describe('never asks when it must not', () => {
    it.each([
      ['a prompt=none sign-in', input({ session: { promptNone: true } })],
      ['a client with profiling: false', input({ client: { profiling: false } })],
      ['a session that has had its two questions', input({ session: { questionsShownThisSession: 2 } })],
      ['a per-session ceiling of zero', input({ settings: { max_questions_per_session: 0 } })],
      ['a screen shown 19 hours ago (min_interval 20h)', input({ history: [logged('goal', 'shown', 19 * HOUR)] })],
      ['a screen shown a minute ago in another set', input({ history: [logged('milk', 'shown', 60_000, 'coffee')] })],
    ])('%s', (_, engineInput) => {
      expect(asked(selectQuestions(engineInput))).toBe('nothing');
    });
  });

  describe('the per-session ceiling and min_interval', () => {
    it.each([
      ['two questions when the session has had none', input(), 'onboarding: goal, level'],
      ['one question when the session has had one', input({ session: { questionsShownThisSession: 1 } }), 'onboarding: goal'],
      ['three when the ceiling is raised to three', input({ settings: { max_questions_per_session: 3 } }), 'onboarding: goal, level, minutes'],
      ['a screen-set max_questions below the ceiling',
        input({ sets: [parseSet({ ...onboardingFile, max_questions: 1 })] }), 'onboarding: goal'],
      ['again once min_interval has passed since the last screen', input({ history: [logged('goal', 'shown', 20 * HOUR)] }), 'onboarding: goal, level'],
      ['min_interval counts screens shown, not answers given later',
        input({ history: [logged('goal', 'shown', 21 * HOUR), logged('goal', 'skipped', 1 * HOUR)] }), 'onboarding: level, minutes'],
    ])('%s', (_, engineInput, expected) => {
      expect(asked(selectQuestions(engineInput))).toBe(expected);
    });
  });

  describe('trigger and audience', () => {
    const registrationOnly = parseSet({ id: 'welcome', title: 'Welcome', trigger: ['after_registration'], priority: 99, questions: [yesNo('why')] });
    const forClient = (clients: string[]) => parseSet({ id: 'shop', title: 'Shop', trigger: ['after_login'], priority: 99, audience: { clients }, questions: [yesNo('size')] });
    const forLocales = (locales: string[]) => parseSet({ id: 'local', title: 'Local', trigger: ['after_login'], priority: 99, audience: { locales }, questions: [yesNo('region')] });
    const olderThan = (age: string) => parseSet({ id: 'loyal', title: 'Loyal', trigger: ['after_login'], priority: 99, audience: { min_account_age: age }, questions: [yesNo('loyalty')] });
    const when = (condition: unknown) => parseSet({ id: 'follow-up', title: 'More', trigger: ['after_login'], priority: 99, audience: { when: condition }, questions: [yesNo('follow_up')] });
    const withSet = (set: ScreenSet, more: Parameters<typeof input>[0] = {}) => input({ sets: [coffee, set], ...more });

    it.each([
      ['after_registration on the first sign-in of a new account', withSet(registrationOnly, { session: { trigger: 'after_registration' } }), 'welcome: why'],
      ['no after_registration set on a later sign-in', withSet(registrationOnly), 'coffee: brew_method, milk'],
      ['no after_login set on the first sign-in', input({ sets: [coffee], session: { trigger: 'after_registration' } }), 'nothing'],
      ['the audience client', withSet(forClient(['demo-shop'])), 'shop: size'],
      ['not another client', withSet(forClient(['mobile-app'])), 'coffee: brew_method, milk'],
      ['the audience locale', withSet(forLocales(['ar', 'ja']), { session: { locale: 'ja' } }), 'local: region'],
      ['a regional variant of the audience locale', withSet(forLocales(['pt']), { session: { locale: 'pt-BR' } }), 'local: region'],
      ['not another locale', withSet(forLocales(['ar', 'ja']), { session: { locale: 'en' } }), 'coffee: brew_method, milk'],
      ['not a more general locale than the audience one', withSet(forLocales(['pt-BR']), { session: { locale: 'pt' } }), 'coffee: brew_method, milk'],
      ['not a language whose code merely starts the same', withSet(forLocales(['ar']), { session: { locale: 'arn' } }), 'coffee: brew_method, milk'],
      ['an account exactly min_account_age old', withSet(olderThan('7d'), { accountAge: 7 * DAY }), 'loyal: loyalty'],
      ['not an account younger than min_account_age', withSet(olderThan('7d'), { accountAge: 7 * DAY - 1 }), 'coffee: brew_method, milk'],
    ])('%s', (_, engineInput, expected) => {
      expect(asked(selectQuestions(engineInput))).toBe(expected);
    });

    const espresso = { brew_method: answered('espresso') };
    const styles = { brew_method: answered('filter'), style: answered(['black', 'iced']) };
    it.each([
      ['answered: holds', { answered: ['brew_method'] }, espresso, true],
      ['answered: not before', { answered: ['brew_method'] }, {}, false],
      ['not_answered: holds', { not_answered: ['brew_method'] }, {}, true],
      ['not_answered: not after', { not_answered: ['brew_method'] }, espresso, false],
      ['equals: the same answer', { equals: { brew_method: 'espresso' } }, espresso, true],
      ['equals: not another answer', { equals: { brew_method: 'filter' } }, espresso, false],
      ['equals: not without an answer', { equals: { brew_method: 'espresso' } }, {}, false],
      ['in: one of the answers', { in: { brew_method: ['filter', 'espresso'] } }, espresso, true],
      ['in: any selected option of a multi_choice answer', { in: { style: ['iced'] } }, styles, true],
      ['in: none selected', { in: { style: ['milk'] } }, styles, false],
      ['answered map: in by another name', { answered: { brew_method: ['espresso'] } }, espresso, true],
      ['several keys: all must hold', { answered: ['brew_method'], equals: { brew_method: 'filter' } }, espresso, false],
      ['all: every one', { all: [{ answered: ['brew_method'] }, { not_answered: ['style'] }] }, espresso, true],
      ['all: not if one fails', { all: [{ answered: ['brew_method'] }, { answered: ['style'] }] }, espresso, false],
      ['any: one is enough', { any: [{ answered: ['style'] }, { equals: { brew_method: 'espresso' } }] }, espresso, true],
      ['any: not if none holds', { any: [{ answered: ['style'] }, { equals: { brew_method: 'filter' } }] }, espresso, false],
    ])('when %s', (_, condition, answers, applies) => {
      const selection = selectQuestions(input({ sets: [when(condition)], answers }));
      expect(asked(selection)).toBe(applies ? 'follow-up: follow_up' : 'nothing');
    });
  });

  describe('answers, "Not now" and "Don\'t ask me again"', () => {
    it.each<[string, Parameters<typeof input>[0], string]>([
      ['an answered question is not asked again', { answers: { goal: answered(true) } }, 'onboarding: level, minutes'],
      ['nor one answered long ago without reask_after', { answers: { goal: answered(true, 3000 * DAY) } }, 'onboarding: level, minutes'],
      ['"Not now" hides a question for skip_cooldown', { history: [logged('goal', 'skipped', 7 * DAY - 1)] }, 'onboarding: level, minutes'],
      ['and not longer', { history: [logged('goal', 'skipped', 7 * DAY)] }, 'onboarding: goal, level'],
      ['the latest "Not now" counts', { history: [logged('goal', 'skipped', DAY), logged('goal', 'skipped', 30 * DAY)] }, 'onboarding: level, minutes'],
      ['"Don\'t ask me again" hides a question for good', { history: [logged('goal', 'declined', 3000 * DAY)] }, 'onboarding: level, minutes'],
      ['until the author bumps the screen-set version',
        { sets: [parseSet({ ...onboardingFile, version: 2 })], history: [logged('goal', 'declined', DAY, 'onboarding', 1)] }, 'onboarding: goal, level'],
      ['but not if it was declined at the current version',
        { sets: [parseSet({ ...onboardingFile, version: 2 })], history: [logged('goal', 'declined', DAY, 'onboarding', 1), logged('goal', 'declined', DAY, 'onboarding', 2)] }, 'onboarding: level, minutes'],
      ['a question declined in another screen-set stays declined',
        { sets: [parseSet({ ...onboardingFile, version: 2 })], history: [logged('goal', 'declined', DAY, 'old-onboarding', 1)] }, 'onboarding: level, minutes'],
      ['"shown" and "answered" rows alone hide nothing', { history: [logged('goal', 'shown', 2 * DAY), logged('goal', 'answered', 2 * DAY)] }, 'onboarding: goal, level'],
    ])('%s', (_, overrides, expected) => {
      expect(asked(selectQuestions(input(overrides)))).toBe(expected);
    });

    it('asks again when an answer is reask_after old, with the old answer as the default', () => {
      const notYet = selectQuestions(input({ sets: [coffee], answers: { brew_method: answered('espresso', 180 * DAY - 1) } }));
      expect(notYet?.questions).toEqual([{ question: coffee.questions[1] }]);
      const due = selectQuestions(input({ sets: [coffee], answers: { brew_method: answered('espresso', 180 * DAY) } }));
      expect(due?.questions).toEqual([{ question: coffee.questions[0], currentAnswer: 'espresso' }, { question: coffee.questions[1] }]);
    });
  });

  describe('order', () => {
    const set = (id: string, priority: number, questionIds: string[]) =>
      parseSet({ id, title: id, trigger: ['after_login'], priority, questions: questionIds.map((q) => yesNo(q)) });

    it.each([
      ['higher priority first', [set('low', 0, ['a']), set('high', 5, ['b'])], 'high: b'],
      ['negative priorities after the default', [set('late', -1, ['a']), set('normal', 0, ['b'])], 'normal: b'],
      ['equal priorities by screen-set id, whatever the input order', [set('zebra', 1, ['a']), set('apple', 1, ['b'])], 'apple: b'],
      ['questions in file order', [set('only', 0, ['third', 'first', 'second'])], 'only: third, first'],
    ])('%s', (_, sets, expected) => {
      expect(asked(selectQuestions(input({ sets })))).toBe(expected);
    });

    it('shows questions from one screen-set only, even when it has fewer than the budget', () => {
      const sets = [set('first', 2, ['a', 'b']), set('second', 1, ['c', 'd'])];
      expect(asked(selectQuestions(input({ sets, answers: { a: answered(true) } })))).toBe('first: b');
    });

    it('moves on to the next screen-set, down to the lowest priority, when one has nothing left to ask', () => {
      const sets = [set('first', 2, ['a', 'b']), set('second', -1, ['c', 'd'])];
      const history = [logged('b', 'declined', DAY, 'first')];
      expect(asked(selectQuestions(input({ sets, answers: { a: answered(true) }, history })))).toBe('second: c, d');
    });
  });
});


describe('the shipped screen-sets, sign-in after sign-in', () => {
  it('onboards a new user over their first days, two questions a day, then asks about coffee', () => {
    const { sets, errors } = loadScreenSets(path.join(PROJECT_ROOT, 'screensets'), screenSetContext(loadConfig({ env: {} })));
    expect(errors).toEqual([]);
    const createdAt = new Date('2026-03-01T09:00:00Z');
    const answers = new Map<string, StoredAnswer>();
    const history: PromptLogEntry[] = [];
    const screens: string[] = [];
    for (let day = 0; day < 10; day++) {
      const now = new Date(createdAt.getTime() + day * DAY);
      const selection = selectQuestions({
        sets,
        settings: { max_questions_per_session: 2, min_interval: 20 * 3600, skip_cooldown: 7 * 86400 },
        client: { id: 'demo-shop', profiling: true },
        session: { trigger: day === 0 ? 'after_registration' : 'after_login', promptNone: false, locale: 'ar', questionsShownThisSession: 0 },
        account: { createdAt },
        answers,
        history,
        now,
      });
      screens.push(asked(selection));
      for (const { question } of selection?.questions ?? []) {
        const setId = selection!.set.id;
        history.push({ questionId: question.id, setId, setVersion: 1, outcome: 'shown', at: now });
        // The user answers everything except the birthday, which they decline.
        const outcome = question.id === 'birthday' ? 'declined' : 'answered';
        history.push({ questionId: question.id, setId, setVersion: 1, outcome, at: now });
        if (outcome === 'answered') answers.set(question.id, { value: 'x', updatedAt: now });
      }
    }
    expect(screens).toEqual([
      'language-onboarding: learning_motivation, target_level',
      'language-onboarding: daily_minutes, age_range',
      'coffee: birthday, brew_method',
      'coffee: coffee_style',
      'nothing',
      'nothing',
      'nothing',
      'coffee-sustainability: sustainability_importance, sustainability_practices',
      'nothing',
      'nothing',
    ]);
  });
});
