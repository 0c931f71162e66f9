// npm run bench:events — webhook delivery throughput: a backlog of BENCH_EVENTS (100,000) outbox
// events, delivered by one node's worker to a local receiver that answers 204.
//
// The backlog is answer.recorded events (the costliest kind: the user's current consent is
// looked up for each batch, and an answer it no longer allows is withheld) spread over
// BENCH_ACCOUNTS (10,000) accounts, each with its consent granted, inserted with one SQL
// statement. Events of one account go out one at a time, in order, so the backlog is 10 events
// deep per account. The receiver runs in a child process, so that it does not share the worker's
// event loop; it counts what it gets, and the clock stops when it has every event. The database
// then confirms every delivery is recorded.
//
// The worker runs as in production (start(), real clock) with events.batch_size BENCH_BATCH (50)
// and events.parallel_batches BENCH_LANES (4): up to 200 requests in flight. BENCH_FORMAT=set
// sends Security Event Tokens (an RS256 signature each) instead of Standard Webhooks (HMAC).
// Backends: embedded PGlite in memory always; PostgreSQL too when DATABASE_URL is set, in a
// scratch database created next to the one named and dropped afterwards, e.g.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:events
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { exportJWK, generateKeyPair } from 'jose';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../src/config/load.ts';
import { refreshConsentCurrent } from '../src/consent/ledger.ts';
import { createSetSigner } from '../src/events/signing.ts';
import { createDeliveryWorker } from '../src/events/worker.ts';
import { migrateToLatest, openStorage, type Storage } from '../src/storage/database.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const LANES = Number(process.env.BENCH_LANES ?? 4);
const FORMAT = process.env.BENCH_FORMAT === 'set' ? 'set' : 'standard';
const logger = pino({ level: process.env.BENCH_LOG ?? 'warn' });

// The receiver: its own process, answers 204 to everything, counts distinct event ids.
const RECEIVER = `
import http from 'node:http';
const ids = new Set(); let requests = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'GET') { res.end(JSON.stringify({ requests, distinct: ids.size })); return; }
  requests++;
  const id = req.headers['webhook-id'];
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    ids.add(id ?? JSON.parse(Buffer.from(body.split('.')[1], 'base64url').toString()).jti);
    res.writeHead(204); res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function startReceiver(): Promise<{ url: string; count(): Promise<{ requests: number; distinct: number }>; stop(): void }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the receiver exited (${code})`)));
  });
  const url = `http://127.0.0.1:${port}/events`;
  return {
    url,
    count: async () => (await (await fetch(url)).json()) as { requests: number; distinct: number },
    stop: () => { child.kill(); },
  };
}

async function seed(storage: Storage): Promise<number> {
  const started = performance.now();
  await sql`
    insert into consent_ledger (subject, purpose, purpose_version, action, source, locale, text_hash, at)
    select 'bench-' || i, 'personalization', 1, 'granted', 'api', 'en', repeat('0', 64), now()
    from generate_series(0, ${ACCOUNTS - 1}::int) i`.execute(storage.db);
  await storage.db.transaction().execute((trx) => refreshConsentCurrent(trx,
    Array.from({ length: ACCOUNTS }, (_, i) => ({ subject: `bench-${i}`, purpose: 'personalization' }))));
  await sql`
    insert into outbox_events (id, type, account_id, payload, created_at)
    select gen_random_uuid()::text, 'answer.recorded', 'bench-' || (i % ${ACCOUNTS}::int),
      jsonb_build_object('version', 1, 'account_id', 'bench-' || (i % ${ACCOUNTS}::int), 'question_id', 'favourite_drink',
        'screenset_id', 'welcome', 'screenset_version', 1, 'purpose', 'personalization', 'value', 'coffee',
        'client_id', 'spa', 'locale', 'en', 'source', 'screen',
        'consent', jsonb_build_object('purpose', 'personalization', 'legal_basis', 'consent', 'version', 1, 'state', 'granted')),
      now()
    from generate_series(1, ${EVENTS}::int) i`.execute(storage.db);
  return (performance.now() - started) / 1000;
}

async function run(backend: 'pglite' | 'postgres', url: string) {
  const storage = await openStorage({
    url, data_dir: 'memory://', migrate_on_start: true, pool_max: 10, connection_timeout: 5, statement_timeout: 60,
  }, logger);
  await migrateToLatest(storage.db);
  const seedSeconds = await seed(storage);
  const receiver = await startReceiver();
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const base = loadConfig({
    env: {},
    overrides: {
      env: 'test',
      webhooks: [{
        id: 'bench', url: receiver.url, events: ['answer.recorded'], purposes: ['personalization'], format: FORMAT,
        ...(FORMAT === 'standard' ? { secrets: [`whsec_${randomBytes(32).toString('base64')}`] } : {}),
      }],
    },
  });
  const config = { ...base, events: { ...base.events, batch_size: BATCH, parallel_batches: LANES, poll_interval: 0.1 } };
  const worker = createDeliveryWorker({
    db: storage.db, config, logger, clock: () => new Date(),
    signSet: createSetSigner({ ...(await exportJWK(privateKey)), kid: 'bench', alg: 'RS256' }),
  });

  const started = performance.now();
  worker.start();
  let last = { requests: 0, distinct: 0 };
  let lastReport = started;
  while (last.distinct < EVENTS) {
    await new Promise((r) => setTimeout(r, 250));
    last = await receiver.count();
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      console.log(`  ${backend}: ${last.distinct} delivered after ${((lastReport - started) / 1000).toFixed(0)} s`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  await worker.stop();
  const recorded = await storage.db.selectFrom('deliveries').select((eb) => eb.fn.countAll<number>().as('n'))
    .where('endpoint_id', '=', 'bench').where('status', '=', 'delivered').executeTakeFirstOrThrow();
  receiver.stop();
  await storage.close();
  return { backend, seedSeconds, seconds, requests: last.requests, distinct: last.distinct, recorded: Number(recorded.n) };
}

async function scratchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `parley_bench_events_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.href,
    async drop() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

console.log(`bench:events — ${EVENTS.toLocaleString('en')} answer.recorded events over ${ACCOUNTS.toLocaleString('en')} accounts, `
  + `format ${FORMAT}, batch_size ${BATCH} × parallel_batches ${LANES} (${BATCH * LANES} requests in flight at most), `
  + `one worker node, receiver answering 204 in its own process; Node ${process.version}, ${os.cpus().length} CPUs\n`);
const results = [await run('pglite', '')];
if (process.env.DATABASE_URL) {
  const scratch = await scratchDatabase(process.env.DATABASE_URL);
  try {
    results.push(await run('postgres', scratch.url));
  } finally {
    await scratch.drop();
  }
}
console.log(`\n${'backend'.padEnd(9)}${'seed s'.padStart(8)}${'deliver s'.padStart(11)}${'events/s'.padStart(10)}${'requests'.padStart(10)}${'recorded'.padStart(10)}`);
for (const r of results) {
  console.log(`${r.backend.padEnd(9)}${r.seedSeconds.toFixed(1).padStart(8)}${r.seconds.toFixed(1).padStart(11)}`
    + `${Math.round(r.distinct / r.seconds).toString().padStart(10)}${String(r.requests).padStart(10)}${String(r.recorded).padStart(10)}`);
}
const incomplete = results.filter((r) => r.recorded !== EVENTS);
if (incomplete.length > 0) {
  console.error(`not every delivery was recorded: ${incomplete.map((r) => `${r.backend} ${r.recorded}/${EVENTS}`).join(', ')}`);
  process.exitCode = 1;
}
