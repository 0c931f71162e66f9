// npm run bench:engine — what progressive profiling costs a sign-in, in two parts.
//
// Issue 3 ("Measure"): 50 screen-sets / 500 questions, a user with 200 answers and 1,000
// prompt-log rows. The data is generated with a fixed seed, so runs compare.
//
// Part 1: the selection engine's decision for one user, on its own; goal p99 under 0.2 ms per
// decision. Three users are timed, from the costliest decision to the cheapest:
//   - nothing due:   every screen-set has to be looked through, and none has a question left;
//   - question due:  the first due question is behind 200 answered ones, as for a regular user;
//   - recent screen: a screen was shown within min_interval, so the decision is "nothing".
// The engine orders the screen-sets and numbers their questions once per loaded list; "new list"
// times the "nothing due" decision on a fresh copy of the list each time, which includes that.
//
// Part 2: the extra server time a sign-in with no question pending spends on profiling, database
// read included; goal p50 under 1 ms. That is `profiling.pendingScreen` (src/screensets/profiling.ts),
// which the 'profile' prompt check awaits: one SQL read of what the engine needs about the account
// (its answers, the prompt-log rows that can still matter), then the engine. The users "nothing
// due" (the costliest: every set is looked through) and "recent screen" (the engine stops at
// min_interval) of part 1 are stored as accounts with their 200 answers and 1,000 prompt-log rows,
// among BENCH_OTHER_ACCOUNTS (5,000) other accounts with 20 answers and 50 prompt-log rows each,
// so that the read goes through indexes of tables of some size. BENCH_DB_ITERATIONS (2,000) calls
// are timed one after another per user and backend, after BENCH_DB_WARMUP (300). A second run of
// as many calls, through a Kysely plugin that notes when the query is issued and when its rows
// are back, splits the time: "db read" includes taking a connection, the round trip and the
// driver's parsing; "after" is building the engine's input from the rows, and the decision.
// Backends: embedded PGlite in memory always; PostgreSQL too when DATABASE_URL is set, e.g.
//   createdb -h 127.0.0.1 -U postgres parley_bench_engine
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_bench_engine npm run bench:engine
// That database is migrated and vacuumed; the bench's rows (account ids "bench-...") are deleted
// before and after, nothing else is touched (BENCH_KEEP=1 leaves them, to look at the plan by
// hand). BENCH_EXPLAIN=1 also prints EXPLAIN ANALYZE of the read for each user and backend.
import { availableParallelism } from 'node:os';
import { CompiledQuery, sql, type KyselyPlugin, type QueryId, type RootOperationNode } from 'kysely';
import pino from 'pino';
import { loadConfig } from '../src/config/load.ts';
import { selectQuestions, type EngineInput, type PromptLogEntry, type StoredAnswer } from '../src/screensets/engine.ts';
import type { Question, ScreenSet } from '../src/screensets/format.ts';
import { createProfiling, type SignInContext } from '../src/screensets/profiling.ts';
import { migrateToLatest, openStorage, type DB } from '../src/storage/database.ts';

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
const engineP50 = new Map<string, number>();
for (const { name, input } of scenarios) {
  if (input.history.length !== HISTORY_ROWS) throw new Error(`${name}: ${input.history.length} prompt-log rows`);
  const selection = selectQuestions(input);
  const decision = selection ? `${selection.set.id}: ${selection.questions.map((q) => q.question.id).join(', ')}` : 'nothing';
  const times = time(() => selectQuestions(input), ITERATIONS);
  engineP50.set(name, percentile(times, 0.5));
  console.log(row(name, decision, times));
}
console.log(row('new list', 'nothing', time(() => selectQuestions({ ...nothingDue, sets: [...sets] }), ITERATIONS / 10)));

// ---------------------------------------------------------------------------------------------
// Part 2: profiling.pendingScreen on a real database.

const DB_WARMUP = Number(process.env.BENCH_DB_WARMUP ?? 300);
const DB_ITERATIONS = Number(process.env.BENCH_DB_ITERATIONS ?? 2000);
const OTHER_ACCOUNTS = Number(process.env.BENCH_OTHER_ACCOUNTS ?? 5000);
const OTHER_ANSWERS = 20;
const OTHER_LOG_ROWS = 50;
const GOAL_P50_MS = 1;
const CLIENT_ID = 'demo-shop';

// The users of part 1 without a question pending, as they are stored.
const dbUsers = [
  { name: 'nothing due', accountId: 'bench-nothing-due', history: nothingDue.history },
  { name: 'recent screen', accountId: 'bench-recent-screen', history: scenarios[2]!.input.history },
];
const setOfQuestion = new Map(allQuestions.map(({ set, question }) => [question.id, set]));

async function removeBenchRows(db: DB): Promise<void> {
  for (const table of ['answers', 'prompt_log'] as const) await db.deleteFrom(table).where('account_id', 'like', 'bench-%').execute();
  await db.deleteFrom('accounts').where('id', 'like', 'bench-%').execute();
}

async function seed(db: DB): Promise<void> {
  await removeBenchRows(db);
  // Other accounts first, in bulk: each a different slice of the questions, its log over the past 400 days.
  await sql`insert into accounts (id, email, password_hash, created_at, updated_at)
    select 'bench-other-' || a, 'bench-other-' || a || '@bench.invalid', 'x', ${daysAgo(400)}, ${daysAgo(400)}
    from generate_series(1, ${OTHER_ACCOUNTS}::int) a`.execute(db);
  await sql`insert into answers (account_id, question_id, value, purpose, set_id, created_at, updated_at)
    select 'bench-other-' || a, 'set_' || lpad((q / 10)::text, 2, '0') || '_q' || (q % 10), '"a"'::jsonb, 'personalization',
      'set-' || lpad((q / 10)::text, 2, '0'), ${now}::timestamptz - (a % 300) * interval '1 day', ${now}::timestamptz - (a % 300) * interval '1 day'
    from generate_series(1, ${OTHER_ACCOUNTS}::int) a, generate_series(0, ${OTHER_ANSWERS - 1}::int) k,
      lateral (select (a * 7 + k * 13) % 500 as q) question`.execute(db);
  await sql`insert into prompt_log (account_id, session_key, client_id, set_id, set_version, question_id, outcome, at)
    select 'bench-other-' || a, 'bench-other-' || a || '-' || k, ${CLIENT_ID}, 'set-' || lpad((q / 10)::text, 2, '0'), 1 + (q / 10) % 3,
      'set_' || lpad((q / 10)::text, 2, '0') || '_q' || (q % 10),
      (array['shown', 'shown', 'answered', 'skipped', 'declined'])[1 + (a + k * 3) % 5],
      ${now}::timestamptz - ((a * 37 + k * 101) % 576000) * interval '1 minute'
    from generate_series(1, ${OTHER_ACCOUNTS}::int) a, generate_series(0, ${OTHER_LOG_ROWS - 1}::int) k,
      lateral (select (a * 11 + k * 7) % 500 as q) question`.execute(db);
  // The timed accounts: exactly the data of part 1, one session key per prompt-log row.
  for (const { accountId, history } of dbUsers) {
    await db.insertInto('accounts').values({ id: accountId, email: `${accountId}@bench.invalid`, password_hash: 'x', created_at: daysAgo(400), updated_at: daysAgo(400) }).execute();
    await db.insertInto('answers').values([...answers].map(([questionId, answer]) => ({
      account_id: accountId, question_id: questionId, value: JSON.stringify(answer.value), purpose: 'personalization',
      set_id: setOfQuestion.get(questionId)!.id, created_at: answer.updatedAt, updated_at: answer.updatedAt,
    }))).execute();
    await db.insertInto('prompt_log').values(history.map((entry, i) => ({
      account_id: accountId, session_key: `${accountId}-${i}`, client_id: CLIENT_ID, set_id: entry.setId, set_version: entry.setVersion,
      question_id: entry.questionId, outcome: entry.outcome, at: entry.at,
    }))).execute();
  }
  await sql`vacuum analyze`.execute(db);
}

/** Notes when the query is issued and when its rows are back, and keeps the last query for EXPLAIN. */
function readProbe() {
  const probe = {
    issuedAt: 0, rowsAt: 0,
    last: undefined as { node: RootOperationNode; queryId: QueryId } | undefined,
    lastRows: [] as unknown[],
    plugin: {
      transformQuery(args) { probe.issuedAt = performance.now(); probe.last = args; return args.node; },
      async transformResult(args) { probe.rowsAt = performance.now(); probe.lastRows = args.result.rows; return args.result; },
    } satisfies KyselyPlugin,
  };
  return probe;
}

const sortedMs = (values: number[]) => Float64Array.from(values).sort();
const mean = (values: Float64Array) => values.reduce((sum, v) => sum + v, 0) / values.length;
// A blocked read (a screen within min_interval) builds no aggregates: 0 rows.
const jsonLength = (value: unknown): number => {
  if (value === null) return 0;
  if (typeof value !== 'string') return (value as unknown[]).length;
  // The prompt log comes as lines of text, the answers as JSON.
  return value.startsWith('[') ? (JSON.parse(value) as unknown[]).length : value.split('\n').filter(Boolean).length;
};

interface DbRow { backend: string; user: string; rowsRead: string; total: Float64Array; read: Float64Array; after: Float64Array }

async function measureBackend(backend: string, url: string): Promise<DbRow[]> {
  const config = loadConfig({
    env: {},
    overrides: {
      database: { url, data_dir: 'memory://' },
      demo: { enabled: false },
      clients: [{ client_id: CLIENT_ID, redirect_uris: ['http://127.0.0.1/callback'], purposes: ['personalization'] }],
      profiling: { max_questions_per_session: 2, min_interval: '20h', skip_cooldown: '7d' },
    },
  });
  if (JSON.stringify(config.profiling) !== JSON.stringify(settings)) throw new Error(`profiling settings differ from part 1: ${JSON.stringify(config.profiling)}`);
  const storage = await openStorage(config.database, pino({ level: 'silent' }));
  try {
    await migrateToLatest(storage.db);
    const seeding = performance.now();
    await seed(storage.db);
    console.log(`${backend}: ${OTHER_ACCOUNTS + dbUsers.length} accounts stored in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);

    const probe = readProbe();
    const deps = { config, clock: () => now, screenSets: () => sets };
    const plain = createProfiling({ ...deps, db: storage.db });
    const probed = createProfiling({ ...deps, db: storage.db.withPlugin(probe.plugin) });
    const results: DbRow[] = [];
    for (const { name, accountId } of dbUsers) {
      let session = 0;
      // A new sign-in session each time, as in the server; no question was shown in it yet.
      const signIn = (): SignInContext => ({ accountId, clientId: CLIENT_ID, sessionKey: `bench-session-${session++}`, trigger: 'after_login', promptNone: false, locale: 'en' });
      const pending = await probed.pendingScreen(signIn());
      if (pending !== null) throw new Error(`${backend} ${name}: a question is pending: ${JSON.stringify(pending)}`);
      const row = probe.lastRows[0] as { answers: unknown; log: unknown } | undefined;
      if (!row) throw new Error(`${backend} ${name}: the account was not read`);
      const rowsRead = `${jsonLength(row.answers)} + ${jsonLength(row.log)}`;
      if (process.env.BENCH_EXPLAIN && probe.last) {
        const query = storage.db.getExecutor().compileQuery(probe.last.node, probe.last.queryId);
        const plan = await storage.db.executeQuery<Record<string, string>>(CompiledQuery.raw(`explain (analyze, buffers) ${query.sql}`, [...query.parameters]));
        console.log(`\nEXPLAIN ANALYZE, ${backend}, ${name}:\n${plan.rows.map((r) => Object.values(r)[0]).join('\n')}\n`);
      }

      const total: number[] = [];
      for (let i = 0; i < DB_WARMUP; i++) await plain.pendingScreen(signIn());
      for (let i = 0; i < DB_ITERATIONS; i++) {
        const input = signIn();
        const start = performance.now();
        await plain.pendingScreen(input);
        total.push(performance.now() - start);
      }
      const read: number[] = [];
      const after: number[] = [];
      for (let i = 0; i < DB_WARMUP; i++) await probed.pendingScreen(signIn());
      for (let i = 0; i < DB_ITERATIONS; i++) {
        await probed.pendingScreen(signIn());
        const end = performance.now();
        read.push(probe.rowsAt - probe.issuedAt);
        after.push(end - probe.rowsAt);
      }
      results.push({ backend, user: name, rowsRead, total: sortedMs(total), read: sortedMs(read), after: sortedMs(after) });
    }
    if (url && !process.env.BENCH_KEEP) await removeBenchRows(storage.db);
    return results;
  } finally {
    await storage.close();
  }
}

console.log(`\npendingScreen: the same screen-sets and users, stored among ${OTHER_ACCOUNTS} other accounts `
  + `(${OTHER_ACCOUNTS * OTHER_ANSWERS} answers, ${OTHER_ACCOUNTS * OTHER_LOG_ROWS} prompt-log rows); `
  + `${DB_WARMUP} warm-up and ${DB_ITERATIONS} timed calls per user, one at a time`);
const backends = [{ name: 'pglite', url: '' }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', url: process.env.DATABASE_URL }] : [])];
const dbRows: DbRow[] = [];
for (const { name, url } of backends) dbRows.push(...await measureBackend(name, url));

const f = (value: number) => value.toFixed(3).padStart(7);
console.log(`\n${'backend'.padEnd(9)}${'user'.padEnd(15)}${'rows read'.padStart(10)}  ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'mean ms'.padStart(7)}`
  + ` | ${'db read'.padStart(7)} ${'after'.padStart(7)} ${'db/after'.padStart(8)} | ${'engine'.padStart(7)}`);
for (const r of dbRows) {
  const read = percentile(r.read, 0.5);
  const after = percentile(r.after, 0.5);
  console.log(`${r.backend.padEnd(9)}${r.user.padEnd(15)}${r.rowsRead.padStart(10)}  ${f(percentile(r.total, 0.5))} ${f(percentile(r.total, 0.99))} ${f(mean(r.total))}`
    + ` | ${f(read)} ${f(after)} ${`${(read / after).toFixed(1)}x`.padStart(8)} | ${f(engineP50.get(r.user)!)}`);
}
console.log(`\nrows read: answers + prompt-log rows the query returns (declines, and the rest within max(min_interval, skip_cooldown)).`);
console.log('db read / after / engine: p50 of the query (connection, round trip, driver) / of building the engine\'s input from the rows');
console.log('and deciding / of the engine alone on part 1\'s in-memory input with all 1,000 prompt-log rows.');
const missed = dbRows.filter((r) => percentile(r.total, 0.5) >= GOAL_P50_MS);
console.log(`\ngoal p50 < ${GOAL_P50_MS} ms per sign-in with no question pending: ${missed.length === 0 ? 'met' : 'NOT met'}`
  + (missed.length === 0 ? ` by every user on ${backends.map((b) => b.name).join(' and ')}` : `; missed by ${missed.map((r) => `${r.backend} ${r.user} (${percentile(r.total, 0.5).toFixed(3)} ms)`).join(', ')}`)
  + `. Node ${process.version}, ${availableParallelism()} CPUs.`);
