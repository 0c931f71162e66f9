// npm run bench:login — sign-in throughput of a real Parley server against the argon2id ceiling.
//
// A sign-in is the whole journey an app drives: authorization request → sign-in form →
// credentials → code → token exchange with PKCE. Four virtual users run it back to back for
// BENCH_SECONDS (20 s), each time in a fresh cookie jar. In the same run, on the same machine,
// four concurrent argon2id verifications with the server's parameters give the ceiling: a
// sign-in cannot be faster than its password check. The ratio says how much of the machine the
// rest of the sign-in costs. Set DATABASE_URL to run the server on PostgreSQL.
//
// Before the timed run, sign-ins run one at a time and the server's statement counter (/metrics,
// parley_db_statements_total) is read before and after each: the SQL statements of one sign-in,
// counted by kind (first word and table), never estimated.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import { loadConfig } from '../src/config/load.ts';
import { HttpBrowser } from '../tests/support/browser.ts';
import { freePort } from '../tests/support/server.ts';
import { enrolPasskey, measurePasskeySignIns } from './passkey-sign-in.ts';

const VIRTUAL_USERS = Number(process.env.BENCH_VUS ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CEILING_SECONDS = Number(process.env.BENCH_CEILING_SECONDS ?? 5);
const PASSWORD = 'benchmark passphrase 2026';

const root = path.resolve(import.meta.dirname, '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
const port = await freePort();
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = `${issuer}/bench/callback`;
writeFileSync(path.join(work, 'bench.yaml'), [
  `database: { data_dir: ${JSON.stringify(path.join(work, 'db'))} }`,
  `mail: { mailbox_dir: ${JSON.stringify(path.join(work, 'mail'))} }`,
  'demo: { enabled: false }',
  // Sign-ins with nothing to ask: the profiling check still runs (its database read), but no
  // question page interrupts the flow being measured.
  `screensets: { dir: ${JSON.stringify(path.join(root, 'tests/fixtures/screensets-none'))} }`,
  'logging: { level: warn }',
  // No "Sign in faster next time?" step in the password scenario's sign-ins.
  'mfa: { passkeys: { offer: false } }',
  'clients:',
  '  - client_id: bench',
  '    first_party: true',
  `    redirect_uris: [${redirectUri}]`,
].join('\n'));

const server = spawn(process.execPath, [path.join(root, 'bin/parley.js'), 'start'], {
  env: { ...process.env, PORT: String(port), ISSUER: issuer, PARLEY_CONFIG: path.join(work, 'bench.yaml'), NODE_ENV: '' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const stopServer = () => { if (server.exitCode === null) server.kill('SIGTERM'); };
process.on('exit', stopServer);

async function waitReady(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${issuer}/readyz`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not become ready');
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** One whole sign-in in a fresh cookie jar; returns its duration in milliseconds. */
async function signIn(email: string): Promise<number> {
  const started = performance.now();
  const browser = new HttpBrowser();
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString('base64url');
  const authorize = new URL(`${issuer}/auth`);
  authorize.search = new URLSearchParams({
    client_id: 'bench', response_type: 'code', scope: 'openid email', redirect_uri: redirectUri,
    code_challenge: challenge, code_challenge_method: 'S256', state,
  }).toString();
  const login = await browser.navigate(authorize.href);
  const callback = await browser.submit(login, '/login', { email, password: PASSWORD }, redirectUri);
  const code = new URL(callback.url).searchParams.get('code');
  if (!code) throw new Error(`sign-in did not reach the callback: ${callback.status} ${callback.url}`);
  const token = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: 'bench', code_verifier: verifier }),
  });
  const body = await token.json() as { id_token?: string };
  if (!token.ok || !body.id_token) throw new Error(`token exchange failed: ${token.status} ${JSON.stringify(body)}`);
  return performance.now() - started;
}

async function registerUser(email: string): Promise<void> {
  const browser = new HttpBrowser();
  const { challenge } = pkce();
  const authorize = `${issuer}/auth?${new URLSearchParams({
    client_id: 'bench', response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256',
  })}`;
  const login = await browser.navigate(authorize);
  const link = /href="([^"]*\/register)"/.exec(login.html)![1]!;
  const form = await browser.navigate(new URL(link, login.url).href);
  const done = await browser.submit(form, '/register', { email, password: PASSWORD }, redirectUri);
  if (!done.url.startsWith(redirectUri)) throw new Error(`registration failed: ${done.status}`);
}

/** argon2id verifications per second with `concurrency` in flight, as the server would run them. */
async function argon2Ceiling(seconds: number, concurrency: number): Promise<number> {
  const { argon2: params } = loadConfig({ env: {} }).accounts;
  const hash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: params.memory_kib, timeCost: params.iterations, parallelism: params.parallelism });
  const until = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await argon2.verify(hash, PASSWORD);
      count++;
    }
  }));
  return count / seconds;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Resident memory of the server process now (VmRSS) or at its peak so far (VmHWM). */
function rssMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
}

const serverMetrics = async () => (await fetch(`${issuer}/metrics`)).text();

/** Where the server's memory is now, from /metrics: the V8 heap and what lives outside it (buffers, WebAssembly). */
async function serverMemoryMiB(): Promise<{ v8_heap: number; external: number }> {
  const text = await serverMetrics();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { v8_heap: Math.round(gauge('parley_nodejs_heap_size_total_bytes')), external: Math.round(gauge('parley_nodejs_external_memory_bytes')) };
}

/** The server's statement counts by kind ("select oidc_payloads", "begin"), from /metrics. */
async function statementCounts(): Promise<Map<string, number>> {
  const text = await serverMetrics();
  const counts = new Map<string, number>();
  for (const [, kind, count] of text.matchAll(/^parley_db_statements_total\{statement="([^"]*)"\} (\d+)$/gm)) counts.set(kind!, Number(count));
  return counts;
}

/**
 * The statements one sign-in sends, by kind, with no other sign-in running. The server's
 * background work (the outbox and webhook workers' polls) may send some in the same moment and
 * only ever adds: of a few sign-ins one at a time, the one with the fewest is the sign-in alone.
 */
async function statementsOfOneSignIn(email: string, tries = 5): Promise<{ total: number; byKind: Record<string, number> }> {
  let fewest: { total: number; byKind: Record<string, number> } | undefined;
  for (let i = 0; i < tries; i++) {
    const before = await statementCounts();
    await signIn(email);
    const after = await statementCounts();
    const byKind = Object.fromEntries([...after].map(([kind, n]) => [kind, n - (before.get(kind) ?? 0)] as const).filter(([, n]) => n > 0).sort());
    const total = Object.values(byKind).reduce((a, b) => a + b, 0);
    if (!fewest || total < fewest.total) fewest = { total, byKind };
  }
  return fewest!;
}



await waitReady();
await new Promise((r) => setTimeout(r, 2000)); // let the start settle before reading its memory
const idleRss = rssMiB(server.pid!, 'VmRSS');
const users = Array.from({ length: VIRTUAL_USERS }, (_, i) => `bench-${i}-${Date.now()}@example.com`);
for (const email of users) await registerUser(email);
for (const email of users) await signIn(email); // warm-up: JIT, connections, caches
const statements = await statementsOfOneSignIn(users[0]!);

const ceilingBefore = await argon2Ceiling(CEILING_SECONDS, VIRTUAL_USERS);
const latencies: number[] = [];
let failures = 0;
const until = performance.now() + SECONDS * 1000;
const started = performance.now();
await Promise.all(users.map(async (email) => {
  while (performance.now() < until) {
    try {
      latencies.push(await signIn(email));
    } catch (error) {
      failures++;
      if (failures <= 3) console.error((error as Error).message);
    }
  }
}));
const elapsed = (performance.now() - started) / 1000;
// The passkey scenario, in the same run on the same server: its own users, each with a passkey.
const passkeyBench = { issuer, clientId: 'bench', redirectUri, password: PASSWORD };
const passkeyUsers = Array.from({ length: VIRTUAL_USERS }, (_, i) => `bench-passkey-${i}-${Date.now()}@example.com`);
for (const email of passkeyUsers) await registerUser(email);
const authenticators = await Promise.all(passkeyUsers.map((email) => enrolPasskey(passkeyBench, email)));
const passkeys = await measurePasskeySignIns(passkeyBench, authenticators, SECONDS);
const ceilingAfter = await argon2Ceiling(CEILING_SECONDS, VIRTUAL_USERS);
const rss = rssMiB(server.pid!, 'VmHWM');
const memoryAfterLoad = await serverMemoryMiB();
stopServer();

latencies.sort((a, b) => a - b);
const rate = latencies.length / elapsed;
const ceiling = (ceilingBefore + ceilingAfter) / 2;
const result = {
  database: process.env.DATABASE_URL ? 'postgres' : 'embedded',
  virtual_users: VIRTUAL_USERS,
  seconds: Number(elapsed.toFixed(1)),
  sign_ins: latencies.length,
  failures,
  sign_ins_per_second: Number(rate.toFixed(1)),
  latency_ms: { p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)) },
  sql_statements_per_sign_in: statements.total,
  sql_statements_by_kind: statements.byKind,
  server_idle_rss_mib: Number(idleRss.toFixed(0)),
  server_peak_rss_mib: Number(rss.toFixed(0)),
  server_memory_after_load_mib: memoryAfterLoad,
  argon2id_verify_ceiling_per_second: { before: Number(ceilingBefore.toFixed(1)), after: Number(ceilingAfter.toFixed(1)) },
  ratio_to_ceiling: Number((rate / ceiling).toFixed(2)),
  passkey: { ...passkeys, times_password_rate: Number((passkeys.sign_ins_per_second / rate).toFixed(1)) },
};
console.log(JSON.stringify(result, null, 2));
console.log(`\n${result.sign_ins_per_second} sign-ins/s (p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms), ` +
  `${result.ratio_to_ceiling} of the argon2id ceiling (${ceiling.toFixed(1)} verifies/s), ${statements.total} SQL statements a sign-in, ` +
  `server RSS ${result.server_idle_rss_mib} MiB after start, ${result.server_peak_rss_mib} MiB at peak`);
console.log(`${passkeys.sign_ins_per_second} passkey sign-ins/s (p50 ${passkeys.latency_ms.p50} ms, p99 ${passkeys.latency_ms.p99} ms), `
  + `${result.passkey.times_password_rate}× the password sign-ins/s`);
process.exit(failures > 0 || passkeys.failures > 0 ? 1 : 0);
