import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { refreshConsentCurrent } from '../../src/consent/ledger.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Condition, ConsentStateName } from '../../src/segments/conditions.ts';
import { SegmentQueryError } from '../../src/segments/query.ts';
import { createSegments, type Segments } from '../../src/segments/service.ts';
import { screenSetSchema, type Question, type ScreenSet } from '../../src/screensets/format.ts';
import { createStats } from '../../src/stats/screensets.ts';
import type { Storage } from '../../src/storage/database.ts';
import { BACKENDS } from '../support/database.ts';
import { openTestStorage } from '../support/database.ts';

// Segment queries against a real database, on each backend: a few hundred generated accounts
// with answers and consent histories, and every count checked against the same condition
// evaluated in JavaScript over the generated data. Question ids carry a tag unique to the run
// and every query is anchored to an answer only these accounts have, so the counts hold on a
// PostgreSQL database shared with other test files.

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2026, 5, 1, 12));
const ACCOUNTS = 400;

// A small deterministic generator: the same data on every run and both backends.
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const tag = `t${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const Q = {
  anchor: `${tag}_anchor`, brew: `${tag}_brew`, flavours: `${tag}_flavours`, cups: `${tag}_cups`,
  birthday: `${tag}_birthday`, events: `${tag}_events`, city: `${tag}_city`,
};
const BREWS = ['espresso', 'filter', 'french_press', 'moka'];
const FLAVOURS = ['nutty', 'fruity', 'chocolate'];

const config: Config = loadConfig({
  env: {},
  overrides: {
    env: 'test',
    purposes: {
      // A purpose not resting on consent: its answers are always released to clients registered for it.
      service: { legal_basis: 'contract', version: 1, title: 'Running the service' },
      // Version 2: grants of version 1 are outdated.
      offers: { legal_basis: 'consent', version: 2, title: 'Offers' },
    },
  },
});

const screenSet: ScreenSet = screenSetSchema.parse({
  id: `${tag}-set`, title: 'Segments', trigger: ['after_login'],
  questions: [
    { id: Q.anchor, type: 'boolean', purpose: 'service', label: 'Anchor' },
    { id: Q.brew, type: 'single_choice', purpose: 'personalization', label: 'Brew', options: BREWS.map((value) => ({ value, label: value })) },
    { id: Q.flavours, type: 'multi_choice', purpose: 'personalization', label: 'Flavours', options: FLAVOURS.map((value) => ({ value, label: value })) },
    { id: Q.cups, type: 'number', purpose: 'personalization', label: 'Cups', min: 0, max: 20 },
    { id: Q.birthday, type: 'date', purpose: 'offers', label: 'Birthday' },
    { id: Q.events, type: 'boolean', purpose: 'offers', label: 'Events' },
    { id: Q.city, type: 'text', purpose: 'personalization', label: 'City' },
  ],
});
const questions = new Map<string, Question>(screenSet.questions.map((q) => [q.id, q]));

type Value = string | number | boolean | string[];
interface GeneratedAnswer { value: Value; purpose: string; updatedAt: Date }
interface GeneratedAccount {
  id: string;
  answers: Map<string, GeneratedAnswer>;
  consents: Map<string, { action: 'granted' | 'withdrawn'; version: number }>;
  ledger: { purpose: string; action: 'granted' | 'withdrawn'; version: number; at: Date }[];
}

function generate(): GeneratedAccount[] {
  const next = random(20261123);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const daysAgo = (max: number) => new Date(NOW.getTime() - Math.floor(next() * max * DAY));
  return Array.from({ length: ACCOUNTS }, () => {
    const answers = new Map<string, GeneratedAnswer>();
    answers.set(Q.anchor, { value: true, purpose: 'service', updatedAt: daysAgo(400) });
    // A few brew answers were given under offers, before the question moved purposes: the row's
    // purpose is what the user agreed to, and it is the one that counts.
    if (next() < 0.7) answers.set(Q.brew, { value: pick(BREWS), purpose: next() < 0.08 ? 'offers' : 'personalization', updatedAt: daysAgo(400) });
    if (next() < 0.5) {
      const chosen = FLAVOURS.filter(() => next() < 0.45);
      if (chosen.length > 0) answers.set(Q.flavours, { value: chosen, purpose: 'personalization', updatedAt: daysAgo(400) });
    }
    if (next() < 0.5) answers.set(Q.cups, { value: Math.floor(next() * 7), purpose: 'personalization', updatedAt: daysAgo(400) });
    if (next() < 0.4) answers.set(Q.birthday, { value: `19${70 + Math.floor(next() * 30)}-0${1 + Math.floor(next() * 9)}-1${Math.floor(next() * 9)}`, purpose: 'offers', updatedAt: daysAgo(400) });
    if (next() < 0.4) answers.set(Q.events, { value: next() < 0.5, purpose: 'offers', updatedAt: daysAgo(400) });
    if (next() < 0.2) answers.set(Q.city, { value: pick(['Kyoto', 'Cairo', 'Lyon']), purpose: 'personalization', updatedAt: daysAgo(400) });
    const ledger: GeneratedAccount['ledger'] = [];
    for (const purpose of ['personalization', 'offers']) {
      const rows = Math.floor(next() * 4);
      for (let i = 0; i < rows; i++) {
        ledger.push({ purpose, action: next() < 0.7 ? 'granted' : 'withdrawn', version: purpose === 'offers' ? (next() < 0.5 ? 1 : 2) : 1, at: daysAgo(400) });
      }
    }
    // Rows are appended in time order across purposes, as the application writes them.
    ledger.sort((a, b) => a.at.getTime() - b.at.getTime());
    const consents = new Map<string, { action: 'granted' | 'withdrawn'; version: number }>();
    for (const row of ledger) consents.set(row.purpose, { action: row.action, version: row.version });
    return { id: randomUUID(), answers, consents, ledger };
  });
}

// ---- The same conditions, evaluated in JavaScript ------------------------------------------

function consentState(account: GeneratedAccount, purpose: string): ConsentStateName {
  const latest = account.consents.get(purpose);
  if (!latest) return 'none';
  if (latest.action === 'withdrawn') return 'withdrawn';
  return latest.version === config.purposes[purpose]!.version ? 'granted' : 'outdated';
}

function released(account: GeneratedAccount, questionId: string, purposes: readonly string[]): GeneratedAnswer | undefined {
  const answer = account.answers.get(questionId);
  if (!answer || !purposes.includes(answer.purpose)) return undefined;
  if (config.purposes[answer.purpose]!.legal_basis !== 'consent') return answer;
  return consentState(account, answer.purpose) === 'granted' ? answer : undefined;
}

function holds(condition: Condition, account: GeneratedAccount, purposes: readonly string[]): boolean {
  if ('all' in condition) return condition.all.every((c) => holds(c, account, purposes));
  if ('any' in condition) return condition.any.some((c) => holds(c, account, purposes));
  if ('not' in condition) return !holds(condition.not, account, purposes);
  if ('consent' in condition) return consentState(account, condition.consent) === condition.state;
  if ('answered' in condition) return released(account, condition.answered, purposes) !== undefined;
  if ('not_answered' in condition) return released(account, condition.not_answered, purposes) === undefined;
  const answer = released(account, condition.answer, purposes);
  if (!answer) return false;
  if (condition.in) {
    const wanted = condition.in.map(String);
    const values = Array.isArray(answer.value) ? answer.value : [String(answer.value)];
    if (!values.some((v) => wanted.includes(v))) return false;
  }
  if (condition.answered_within) {
    const days = Number(condition.answered_within.replace('d', ''));
    if (answer.updatedAt.getTime() < NOW.getTime() - days * DAY) return false;
  }
  return true;
}

const accounts = generate();
/** Dates some accounts gave, so that the date case matches something. */
const birthdays = [...new Set(accounts.flatMap((a) => (a.answers.get(Q.birthday)?.value as string | undefined) ?? []))].slice(0, 6);

const ALL = ['personalization', 'offers', 'service'];
const PERSONALIZATION = ['personalization', 'service'];
const anchored = (condition: Condition): Condition => ({ all: [{ answered: Q.anchor }, condition] });

const CASES: [string, Condition, readonly string[]][] = [
  ['a single value', { answer: Q.brew, in: ['espresso'] }, PERSONALIZATION],
  ['several values, recent, with consent, in one condition', { all: [
    { answer: Q.brew, in: ['espresso', 'moka'], answered_within: '180d' }, { consent: 'personalization', state: 'granted' },
  ] }, PERSONALIZATION],
  ['the benchmark query', { all: [
    { answer: Q.brew, in: ['espresso'] }, { consent: 'personalization', state: 'granted' }, { answered_within: '180d', answer: Q.brew },
  ] }, ALL],
  ['answers under offers count for a client with offers', { answer: Q.brew, in: ['filter'] }, ALL],
  ['any of several options of a multiple choice', { answer: Q.flavours, in: ['nutty', 'chocolate'] }, PERSONALIZATION],
  ['numbers and booleans', { any: [{ answer: Q.cups, in: [0, 1] }, { answer: Q.events, in: [true] }] }, ALL],
  ['a date', { answer: Q.birthday, in: birthdays }, ALL],
  ['text', { answer: Q.city, in: ['Kyoto'] }, PERSONALIZATION],
  ['not answered', { not_answered: Q.brew }, PERSONALIZATION],
  ['answered, recently', { answer: Q.flavours, answered_within: '90d' }, PERSONALIZATION],
  ['not', { not: { consent: 'offers', state: 'granted' } }, ALL],
  ['consent outdated', { consent: 'offers', state: 'outdated' }, ALL],
  ['consent none', { consent: 'offers', state: 'none' }, ALL],
  ['consent withdrawn', { consent: 'personalization', state: 'withdrawn' }, PERSONALIZATION],
  ['two value lists on one question (merged)', { all: [
    { answer: Q.brew, in: ['espresso', 'moka'] }, { answer: Q.brew, in: ['moka', 'filter'], answered_within: '300d' }, { answered: Q.brew },
  ] }, PERSONALIZATION],
  ['two option lists on a multiple choice (both must hold)', { all: [{ answer: Q.flavours, in: ['nutty'] }, { answer: Q.flavours, in: ['fruity'] }] }, PERSONALIZATION],
  ['nested groups', { any: [
    { all: [{ answered: Q.birthday }, { not_answered: Q.events }] },
    { all: [{ answer: Q.brew, in: ['moka'] }, { not_answered: Q.cups }] },
  ] }, ALL],
];

describe.each(BACKENDS)('segments on $name', (backend) => {
  let storage: Storage;
  let segments: Segments;

  beforeAll(async () => {
    storage = await openTestStorage(backend);
    const { db } = storage;
    for (let i = 0; i < accounts.length; i += 200) {
      const chunk = accounts.slice(i, i + 200);
      await db.insertInto('accounts').values(chunk.map((a) => ({
        id: a.id, email: `${a.id}@segments.test`, password_hash: 'unused', created_at: NOW, updated_at: NOW,
      }))).execute();
      const answers = chunk.flatMap((a) => [...a.answers].map(([questionId, answer]) => ({
        account_id: a.id, question_id: questionId, value: JSON.stringify(answer.value), purpose: answer.purpose,
        set_id: screenSet.id, created_at: answer.updatedAt, updated_at: answer.updatedAt,
      })));
      await db.insertInto('answers').values(answers).execute();
      const ledger = chunk.flatMap((a) => a.ledger.map((row) => ({
        subject: a.id, purpose: row.purpose, purpose_version: row.version, action: row.action, client_id: null,
        source: 'api' as const, locale: 'en', text_hash: 'x', at: row.at,
      })));
      // Written in bulk, as an import does: consent_current is brought up to date after.
      if (ledger.length > 0) {
        await db.transaction().execute(async (trx) => {
          await trx.insertInto('consent_ledger').values(ledger).execute();
          await refreshConsentCurrent(trx, ledger);
        });
      }
    }
    segments = createSegments({ db, config, question: (id) => questions.get(id), clock: () => NOW });
  });
  afterAll(async () => { await storage?.close(); });

  it.each(CASES)('counts %s as the data says', async (_name, condition, purposes) => {
    const expected = accounts.filter((a) => holds(anchored(condition), a, purposes)).length;
    expect(expected, 'the generated data exercises the condition').toBeGreaterThan(0);
    expect(expected).toBeLessThan(ACCOUNTS);
    expect(await segments.count(anchored(condition), { purposes })).toBe(expected);
    // The same condition planned the two other ways: as a union of driven branches, and tested
    // account by account (nothing required at the top level). Every plan must agree.
    expect(await segments.count({ any: [anchored(condition)] }, { purposes })).toBe(expected);
    expect(await segments.count({ not: { not: anchored(condition) } }, { purposes })).toBe(expected);
  });

  it('matches nobody when merged value lists have nothing in common', async () => {
    expect(await segments.count(anchored({ all: [{ answer: Q.brew, in: ['espresso'] }, { answer: Q.brew, in: ['moka'] }] }), { purposes: ALL })).toBe(0);
  });

  it('leaves out answers whose consent is withdrawn or outdated', async () => {
    const condition = anchored({ answer: Q.birthday });
    const withConsent = accounts.filter((a) => a.answers.has(Q.birthday) && consentState(a, 'offers') === 'granted').length;
    const stored = accounts.filter((a) => a.answers.has(Q.birthday)).length;
    expect(withConsent).toBeLessThan(stored);
    expect(await segments.count(condition, { purposes: ALL })).toBe(withConsent);
  });

  it.each([
    ['driven from answers', anchored({ all: [{ answer: Q.brew, in: ['espresso', 'filter'] }, { not: { consent: 'offers', state: 'none' } }] })],
    ['a union of branches', { any: [anchored({ answer: Q.brew, in: ['espresso'] }), anchored({ answer: Q.flavours, in: ['fruity'] })] }],
    ['account by account', { not: { not: anchored({ any: [{ answer: Q.brew, in: ['espresso', 'filter'] }, { consent: 'offers', state: 'none' }] }) } }],
  ] as [string, Condition][])('pages through the matching accounts in id order with a cursor (%s)', async (_plan, condition) => {
    const expected = accounts.filter((a) => holds(condition, a, ALL)).map((a) => a.id).sort();
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await segments.accounts(condition, { purposes: ALL }, { limit: 37, cursor });
      seen.push(...page.accountIds);
      cursor = page.nextCursor ?? undefined;
      pages += 1;
    } while (cursor);
    // The database orders text by its collation; compare as sets.
    expect([...seen].sort()).toEqual(expected);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil(expected.length / 37) || 1);
    expect(await segments.count(condition, { purposes: ALL })).toBe(expected.length);
  });

  it('refuses a cursor of another query', async () => {
    const condition = anchored({ answer: Q.brew, in: ['espresso'] });
    const first = await segments.accounts(condition, { purposes: ALL }, { limit: 5 });
    await expect(segments.accounts(anchored({ answered: Q.brew }), { purposes: ALL }, { limit: 5, cursor: first.nextCursor! }))
      .rejects.toMatchObject({ code: 'invalid_cursor' });
    await expect(segments.accounts(condition, { purposes: ALL }, { limit: 5, cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: 'invalid_cursor' });
  });

  it('refuses questions and consents outside the client\'s purposes, and says where', async () => {
    const refused = await segments.count({ all: [{ answered: Q.anchor }, { answer: Q.birthday, in: ['1980-01-01'] }] }, { purposes: PERSONALIZATION })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SegmentQueryError);
    expect(refused).toMatchObject({ code: 'purpose_not_allowed', path: ['all', 1, 'answer'] });
    await expect(segments.count({ consent: 'offers', state: 'granted' }, { purposes: PERSONALIZATION }))
      .rejects.toMatchObject({ code: 'purpose_not_allowed', path: ['consent'] });
  });

  it('refuses unknown questions, impossible values and consents that are not consents', async () => {
    await expect(segments.count({ answered: `${tag}_nope` }, { purposes: ALL })).rejects.toMatchObject({ code: 'invalid_condition', path: ['answered'] });
    await expect(segments.count({ all: [{ answer: Q.brew, in: ['espresso', 'latte'] }] }, { purposes: ALL }))
      .rejects.toMatchObject({ code: 'invalid_condition', path: ['all', 0, 'in', 1], message: expect.stringContaining('espresso, filter, french_press, moka') });
    await expect(segments.count({ answer: Q.cups, in: ['two'] }, { purposes: ALL })).rejects.toMatchObject({ code: 'invalid_condition', path: ['in', 0] });
    await expect(segments.count({ answer: Q.birthday, in: ['1990-02-30'] }, { purposes: ALL })).rejects.toMatchObject({ code: 'invalid_condition' });
    await expect(segments.count({ consent: 'service', state: 'granted' }, { purposes: ALL })).rejects.toMatchObject({ code: 'invalid_condition', message: expect.stringContaining('contract') });
    await expect(segments.count({ consent: 'marketing', state: 'granted' }, { purposes: ALL })).rejects.toMatchObject({ code: 'invalid_condition' });
  });

  describe('screen-set statistics', () => {
    it('counts outcomes per question and day, and distributes current answers under current consent', async () => {
      const { db } = storage;
      const setId = `${tag}-stats`;
      const day = (n: number, hour = 10) => new Date(Date.UTC(2026, 4, n, hour));
      const someone = accounts.slice(0, 6);
      const rows: { account: number; question: string; outcome: 'shown' | 'answered' | 'skipped' | 'declined'; at: Date }[] = [
        { account: 0, question: Q.brew, outcome: 'shown', at: day(10) }, { account: 0, question: Q.brew, outcome: 'answered', at: day(10) },
        { account: 1, question: Q.brew, outcome: 'shown', at: day(10, 23) }, { account: 1, question: Q.brew, outcome: 'skipped', at: day(10, 23) },
        { account: 2, question: Q.brew, outcome: 'shown', at: day(11, 0) }, { account: 2, question: Q.brew, outcome: 'declined', at: day(11, 0) },
        { account: 3, question: Q.brew, outcome: 'shown', at: day(12) }, { account: 3, question: Q.brew, outcome: 'answered', at: day(12) },
        { account: 4, question: Q.birthday, outcome: 'shown', at: day(12) },
        // Outside the range: not counted.
        { account: 5, question: Q.brew, outcome: 'shown', at: day(9, 23) }, { account: 5, question: Q.brew, outcome: 'shown', at: day(13, 0) },
      ];
      await db.insertInto('prompt_log').values(rows.map((r, i) => ({
        account_id: someone[r.account]!.id, session_key: `s${i}`, client_id: 'web-app', set_id: setId, set_version: 1,
        question_id: r.question, outcome: r.outcome, at: r.at,
      }))).execute();
      const statsSet = { ...screenSet, id: setId };
      const stats = createStats({ db, config, screenSets: () => [statsSet], clock: () => NOW });

      const report = await stats.screenSets({ from: '2026-05-10', to: '2026-05-12', purposes: PERSONALIZATION });
      const set = report.screensets.find((s) => s.set_id === setId)!;
      const brew = set.questions.find((q) => q.question_id === Q.brew)!;
      expect(brew.days).toEqual([
        { date: '2026-05-10', shown: 2, answered: 1, skipped: 1, declined: 0, answer_rate: 0.5 },
        { date: '2026-05-11', shown: 1, answered: 0, skipped: 0, declined: 1, answer_rate: 0 },
        { date: '2026-05-12', shown: 1, answered: 1, skipped: 0, declined: 0, answer_rate: 1 },
      ]);
      expect(brew.totals).toEqual({ shown: 4, answered: 2, skipped: 1, declined: 1, answer_rate: 0.5 });

      // Distributions: answers under the reader's purposes with current consent, every option of a multiple choice.
      const expectedBrew: Record<string, number> = {};
      const expectedFlavours: Record<string, number> = {};
      for (const account of accounts) {
        const b = released(account, Q.brew, PERSONALIZATION);
        if (b) expectedBrew[String(b.value)] = (expectedBrew[String(b.value)] ?? 0) + 1;
        const f = released(account, Q.flavours, PERSONALIZATION);
        for (const v of (f?.value as string[] | undefined) ?? []) expectedFlavours[v] = (expectedFlavours[v] ?? 0) + 1;
      }
      expect(brew.distribution).toEqual(expectedBrew);
      expect(set.questions.find((q) => q.question_id === Q.flavours)!.distribution).toEqual(expectedFlavours);
      // Another purpose's question, free text: not aggregated.
      expect(set.questions.find((q) => q.question_id === Q.birthday)).toMatchObject({ totals: { shown: 1, answer_rate: 0 }, distribution: null });
      expect(set.questions.find((q) => q.question_id === Q.city)!.distribution).toBeNull();
      // An operator sees every purpose.
      const all = await stats.screenSets({ from: '2026-05-10', to: '2026-05-12', purposes: 'all' });
      const events = all.screensets.find((s) => s.set_id === setId)!.questions.find((q) => q.question_id === Q.events)!;
      const trueCount = accounts.filter((a) => released(a, Q.events, ALL)?.value === true).length;
      expect(events.distribution?.true ?? 0).toBe(trueCount);

      await expect(stats.screenSets({ from: '2026-05-12', to: '2026-05-10', purposes: 'all' })).rejects.toThrow(/after/);
      await expect(stats.screenSets({ from: '2024-01-01', to: '2026-05-10', purposes: 'all' })).rejects.toThrow(/366/);
      await expect(stats.screenSets({ from: '2026-02-30', purposes: 'all' })).rejects.toThrow(/date/);
    });
  });
});
