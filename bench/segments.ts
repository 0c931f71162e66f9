// npm run bench:segments — segment counts over 1,000,000 accounts and 5,000,000 answers on
// PostgreSQL (goals, issue 12: p50 under 150 ms for the representative count, under 300 ms for
// the broad ones, which match about 200,000 accounts).
//
// Needs DATABASE_URL (PostgreSQL; the embedded database is not what a million accounts run on).
// The data goes into a database of its own, BENCH_DATABASE (parley_bench_segments), next to the
// one DATABASE_URL names, created afresh each run (BENCH_REUSE=1 keeps one already generated).
// Generation is set-based SQL (generate_series, one INSERT … SELECT per table), loaded with the
// migrations before the segments migration applied, which then builds its indexes on the full
// tables as an upgrade would. Then VACUUM ANALYZE, and the count of
//
//   brew_method in [espresso] AND consent personalization granted AND answered within 180 days
//
// and of two broad segments (below), through the real code path (compile, Kysely, pg) BENCH_RUNS
// times (50; 10 for the broad ones) after a warm-up: p50/p99 of each, and the plan (EXPLAIN
// ANALYZE) of one run of each. The exit status is 0 when every p50 meets its goal.
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CompiledQuery } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../src/config/load.ts';
import type { Condition } from '../src/segments/conditions.ts';
import { createSegments } from '../src/segments/service.ts';
import { screenSetSchema, type Question } from '../src/screensets/format.ts';
import { migrateToLatest, openStorage } from '../src/storage/database.ts';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const DATABASE = process.env.BENCH_DATABASE ?? 'parley_bench_segments';
const REUSE = process.env.BENCH_REUSE === '1';
const SEGMENTS_MIGRATION = '2026-11-23T0400-segments';

const base = process.env.DATABASE_URL;
if (!base || !/^postgres(ql)?:\/\//.test(base)) {
  console.error('bench:segments measures PostgreSQL: set DATABASE_URL=postgres://user@host:5432/db (a database on the server to\n'
    + `create the benchmark database "${DATABASE}" from; the user needs CREATEDB). The embedded database is not benchmarked.`);
  process.exit(2);
}
const benchUrl = new URL(base);
benchUrl.pathname = `/${DATABASE}`;

const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

// ---- The questions: ten, about half answered by each account -----------------------------------
const screenSet = screenSetSchema.parse({
  id: 'bench', title: 'Benchmark', trigger: ['after_login'],
  questions: [
    { id: 'brew_method', type: 'single_choice', purpose: 'personalization', label: 'Brew', options: ['espresso', 'filter', 'french_press', 'moka', 'cold_brew'].map((value) => ({ value, label: value })) },
    { id: 'roast', type: 'single_choice', purpose: 'personalization', label: 'Roast', options: ['light', 'medium', 'dark'].map((value) => ({ value, label: value })) },
    { id: 'milk', type: 'single_choice', purpose: 'personalization', label: 'Milk', options: ['none', 'dairy', 'oat', 'soy'].map((value) => ({ value, label: value })) },
    { id: 'flavours', type: 'multi_choice', purpose: 'personalization', label: 'Flavours', options: ['nutty', 'fruity', 'chocolate', 'floral', 'spicy'].map((value) => ({ value, label: value })) },
    { id: 'cups_per_day', type: 'number', purpose: 'personalization', label: 'Cups', min: 0, max: 20 },
    { id: 'recommend', type: 'scale', purpose: 'personalization', label: 'Recommend', min: 0, max: 10, min_label: 'Never', max_label: 'Surely' },
    { id: 'home_city', type: 'text', purpose: 'personalization', label: 'City' },
    { id: 'likes_events', type: 'boolean', purpose: 'offers', label: 'Events' },
    { id: 'birthday', type: 'date', purpose: 'offers', label: 'Birthday' },
    { id: 'gift_ideas', type: 'multi_choice', purpose: 'offers', label: 'Gifts', options: ['mugs', 'beans', 'grinders', 'classes'].map((value) => ({ value, label: value })) },
  ],
});
const questions = new Map<string, Question>(screenSet.questions.map((q) => [q.id, q]));

// Per question: the share of accounts that answered it, and its value as SQL over random().
// brew_method: 60 % answered, espresso about a quarter of those. Ten questions × ~50 % ≈ 5 answers an account.
const VALUES: Record<string, { share: number; value: string }> = {
  brew_method: { share: 0.6, value: `to_jsonb((array['espresso','espresso','filter','french_press','moka','cold_brew'])[1 + floor(random() * 6)::int])` },
  roast: { share: 0.55, value: `to_jsonb((array['light','medium','dark'])[1 + floor(random() * 3)::int])` },
  milk: { share: 0.5, value: `to_jsonb((array['none','dairy','oat','soy'])[1 + floor(random() * 4)::int])` },
  // Correlated on a.id, so that each row draws its own selection.
  flavours: { share: 0.5, value: `(select coalesce(jsonb_agg(f), '["nutty"]') from unnest(array['nutty','fruity','chocolate','floral','spicy']) f where random() < 0.35 and a.id is not null)` },
  cups_per_day: { share: 0.5, value: 'to_jsonb(floor(random() * 7)::int)' },
  recommend: { share: 0.45, value: 'to_jsonb(floor(random() * 11)::int)' },
  home_city: { share: 0.5, value: `to_jsonb((array['Kyoto','Cairo','Lyon','Lagos','Lima'])[1 + floor(random() * 5)::int])` },
  likes_events: { share: 0.5, value: 'to_jsonb(random() < 0.5)' },
  birthday: { share: 0.45, value: `to_jsonb(to_char(date '1950-01-01' + floor(random() * 20000)::int, 'YYYY-MM-DD'))` },
  gift_ideas: { share: 0.45, value: `(select coalesce(jsonb_agg(g), '["beans"]') from unnest(array['mugs','beans','grinders','classes']) g where random() < 0.4 and a.id is not null)` },
};

async function createDatabase(): Promise<boolean> {
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    const exists = (await admin.query('select 1 from pg_database where datname = $1', [DATABASE])).rowCount === 1;
    if (exists && REUSE) return false;
    if (exists) await admin.query(`drop database ${pg.escapeIdentifier(DATABASE)} with (force)`);
    await admin.query(`create database ${pg.escapeIdentifier(DATABASE)}`);
    return true;
  } finally {
    await admin.end();
  }
}

async function generate(): Promise<void> {
  const silent = pino({ level: 'silent' });
  const storage = await openStorage({ url: benchUrl.href, data_dir: 'unused', migrate_on_start: false, pool_max: 2, connection_timeout: 5, statement_timeout: 3600 }, silent);
  // Every migration before the segments one: the tables as they were, without its indexes.
  const names = readdirSync(path.resolve(import.meta.dirname, '../migrations')).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '')).sort();
  const before = names[names.indexOf(SEGMENTS_MIGRATION) - 1]!;
  const { DirectoryMigrationsForBench } = await migrationProvider();
  const migrator = new Migrator({ db: storage.db, provider: new DirectoryMigrationsForBench() });
  const { error } = await migrator.migrateTo(before);
  if (error) throw error;
  await storage.close();

  const client = new pg.Client({ connectionString: benchUrl.href });
  await client.connect();
  await client.query(`set synchronous_commit = off; set maintenance_work_mem = '512MB'; set work_mem = '256MB'`);
  const run = async (label: string, text: string) => {
    const started = performance.now();
    const result = await client.query(text);
    log(`${label}: ${result.rowCount ?? ''} rows in ${seconds(started)}`);
  };
  // Ids look like Parley's (random UUIDs) but are derived from the row number, so a rerun is the same data.
  await run('accounts', `
    insert into accounts (id, email, password_hash, email_verified_at, created_at, updated_at)
    select md5('account' || i)::uuid::text, 'user' || i || '@bench.example', 'unused',
           case when i % 3 = 0 then null else now() end, now() - (i % 900) * interval '1 day', now()
    from generate_series(1, ${ACCOUNTS}) i`);
  // One INSERT … SELECT per question, in account id order so the primary key grows at its end.
  // Random values are drawn in a subquery's select list: there PostgreSQL evaluates them once a
  // row (an uncorrelated LATERAL subquery would be evaluated once for the whole statement).
  const started = performance.now();
  for (const q of screenSet.questions) {
    const { share, value } = VALUES[q.id]!;
    await run(`answers ${q.id}`, `
      insert into answers (account_id, question_id, value, purpose, set_id, created_at, updated_at)
      select id, '${q.id}', value, '${q.purpose}', 'bench', t, t
      from (select a.id, ${value} as value, now() - random() * interval '730 days' as t
            from (select id from accounts order by id) a
            where random() < ${share}) x`);
  }
  log(`answers: ${seconds(started)} in all`);
  // Consent: personalization asked of 85 %: 75 % granted, 10 % granted then withdrawn; offers of
  // 60 %, a sixth of them to an earlier text (version 0: outdated). Rows in time order per account.
  await run('consent ledger', `
    insert into consent_ledger (subject, purpose, purpose_version, action, client_id, source, locale, text_hash, at)
    select a.id, c.purpose, c.version, c.action, 'demo-shop', 'screen', 'en', 'bench', now() - c.days_ago * interval '1 day'
    from (select id, random() as p, random() as o from accounts order by id) a,
    lateral (values
      ('personalization', 1, 'granted', 400, a.p < 0.85),
      ('personalization', 1, 'withdrawn', 100, a.p >= 0.75 and a.p < 0.85),
      ('offers', case when a.o < 0.1 then 0 else 1 end, 'granted', 300, a.o < 0.6)
    ) c(purpose, version, action, days_ago, present)
    where c.present
    order by a.id, c.days_ago desc`);
  await client.end();

  const migrated = await openStorage({ url: benchUrl.href, data_dir: 'unused', migrate_on_start: false, pool_max: 2, connection_timeout: 5, statement_timeout: 3600 }, silent);
  const indexStarted = performance.now();
  await migrateToLatest(migrated.db);
  log(`migrations from ${SEGMENTS_MIGRATION} (its indexes on the full tables): ${seconds(indexStarted)}`);
  await migrated.close();
}

/** The migrations directory, as the app reads it (kept here so the app's provider stays private). */
async function migrationProvider() {
  const { pathToFileURL } = await import('node:url');
  const dir = path.resolve(import.meta.dirname, '../migrations');
  class DirectoryMigrationsForBench {
    async getMigrations() {
      const migrations: Record<string, { up: (db: never) => Promise<void> }> = {};
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
        migrations[file.replace(/\.ts$/, '')] = await import(pathToFileURL(path.join(dir, file)).href);
      }
      return migrations;
    }
  }
  return { DirectoryMigrationsForBench };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const total = performance.now();
if (await createDatabase()) {
  log(`generating ${ACCOUNTS.toLocaleString('en')} accounts in ${DATABASE}`);
  await generate();
  const client = new pg.Client({ connectionString: benchUrl.href });
  await client.connect();
  const started = performance.now();
  await client.query('vacuum analyze');
  log(`vacuum analyze: ${seconds(started)}`);
  await client.end();
  log(`generation: ${seconds(total)} in all`);
} else {
  log(`reusing ${DATABASE} (BENCH_REUSE=1)`);
}

const config = loadConfig({ env: {}, overrides: { env: 'test', database: { url: benchUrl.href } } });
const storage = await openStorage(config.database, pino({ level: 'silent' }));
const { db } = storage;
const sizes = await db.executeQuery<{ accounts: number; answers: number; consents: number }>(CompiledQuery.raw(
  'select (select count(*) from accounts)::int as accounts, (select count(*) from answers)::int as answers, (select count(*) from consent_ledger)::int as consents'));
const segments = createSegments({ db, config, question: (id) => questions.get(id), clock: () => new Date() });
const caller = { purposes: ['personalization', 'offers'] };

/** p50 goals in ms (issue 12, "A leaner sign-in"). */
const GOALS: Record<string, number> = { representative: 150, multiple_choice: 300, any_of_two: 300 };

const QUERIES: Record<string, Condition> = {
  // The segment the goal is set for (espresso drinkers who consented, answered within 180 days),
  // as a client would most likely write it.
  representative: { all: [
    { answer: 'brew_method', in: ['espresso'] },
    { consent: 'personalization', state: 'granted' },
    { answered_within: '180d', answer: 'brew_method' },
  ] },
  // The broad counts (about 200,000 accounts each): a multiple-choice match, and an `any` of two
  // answers under two purposes.
  multiple_choice: { all: [{ answer: 'flavours', in: ['floral', 'spicy'] }, { consent: 'personalization', state: 'granted' }] },
  any_of_two: { any: [{ answer: 'milk', in: ['oat'] }, { answer: 'gift_ideas', in: ['classes'] }] },
};

async function time(condition: Condition, runs: number) {
  for (let i = 0; i < 3; i++) await segments.count(condition, caller);
  const latencies: number[] = [];
  let count = 0;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    count = await segments.count(condition, caller);
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  return { count, p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)), max: Number(latencies.at(-1)!.toFixed(1)) };
}

const results: Record<string, unknown> = {};
for (const [name, condition] of Object.entries(QUERIES)) {
  results[name] = await time(condition, name === 'representative' ? RUNS : Math.min(RUNS, 10));
}
const plans: Record<string, string> = {};
for (const [name, condition] of Object.entries(QUERIES)) {
  const compiled = segments.countQuery(condition, caller).compile();
  const plan = await db.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain (analyze, buffers) ${compiled.sql}`, [...compiled.parameters]));
  plans[name] = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
}
await storage.close();

// Other work on the machine moves these figures a lot: say how busy it was.
const load = os.loadavg().map((n) => Number(n.toFixed(2)));
console.log(JSON.stringify({ database: DATABASE, data: sizes.rows[0], runs: RUNS, latency_ms: results, cpus: os.cpus().length, load_average: load }, null, 2));
for (const [name, plan] of Object.entries(plans)) console.log(`\nEXPLAIN (ANALYZE, BUFFERS) of the ${name} count:\n\n${plan}`);
console.log(`\nover ${(sizes.rows[0]!.accounts).toLocaleString('en')} accounts, ${(sizes.rows[0]!.answers).toLocaleString('en')} answers:`);
let met = true;
for (const [name, goal] of Object.entries(GOALS)) {
  const { p50 } = results[name] as { p50: number };
  met &&= p50 < goal;
  console.log(`  ${name} segment count: p50 ${p50} ms (goal < ${goal} ms)${p50 < goal ? '' : ': NOT MET'}`);
}
process.exit(met ? 0 : 1);
