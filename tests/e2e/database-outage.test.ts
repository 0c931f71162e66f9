import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser, type FormFields } from '../support/browser.ts';
import { appClient, authorizationRequest, oidc, register, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startParleyProcess, type ParleyProcess } from '../support/parley-process.ts';
import { OWN_CLUSTER_UNAVAILABLE, PostgresCluster } from '../support/postgres-cluster.ts';
import { freePort, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// A database that goes away must give 503s with Retry-After, never a crash or a hang, and Parley
// must carry on when it is back, having lost nothing it acknowledged. The database is a cluster
// of this file's own (initdb in a temporary directory), so the test can restart it for real;
// it runs in both passes of CI and never touches the machine's shared cluster.

/** A loopback TCP relay in front of PostgreSQL: cutting it is a network failure, with no goodbye from the server. */
class Relay {
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  readonly port: number;
  readonly target: { host: string; port: number };
  constructor(port: number, target: { host: string; port: number }) {
    this.port = port;
    this.target = target;
  }
  async open(): Promise<void> {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.port, '127.0.0.1', resolve));
  }
  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server!.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

/** A webhook receiver on loopback: the account ids of the account.created events it got. */
async function startReceiver(): Promise<{ url: string; accountIds: Set<string>; close(): Promise<void> }> {
  const accountIds = new Set<string>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => {
      const event = JSON.parse(body) as { type: string; data: { account_id: string } };
      if (event.type === 'account.created') accountIds.add(event.data.account_id);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/events`,
    accountIds,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function eventually(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

const reason = OWN_CLUSTER_UNAVAILABLE ? ` (skipped: ${OWN_CLUSTER_UNAVAILABLE})` : '';

describe.skipIf(OWN_CLUSTER_UNAVAILABLE)(`when PostgreSQL goes away${reason}`, () => {
  let cluster: PostgresCluster;
  beforeAll(async () => { cluster = await PostgresCluster.create(); });
  afterAll(async () => { await cluster?.destroy(); });

  describe('behind a network cut', () => {
    let relay: Relay;
    let server: TestServer;

    beforeAll(async () => {
      relay = new Relay(await freePort(), { host: '127.0.0.1', port: cluster.port });
      await relay.open();
      const viaRelay = new URL(await cluster.createDatabase('parley_relay'));
      viaRelay.host = `127.0.0.1:${relay.port}`;
      server = await startTestServer({ database: { url: viaRelay.href, connection_timeout: '1s', statement_timeout: '2s' } });
    });
    afterAll(async () => {
      await server?.close().catch(() => undefined);
      await relay?.cut().catch(() => undefined);
    });

    it('answers 503 while it is gone and recovers when it is back', async () => {
      const app = await appClient(server);
      const request = await authorizationRequest(app);
      expect((await fetch(`${server.issuer}/readyz`)).status).toBe(200);

      await relay.cut();
      const ready = await fetch(`${server.issuer}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { database: 'unreachable' } });

      const page = await new HttpBrowser().request(request.url);
      expect(page.status).toBe(503);
      expect(page.headers.get('retry-after')).toBe('5');
      expect(await page.text()).not.toMatch(/at .*\.(js|ts):\d+/); // no stack trace

      const token = await fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('web-app:web-app-secret-for-tests').toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: app.redirectUri, code_verifier: 'y'.repeat(43) }),
      });
      expect(token.status).toBe(503);
      expect(await token.json()).toMatchObject({ error: 'temporarily_unavailable' });

      await relay.open();
      expect((await fetch(`${server.issuer}/readyz`)).status).toBe(200);
      expect((await new HttpBrowser().navigate(request.url)).status).toBe(200);
    });
  });

  describe('when Parley starts before it', () => {
    let parley: ParleyProcess | undefined;
    afterAll(async () => {
      await parley?.stop();
    });

    it('waits for it, migrates and serves once it is up', async () => {
      await cluster.createDatabase('parley_late');
      await cluster.stop();
      try {
        const starting = await startParleyProcess({ database: { url: cluster.url('parley_late'), connection_timeout: '2s' } });
        parley = starting;
        // Twice: it tried, waited, and tried again, and it is still there.
        const waits = () => starting.logs().filter((l) => l.msg === 'the database is unavailable; waiting for it before starting').length;
        await eventually(() => waits() >= 2 || starting.exited() !== undefined, 'two attempts to reach the database');
        expect(starting.exited()).toBeUndefined();
      } finally {
        await cluster.start();
      }
      await parley.ready();
      expect((await fetch(`${parley.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    }, 60_000);
  });

  describe('in a restart, with registrations in flight', () => {
    let parley: ParleyProcess;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let databaseUrl: string;

    beforeAll(async () => {
      databaseUrl = await cluster.createDatabase('parley_restart');
      receiver = await startReceiver();
      parley = await startParleyProcess({
        database: { url: databaseUrl, connection_timeout: '2s', statement_timeout: '5s' },
        events: { worker: true, poll_interval: '1s', timeout: '2s', allow_http_hosts: ['127.0.0.1'] },
        webhooks: [{ id: 'receiver', url: receiver.url, events: ['account.created'], secrets: [`whsec_${Buffer.alloc(32, 7).toString('base64')}`] }],
      });
      await parley.ready();
    });
    afterAll(async () => {
      await parley?.stop();
      await receiver?.close();
    });

    it('stays up, answers 503 with Retry-After meanwhile, resumes, and keeps every acknowledged registration', async () => {
      const { issuer } = parley;
      const demoShop = TEST_CLIENTS(issuer).find((c) => c.client_id === 'demo-shop')!;
      const app: AppClient = {
        config: await oidc.discovery(new URL(issuer), demoShop.client_id, demoShop.client_secret, undefined, { execute: [oidc.allowInsecureRequests] }),
        clientId: demoShop.client_id,
        redirectUri: demoShop.redirect_uris[0]!,
      };

      let phase = 'before';
      const answers: { phase: string; method: string; path: string; status: number; retryAfter: string | null }[] = [];
      const failures: string[] = [];
      const acknowledged = new Set<string>();

      // Every answer the users got, and which registrations were acknowledged (303 onwards).
      class UserBrowser extends HttpBrowser {
        readonly email = uniqueEmail('restart');
        override async request(url: string, init: { method?: string; form?: FormFields; headers?: Record<string, string> } = {}): Promise<Response> {
          const method = init.method ?? (init.form ? 'POST' : 'GET');
          const { pathname } = new URL(url);
          let timer: NodeJS.Timeout | undefined;
          const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000); });
          try {
            const response = await Promise.race([super.request(url, init), hang]);
            answers.push({ phase, method, path: pathname, status: response.status, retryAfter: response.headers.get('retry-after') });
            if (method === 'POST' && pathname.endsWith('/register') && response.status === 303) acknowledged.add(this.email);
            return response;
          } catch (error) {
            failures.push(`${phase}: ${method} ${pathname}: ${(error as Error).message}`);
            throw error;
          } finally {
            clearTimeout(timer);
          }
        }
      }
      let load = true;
      const users = Array.from({ length: 4 }, async () => {
        while (load) {
          const browser = new UserBrowser();
          try {
            const login = await browser.navigate((await authorizationRequest(app)).url);
            await register(browser, login, browser.email, app.redirectUri);
          } catch {
            // A 503 page has no form to go on with: this user starts over, as a real one would.
            await sleep(50);
          }
        }
      });

      const crashed = () => {
        const exit = parley.exited();
        return exit ? `parley exited (${JSON.stringify(exit)}); last log lines:\n${parley.logs().slice(-15).map((l) => JSON.stringify(l)).join('\n')}` : undefined;
      };
      async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        while (!condition()) {
          const crash = crashed();
          if (crash) throw new Error(`${what}: ${crash}`);
          if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (acknowledged: ${acknowledged.size}; failures: ${failures.slice(0, 5).join('; ')})`);
          await sleep(50);
        }
      }
      const moreAcknowledged = async (what: string) => {
        const mark = acknowledged.size;
        await until(() => acknowledged.size >= mark + 4, what);
      };

      try {
        await moreAcknowledged('registrations before the restart');

        // What an operator's `restart -m fast` does: every session ends with 57P01, in a transaction or not.
        phase = 'restart';
        await cluster.restart();
        phase = 'after restart';
        await moreAcknowledged('registrations after the restart');

        // Stopped for a while: nothing to connect to.
        phase = 'stopped';
        await cluster.stop();
        await sleep(1500);
        expect((await fetch(`${issuer}/healthz`)).status).toBe(200);
        expect((await fetch(`${issuer}/readyz`)).status).toBe(503);
        await sleep(500);
        phase = 'starting';
        await cluster.start();
        phase = 'after start';
        await moreAcknowledged('registrations after the database started again');
      } finally {
        load = false;
        await Promise.all(users);
      }

      expect(crashed()).toBeUndefined();
      expect(failures).toEqual([]);
      // Only pages, redirects and 503s that say when to come back: no 500, no other error.
      const unexpected = answers.filter((a) => a.status >= 400 && !(a.status === 503 && a.retryAfter));
      expect(unexpected).toEqual([]);
      expect(answers.filter((a) => a.phase === 'stopped' && a.status === 503).length).toBeGreaterThan(0);

      // Every registration the user was told succeeded is there.
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      let stored: { id: string; email: string }[];
      try {
        stored = (await client.query<{ id: string; email: string }>('select id, email from accounts where email = any($1)', [[...acknowledged]])).rows;
      } finally {
        await client.end();
      }
      expect(stored.map((r) => r.email).sort()).toEqual([...acknowledged].sort());

      // And the delivery worker went back to work: each of them reached the webhook receiver.
      await until(() => stored.every((r) => receiver.accountIds.has(r.id)), 'webhook deliveries after the outages');
      expect(crashed()).toBeUndefined();
    }, 120_000);
  });
});
