import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest } from '../support/oidc-app.ts';
import { POSTGRES_URL } from '../support/database.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';

// A database that goes away must give 503s, never a crash or a hang, and Parley must recover
// when it returns. The outage is a real one: a loopback TCP relay in front of PostgreSQL that
// the test cuts and restores. (PGlite lives inside the process and cannot go away, so this
// runs in the PostgreSQL pass of CI.)
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

describe.runIf(POSTGRES_URL)('when PostgreSQL goes away', () => {
  let relay: Relay;
  let server: TestServer;

  beforeAll(async () => {
    const target = new URL(POSTGRES_URL);
    relay = new Relay(await freePort(), { host: target.hostname, port: Number(target.port || 5432) });
    await relay.open();
    const viaRelay = new URL(POSTGRES_URL);
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
