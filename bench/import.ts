// npm run bench:import — `parley import users` on a file of 1,000,000 accounts, each with a
// bcrypt hash, 5 answers and 2 consents (goals on PostgreSQL: at least 20,000 accounts/s and a
// peak RSS of the import process under 300 MB), then the same on the embedded database.
//
//   BENCH_ACCOUNTS            accounts in the file (1,000,000)
//   BENCH_EMBEDDED_ACCOUNTS   accounts imported into the embedded database (default: the same;
//                             the first lines of the same file); 0 skips it
//   DATABASE_URL              PostgreSQL: the benchmark creates the database BENCH_DATABASE
//                             (parley_bench_import) next to it afresh each run; unset: skipped
//   BENCH_CEILING             1 (default): after the PostgreSQL import, the rows it wrote are
//                             copied into a fresh database with COPY, to show what PostgreSQL
//                             alone takes for them on this machine; 0 skips it
//
// The file is generated once into the temporary directory and reused while it has the same
// number of accounts. The import runs as operators run it, the real command in a process of its
// own; its peak RSS is the kernel's high-water mark of that process (VmHWM), read while it runs.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { createLogger } from '../src/logger.ts';
import { DEFAULT_BATCH_SIZE, IMPORTED_TABLES } from '../src/import/writer.ts';
import { migrateToLatest, openStorage } from '../src/storage/database.ts';
import { loadConfig, PROJECT_ROOT } from '../src/config/load.ts';
import { loadScreenSets, screenSetContext } from '../src/screensets/loader.ts';
import type { Question } from '../src/screensets/format.ts';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 1_000_000);
const EMBEDDED = Number(process.env.BENCH_EMBEDDED_ACCOUNTS ?? ACCOUNTS);
const DATABASE = process.env.BENCH_DATABASE ?? 'parley_bench_import';
const SCREENSETS = 'screensets';

const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
const number = new Intl.NumberFormat('en');

// ---- The file -----------------------------------------------------------------------------------
const config = loadConfig({ env: {}, overrides: { screensets: { dir: SCREENSETS } } });
const questions = loadScreenSets(SCREENSETS, screenSetContext(config)).sets.flatMap((s) => s.questions).slice(0, 5);
if (questions.length < 5) throw new Error(`bench:import needs 5 questions in ${SCREENSETS}/`);

function valueOf(question: Question, n: number): unknown {
  switch (question.type) {
    case 'single_choice': return question.options[n % question.options.length]!.value;
    case 'multi_choice': return [question.options[n % question.options.length]!.value];
    // Within the question's range: the import refuses a value its question could not have been given.
    case 'number': case 'scale': {
      const min = question.min ?? 0;
      return min + (n % ((question.max ?? min + 4) - min + 1));
    }
    case 'boolean': return n % 2 === 0;
    case 'date': return `19${50 + (n % 50)}-0${1 + (n % 9)}-1${n % 10}`;
    default: return `text ${n % 100}`;
  }
}

// One bcrypt hash for everyone: hashes are checked at the first sign-in, not at the import, so
// their cost does not matter here; their parsing does, and it is the same for each.
const HASH = '$2b$10$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui';

function line(n: number): string {
  const at = new Date(Date.UTC(2020, 0, 1) + (n % 1_000_000) * 60_000).toISOString();
  return JSON.stringify({
    external_id: `bench-${n}`, email: `bench-${n}@example.com`, email_verified: n % 3 !== 0, name: `Bench User ${n}`, locale: 'en',
    created_at: at, password: HASH,
    answers: questions.map((q, i) => ({ question_id: q.id, value: valueOf(q, n + i), answered_at: at, purpose: q.purpose })),
    consents: [
      { purpose: 'personalization', version: config.purposes.personalization!.version, action: 'granted', at },
      { purpose: 'offers', version: config.purposes.offers!.version, action: n % 4 === 0 ? 'withdrawn' : 'granted', at },
    ],
  });
}

async function generate(count: number): Promise<string> {
  const file = path.join(os.tmpdir(), `parley-bench-import-${count}.jsonl`);
  const marker = `${file}.done`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === String(count)) {
    log(`reusing ${file}`);
    return file;
  }
  log(`writing ${number.format(count)} accounts to ${file}`);
  const out = createWriteStream(file);
  const CHUNK = 1000;
  for (let start = 0; start < count; start += CHUNK) {
    const lines: string[] = [];
    for (let n = start; n < Math.min(count, start + CHUNK); n += 1) lines.push(line(n));
    if (!out.write(`${lines.join('\n')}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  writeFileSync(marker, String(count));
  return file;
}

// ---- One run of the real command ---------------------------------------------------------------
interface Measured { seconds: number; peakRssMb: number; code: number | null; summary: string; progress: string }

/**
 * The high-water mark of the process and its children, added up: bin/parley.js runs an import
 * in a child of its own (with a smaller young generation), and both count.
 */
function peakRssKb(pid: number): number {
  let total = 0;
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    total += match ? Number(match[1]) : 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += peakRssKb(Number(child));
    }
  } catch {
    // The process has ended.
  }
  return total;
}

async function importWith(database: Record<string, unknown>, file: string): Promise<Measured> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-import-'));
  const configFile = path.join(dir, 'parley.yaml');
  writeFileSync(configFile, JSON.stringify({ env: 'test', database, screensets: { dir: SCREENSETS, watch: false }, logging: { level: 'warn' } }));
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/parley.js'), 'import', 'users', file], {
    cwd: PROJECT_ROOT, env: { PATH: process.env.PATH, PARLEY_CONFIG: configFile }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let peak = 0;
  // Each process's own high-water mark, summed: an upper bound of what the two used at once.
  const poll = setInterval(() => { peak = Math.max(peak, peakRssKb(child.pid!)); }, 100);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    const last = chunk.trim().split('\n').at(-1);
    if (last?.startsWith('import:')) log(`  ${last}`);
  });
  const [code] = await once(child, 'exit') as [number | null];
  clearInterval(poll);
  rmSync(dir, { recursive: true, force: true });
  const progress = stderr.trim().split('\n').filter((l) => l.startsWith('import: done')).at(-1) ?? stderr.slice(-2000);
  return { seconds: (performance.now() - started) / 1000, peakRssMb: peak / 1024, code, summary: stdout.trim(), progress };
}

function report(where: string, count: number, measured: Measured) {
  const rate = count / measured.seconds;
  log(`${where}: ${measured.summary} (exit ${measured.code})`);
  log(`${where}: ${number.format(count)} accounts in ${measured.seconds.toFixed(1)} s (whole command, start to exit): `
    + `${number.format(Math.round(rate))} accounts/s; peak RSS ${measured.peakRssMb.toFixed(0)} MB`);
  log(`${where}: the command's own count: ${measured.progress}`);
  return rate;
}

// ---- What PostgreSQL alone takes for the same rows ---------------------------------------------
/** Rows per transaction: an import batch's, 500 accounts' (times the table's rows per account). */
const ACCOUNTS_PER_TRANSACTION = DEFAULT_BATCH_SIZE;

/**
 * The import's ceiling on this machine with this schema: the rows it wrote, copied out, and
 * copied into a fresh database (same migrations: the same indexes, foreign keys and triggers)
 * with COPY, PostgreSQL's fastest way in, with no parsing, checking or deciding at all. Like the
 * import, two connections at once, one transaction per 500 accounts' rows, synchronous_commit
 * off, and a table's rows in only once the table before it is complete (answers need their
 * accounts). Answers accounts/s.
 */
async function copyCeiling(source: URL, accounts: number): Promise<{ seconds: number; rate: number; byTable: string }> {
  const target = new URL(source.href);
  target.pathname = `/${DATABASE}_copy`;
  const admin = new pg.Client({ connectionString: source.href });
  await admin.connect();
  await admin.query(`drop database if exists ${DATABASE}_copy with (force)`);
  await admin.query(`create database ${DATABASE}_copy`);
  const halves: Record<string, [string, string]> = {};
  const rows: Record<string, number> = {};
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-copy-'));
  for (const table of IMPORTED_TABLES) {
    // Two halves by physical position, one per connection.
    const { rows: [stats] } = await admin.query<{ pages: number; rows: number }>(
      `select (pg_relation_size($1) / current_setting('block_size')::int)::int as pages, (select count(*) from ${table})::int as rows`, [table]);
    rows[table] = stats!.rows;
    const middle = `'(${Math.floor(stats!.pages / 2)},0)'::tid`;
    halves[table] = [path.join(dir, `${table}.0`), path.join(dir, `${table}.1`)];
    for (const [i, where] of [`ctid < ${middle}`, `ctid >= ${middle}`].entries()) {
      await pipeline(admin.query(copyTo(`copy (select * from ${table} where ${where}) to stdout`)), createWriteStream(halves[table]![i]!));
    }
  }
  await admin.end();
  const storage = await openStorage({ ...config.database, url: target.href }, createLogger({ ...config, logging: { ...config.logging, level: 'warn' } }));
  await migrateToLatest(storage.db);
  await storage.close();

  const clients = [new pg.Client({ connectionString: target.href }), new pg.Client({ connectionString: target.href })];
  await Promise.all(clients.map((c) => c.connect()));
  const copyHalf = async (client: pg.Client, table: string, file: string, perTransaction: number) => {
    const copyChunk = async (lines: string[]) => {
      await client.query('begin');
      await client.query('set local synchronous_commit = off');
      await pipeline(async function* () { yield `${lines.join('\n')}\n`; }, client.query(copyFrom(`copy ${table} from stdin`)));
      await client.query('commit');
    };
    let chunk: string[] = [];
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      chunk.push(line);
      if (chunk.length >= perTransaction) {
        await copyChunk(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) await copyChunk(chunk);
  };
  const times: string[] = [];
  const started = performance.now();
  for (const table of IMPORTED_TABLES) {
    const tableStarted = performance.now();
    const perTransaction = Math.max(1, Math.round(ACCOUNTS_PER_TRANSACTION * rows[table]! / accounts));
    await Promise.all(clients.map((client, i) => copyHalf(client, table, halves[table]![i]!, perTransaction)));
    if (rows[table]! > 0) times.push(`${table} ${((performance.now() - tableStarted) / 1000).toFixed(1)} s`);
  }
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  rmSync(dir, { recursive: true, force: true });
  const cleanup = new pg.Client({ connectionString: source.href });
  await cleanup.connect();
  await cleanup.query(`drop database if exists ${DATABASE}_copy with (force)`);
  await cleanup.end();
  return { seconds, rate: accounts / seconds, byTable: times.join(', ') };
}

// ---- PostgreSQL, then the embedded database ----------------------------------------------------
const file = await generate(ACCOUNTS);
log(`${os.cpus().length} CPUs, node ${process.version}; other work on the machine skews these figures`);

const base = process.env.DATABASE_URL;
if (base && /^postgres(ql)?:\/\//.test(base)) {
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`drop database if exists ${DATABASE} with (force)`);
  await admin.query(`create database ${DATABASE}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${DATABASE}`;
  log(`PostgreSQL (${url.host}/${DATABASE}): importing`);
  const measured = await importWith({ url: url.href, pool_max: 4 }, file);
  const rate = report('PostgreSQL', ACCOUNTS, measured);
  log(`PostgreSQL goals: >= 20,000 accounts/s ${rate >= 20_000 ? 'met' : 'NOT met'}; peak RSS < 300 MB ${measured.peakRssMb < 300 ? 'met' : 'NOT met'}`);
  if (process.env.BENCH_CEILING !== '0') {
    log('PostgreSQL alone: the same rows copied into a fresh database with COPY (no parsing, checking or deciding)');
    const ceiling = await copyCeiling(url, ACCOUNTS);
    log(`PostgreSQL alone: ${ceiling.seconds.toFixed(1)} s, ${number.format(Math.round(ceiling.rate))} accounts/s (${ceiling.byTable}); `
      + `the import reaches ${(rate / ceiling.rate).toFixed(2)} of it`);
  }
} else {
  log('DATABASE_URL is not a postgres:// URL: PostgreSQL skipped');
}

if (EMBEDDED > 0) {
  const embeddedFile = EMBEDDED === ACCOUNTS ? file : await generate(EMBEDDED);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-import-pglite-'));
  log(`embedded database (PGlite, ${dataDir}): importing ${number.format(EMBEDDED)} accounts`);
  report('embedded', EMBEDDED, await importWith({ url: '', data_dir: dataDir }, embeddedFile));
  rmSync(dataDir, { recursive: true, force: true });
}
