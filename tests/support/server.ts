import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { createParley, type Parley } from '../../src/app.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { readMailbox } from '../../src/mail/mailer.ts';
import { DEFAULT_BACKEND } from './database.ts';

/** A clock tests can move; Parley's own records follow it. */
export class TestClock {
  offsetMs = 0;
  now = () => new Date(Date.now() + this.offsetMs);
  advance(seconds: number) { this.offsetMs += seconds * 1000; }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  parley: Parley;
  config: Config;
  issuer: string;
  mailboxDir: string;
  clock: TestClock;
  /** Sends the mail queued so far that is due, and waits for the mail the server is sending. */
  deliverMail(): Promise<void>;
  /** Links found in the mails sent to this address, newest last, once the mail queued so far has been sent. */
  linksSentTo(email: string): Promise<string[]>;
  close(): Promise<void>;
}

export const TEST_CLIENTS = (issuer: string) => [
  {
    // A third-party web app: confidential, shown the consent screen.
    client_id: 'web-app', client_secret: 'web-app-secret-for-tests', name: 'Web App',
    redirect_uris: [`${issuer}/app/callback`], post_logout_redirect_uris: [`${issuer}/app/signed-out`],
    purposes: ['personalization'],
  },
  {
    // The brand's own single-page app: public (no secret), PKCE required, no consent screen.
    client_id: 'spa', name: 'Brand SPA', first_party: true,
    redirect_uris: [`${issuer}/spa/callback`], post_logout_redirect_uris: [`${issuer}/spa`],
    purposes: ['personalization', 'offers'],
  },
  {
    client_id: 'demo-shop', client_secret: 'demo-shop-secret-for-tests', name: 'Demo Shop', first_party: true,
    redirect_uris: [`${issuer}/demo/callback`], post_logout_redirect_uris: [`${issuer}/demo`],
    purposes: ['personalization', 'offers'],
  },
];

/** Config over the test defaults; a function gets the server's issuer (for clients' redirect URIs). */
export type TestOverrides = Record<string, unknown> | ((issuer: string) => Record<string, unknown>);

export async function startTestServer(
  overridesOrFn: TestOverrides = {},
  { port: fixedPort, ...options }: { upstreamFetch?: typeof fetch; port?: number } = {},
): Promise<TestServer> {
  // A fixed port: a restarted server keeps its issuer (and the callback URLs registered at upstream providers).
  const port = fixedPort ?? await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const overrides = typeof overridesOrFn === 'function' ? overridesOrFn(issuer) : overridesOrFn;
  const mailboxDir = mkdtempSync(path.join(os.tmpdir(), 'parley-mail-'));
  const config = loadConfig({
    env: {},
    overrides: deepMerge({
      env: 'test',
      issuer,
      port,
      host: '127.0.0.1',
      database: { url: DEFAULT_BACKEND.url, data_dir: 'memory://' },
      secrets: { cookie_keys: ['test-cookie-key-0123456789abcdef'], key_encryption: 'test-key-encryption-secret-0123456789' },
      mail: { mailbox_dir: mailboxDir },
      logging: { level: 'silent' },
      // Cheaper hashing keeps the suite fast; the benchmark measures the real parameters.
      accounts: { argon2: { memory_kib: 8192, iterations: 1, parallelism: 1 } },
      clients: TEST_CLIENTS(issuer),
      // Sign-ins without the passkey offer, unless a test turns it on (mfa.passkeys.offer).
      mfa: { passkeys: { offer: false } },
      // Sign-ins without questions, unless a test brings its screen-sets.
      screensets: { dir: 'tests/fixtures/screensets-none', watch: false },
      // No webhook delivery unless a test configures endpoints and turns the worker on. Mail is
      // sent whatever this says; tests wait for it with deliverMail() (linksSentTo does).
      events: { worker: false },
    }, overrides) as Record<string, unknown>,
  });
  const clock = new TestClock();
  const parley = await createParley({
    config, clock: clock.now, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    // Test servers share the database on PostgreSQL: each sends only the mail it queued itself.
    mailEndpointId: `mail-${randomBytes(6).toString('hex')}`,
    ...options,
  });
  await parley.listen(port, '127.0.0.1');
  const deliverMail = () => parley.deliveryWorker.drainMail();
  return {
    parley, config, issuer, mailboxDir, clock, deliverMail,
    async linksSentTo(email) {
      await deliverMail();
      const mails = (await readMailbox(mailboxDir)).filter((m) => m.to === email);
      return mails.flatMap((m) => [...m.text.matchAll(/https?:\/\/\S+/g)].map((match) => match[0]));
    },
    close: () => parley.close(),
  };
}

/**
 * What the server logs from now on, at `level` and above. The test server's logger writes
 * nowhere; its lines, and those of the request loggers made from it, come here instead.
 */
export function captureLogs(server: TestServer, level = 'info'): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const logger = server.parley.logger as pino.Logger & Record<symbol, unknown>;
  logger.level = level;
  logger[pino.symbols.streamSym] = { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } };
  return lines;
}
