// npm run bench:engine — part 1: the selection engine's decision for one user, on its own.
//
// Issue 3 ("Measure"): 50 screen-sets / 500 questions, a user with 200 answers and 1,000
// prompt-log rows; goal p99 under 0.2 ms per decision. The data is generated with a fixed seed,
// so runs compare. Three users are timed, from the costliest decision to the cheapest:
//   - nothing due:   every screen-set has to be looked through, and none has a question left;
//   - question due:  the first due question is behind 200 answered ones, as for a regular user;
//   - recent screen: a screen was shown within min_interval, so the decision is "nothing".
// The engine orders the screen-sets and numbers their questions once per loaded list; "new list"
// times the "nothing due" decision on a fresh copy of the list each time, which includes that.
import { selectQuestions, type EngineInput, type PromptLogEntry, type StoredAnswer } from '../src/screensets/engine.ts';
import type { Question, ScreenSet } from '../src/screensets/format.ts';

const SETS = 50;
const QUESTIONS_PER_SET = 10;
const ANSWERS = 200;
const HISTORY_ROWS = 1000;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20_000);
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 100_000);

const DAY_MS = 86_400_000;
const now = new Date('2026-03-10T12:00:00Z');
const settings = { max_questions_per_session: 2, min_interval: 20 * 3600, skip_cooldown: 7 * 86400 };

/** mulberry32: a small seeded generator, so that every run times the same data. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6D2B79F5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const next = random(20260310);
const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
const daysAgo = (days: number) => new Date(now.getTime() - days * DAY_MS);

const sets: ScreenSet[] = Array.from({ length: SETS }, (_, s): ScreenSet => {
  const id = `set-${String(s).padStart(2, '0')}`;
  const questions = Array.from({ length: QUESTIONS_PER_SET }, (__, q): Question => ({
    id: `${id.replace('-', '_')}_q${q}`,
    type: 'single_choice',
    label: { en: `Question ${q}`, ar: `سؤال ${q}`, ja: `質問 ${q}` },
    purpose: 'personalization',
    required: false,
    options: [{ value: 'a', label: 'A' }, { value: 'b', label: 'B' }, { value: 'c', label: 'C' }],
    ...(q % 3 === 0 ? { reask_after: 180 * 86400 } : {}),
  }));
  // A realistic mix: most sets for every sign-in, some with an audience that this user fails.
  const audience = s % 10 === 3 ? { clients: ['mobile-app'] }
    : s % 10 === 5 ? { locales: ['ja'] }
    : s % 10 === 7 ? { min_account_age: 30 * 86400, when: { op: 'answered' as const, questionId: 'set_00_q1' } }
    : undefined;
  return {
    id,
    title: { en: `Set ${s}` },
    version: 1 + (s % 3),
    trigger: s % 10 === 9 ? ['after_registration'] : ['after_login'],
    priority: 100 - s,
    ...(audience ? { audience } : {}),
    questions,
  };
});

const allQuestions = sets.flatMap((set) => set.questions.map((question) => ({ set, question })));

// The user answered the 200 questions the engine reaches first, some long enough ago to be re-asked
// later, and the prompt log holds the screens that led there plus skips and declines elsewhere.
const answers = new Map<string, StoredAnswer>();
for (const { question } of allQuestions.slice(0, ANSWERS)) {
  answers.set(question.id, { value: pick(['a', 'b', 'c']), updatedAt: daysAgo(1 + next() * 170) });
}

function promptLog(rows: number, declineAllUnanswered: boolean): PromptLogEntry[] {
  const log: PromptLogEntry[] = [];
  const unanswered = allQuestions.slice(ANSWERS);
  if (declineAllUnanswered) {
    for (const { set, question } of unanswered) {
      log.push({ questionId: question.id, setId: set.id, setVersion: set.version, outcome: 'declined', at: daysAgo(2 + next() * 300) });
    }
  }
  while (log.length < rows) {
    const { set, question } = pick(allQuestions.slice(0, ANSWERS + 50));
    const outcome = pick(['shown', 'shown', 'answered', 'skipped'] as const);
    log.push({ questionId: question.id, setId: set.id, setVersion: set.version, outcome, at: daysAgo(2 + next() * 400) });
  }
  return log;
}

function user(history: PromptLogEntry[]): EngineInput {
  return {
    sets,
    settings,
    client: { id: 'demo-shop', profiling: true },
    session: { trigger: 'after_login', promptNone: false, locale: 'en', questionsShownThisSession: 0 },
    account: { createdAt: daysAgo(400) },
    answers,
    history,
    now,
  };
}

const recentScreen = promptLog(HISTORY_ROWS, false);
recentScreen[HISTORY_ROWS - 1] = { ...recentScreen[HISTORY_ROWS - 1]!, outcome: 'shown', at: new Date(now.getTime() - 3600_000) };

const scenarios = [
  { name: 'nothing due', input: user(promptLog(HISTORY_ROWS, true)) },
  { name: 'question due', input: user(promptLog(HISTORY_ROWS, false)) },
  { name: 'recent screen', input: user(recentScreen) },
];
const nothingDue = scenarios[0]!.input;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Milliseconds per call of `decide`, sorted, after a warm-up. */
function time(decide: () => void, iterations: number): Float64Array {
  for (let i = 0; i < WARMUP; i++) decide();
  const times = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    decide();
    times[i] = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return times.sort();
}

function row(name: string, decision: string, times: Float64Array): string {
  const ms = (value: number) => value.toFixed(4).padStart(6);
  return `${name.padEnd(15)} ${decision.padEnd(33)} ${ms(percentile(times, 0.5))}    ${ms(percentile(times, 0.99))}    ${ms(times[times.length - 1]!)}`;
}

console.log(`selectQuestions: ${SETS} screen-sets, ${allQuestions.length} questions, ${answers.size} answers, ${HISTORY_ROWS} prompt-log rows`);
console.log(`${WARMUP} warm-up and ${ITERATIONS} timed decisions per user, Node ${process.version}\n`);
console.log(`${'user'.padEnd(15)} ${'decision'.padEnd(33)} ${'p50 ms'.padStart(6)}    ${'p99 ms'.padStart(6)}    ${'max ms'.padStart(6)}`);
for (const { name, input } of scenarios) {
  if (input.history.length !== HISTORY_ROWS) throw new Error(`${name}: ${input.history.length} prompt-log rows`);
  const selection = selectQuestions(input);
  const decision = selection ? `${selection.set.id}: ${selection.questions.map((q) => q.question.id).join(', ')}` : 'nothing';
  console.log(row(name, decision, time(() => selectQuestions(input), ITERATIONS)));
}
console.log(row('new list', 'nothing', time(() => selectQuestions({ ...nothingDue, sets: [...sets] }), ITERATIONS / 10)));
