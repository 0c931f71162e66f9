import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureLogs, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// What the HTTP edge does with clients that misbehave at the transport: a body cut short, a body
// or headers trickled in to hold a connection, plain http to a node whose issuer is https. Raw
// sockets, because a well-behaved client cannot do any of these.

/** A raw connection to the server: what it has received, and whether the server closed it. */
async function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  let closed = false;
  socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk; });
  socket.on('error', () => {});
  socket.on('close', () => { closed = true; });
  return { socket, received: () => received, closed: () => closed };
}

async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

const requestLine = (logs: Record<string, unknown>[], route: string) => logs.find((l) => l.msg === 'request' && l.route === route);

describe('a client that cuts its upload short', () => {
  let server: TestServer;
  let logs: Record<string, unknown>[];
  beforeAll(async () => {
    server = await startTestServer({
      clients: [...TEST_CLIENTS('${issuer}'), {
        client_id: 'crm', client_secret: 'crm-secret-for-tests-0123456789', grant_types: ['client_credentials'], purposes: ['personalization'], scope: 'segments:read',
      }],
    });
    logs = captureLogs(server);
  });
  afterAll(async () => { await server?.close(); });

  /** Posts the start of a 1000-byte body, then closes the connection. */
  async function cutShort(path: string, headers: string[], start: string) {
    const { socket, received } = await connect(server.config.port);
    // Expect: 100-continue: the server answers 100 once its handler has the request, so the
    // body is cut while the handler is reading it.
    socket.write([`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, 'Content-Length: 1000', 'Expect: 100-continue', '', ''].join('\r\n'));
    await eventually(() => received().startsWith('HTTP/1.1 100'), '100 Continue');
    socket.write(start);
    socket.destroy();
  }
  const FORM = 'Content-Type: application/x-www-form-urlencoded';

  it('is logged and counted as a closed request (499), not as a database outage', async () => {
    await cutShort('/forgot-password', [FORM], 'csrf=abc&email=someone%40exa');

    await eventually(() => requestLine(logs, '/forgot-password') !== undefined, 'the access log line');
    expect(requestLine(logs, '/forgot-password')).toMatchObject({ method: 'POST', status: 499 });
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(logs.some((l) => l.msg === 'database unavailable')).toBe(false);

    const metrics = await (await fetch(`${server.issuer}/metrics`)).text();
    expect(metrics).toMatch(/parley_http_requests_total\{method="POST",route="\/forgot-password",status="499"\} 1/);
    expect(metrics).not.toMatch(/status="503"/);
  });

  it('at the token endpoint: the provider answers it, and prints nothing of it to stderr', async () => {
    // oidc-provider is a Koa app of its own; Koa prints what its app reports as an error unless
    // the app has a listener. Everything goes to Parley's logger instead.
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await cutShort('/token', [FORM], 'grant_type=client_cred');
      // The provider is told of the broken connection before it answers, and the log line comes after.
      await eventually(() => requestLine(logs, '/token') !== undefined, 'the access log line');
      expect(printed).not.toHaveBeenCalled();
      expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    } finally {
      printed.mockRestore();
    }
  });

  it('in the management API, too', async () => {
    // A JSON body cut short after a valid token: the API's own body reader and error mapping.
    const token = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('crm:crm-secret-for-tests-0123456789').toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'segments:read' }),
    }).then(async (r) => (await r.json() as { access_token: string }).access_token);
    await cutShort('/api/v1/segments/count', ['Content-Type: application/json', `Authorization: Bearer ${token}`], '{"all": [');

    await eventually(() => logs.some((l) => l.route === '/api/v1/segments/count'), 'the API log line');
    expect(logs.find((l) => l.route === '/api/v1/segments/count')).toMatchObject({ status: 499 });
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });
});

describe('a client that sends slowly', () => {
  let server: TestServer;
  let logs: Record<string, unknown>[];
  beforeAll(async () => {
    server = await startTestServer({ http: { headers_timeout: '1s', request_timeout: '1s' } });
    logs = captureLogs(server);
  });
  afterAll(async () => { await server?.close(); });

  /** Writes a piece every 100 ms until the server closes the connection (or 20 s pass). */
  async function trickle(connection: Awaited<ReturnType<typeof connect>>, piece: string): Promise<void> {
    await eventually(() => {
      if (!connection.closed()) connection.socket.write(piece);
      return connection.closed();
    }, 'the server closing the connection', 20_000).catch((error: unknown) => {
      connection.socket.destroy();
      throw error;
    });
  }

  it('is answered 408 and cut off when its body does not arrive within http.request_timeout', async () => {
    const connection = await connect(server.config.port);
    connection.socket.write([
      'POST /forgot-password HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/x-www-form-urlencoded', 'Content-Length: 5000', '', '',
    ].join('\r\n'));
    await trickle(connection, 'a');
    expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
    // The handler reading the body learns why it ended: a timeout, not a client gone away.
    await eventually(() => requestLine(logs, '/forgot-password') !== undefined, 'the access log line');
    expect(requestLine(logs, '/forgot-password')).toMatchObject({ status: 408 });
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });

  it('is answered 408 and cut off when its headers do not arrive within http.headers_timeout', async () => {
    const connection = await connect(server.config.port);
    connection.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await trickle(connection, 'X-Slow: a\r\n');
    expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('still serves a client that is quick about it', async () => {
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
  });
});

describe('plain http reaching a node whose issuer is https', () => {
  const issuer = 'https://id.parley.test';
  let server: TestServer;
  let logs: Record<string, unknown>[];
  let node: string;
  beforeAll(async () => {
    server = await startTestServer({ issuer, clients: TEST_CLIENTS('${issuer}') });
    logs = captureLogs(server);
    node = `http://127.0.0.1:${server.config.port}`;
  });
  afterAll(async () => { await server?.close(); });

  it('redirects a page to the same address at the issuer', async () => {
    const query = new URLSearchParams({ client_id: 'web-app', response_type: 'code', scope: 'openid', redirect_uri: `${issuer}/app/callback` });
    for (const path of ['/forgot-password?return=%2Finteraction%2Fabc', `/auth?${query}`, '/account']) {
      const response = await fetch(`${node}${path}`, { redirect: 'manual' });
      expect(response.status, path).toBe(308);
      expect(response.headers.get('location'), path).toBe(`${issuer}${path}`);
      expect(response.headers.getSetCookie(), path).toEqual([]);
    }
    const head = await fetch(`${node}/forgot-password`, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).toBe(308);
  });

  it('refuses anything else with a 400 that says why, as a page or as JSON', async () => {
    const form = await fetch(`${node}/forgot-password`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: 'email=someone%40example.com',
    });
    expect(form.status).toBe(400);
    expect(await form.text()).toContain(issuer);
    expect(form.headers.getSetCookie()).toEqual([]);

    const token = await fetch(`${node}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials',
    });
    expect(token.status).toBe(400);
    expect(await token.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('https') });
  });

  it('still answers health checks and metrics, which load balancers send over plain http', async () => {
    expect((await fetch(`${node}/healthz`)).status).toBe(200);
    expect((await fetch(`${node}/readyz`)).status).toBe(200);
    expect((await fetch(`${node}/metrics`)).status).toBe(200);
  });

  it('logs the likely cause once, as a warning, and never a 500', async () => {
    const warnings = logs.filter((l) => Number(l.level) === 40 && String(l.msg).includes('plain http'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/proxy/);
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(logs.filter((l) => l.msg === 'request' && Number(l.status) >= 500)).toEqual([]);

    // A proxy that forwards https but is not trusted (proxy: false) is a different cause, logged once too.
    for (let i = 0; i < 2; i++) await fetch(`${node}/forgot-password`, { headers: { 'x-forwarded-proto': 'https' }, redirect: 'manual' });
    const more = logs.filter((l) => Number(l.level) === 40 && String(l.msg).includes('plain http'));
    expect(more).toHaveLength(2);
    expect(more[1]!.msg).toMatch(/X-Forwarded-Proto/);
  });
});
