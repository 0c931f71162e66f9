import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMailbox } from '../../src/mail/mailer.ts';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest, PASSWORD, registerAndAuthorize, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { captureLogs, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// Whose address a request is, over HTTP with the headers a client can forge: the throttle, the
// reset-mail limits and /metrics must all see the address the nearest proxy saw. The test is the
// proxy: its requests come from 127.0.0.1 and carry whatever X-Forwarded-For a test writes.

// From 198.18.0.0/15 (RFC 2544's benchmarking block), 131,000 addresses: two tests here (and, in
// the PostgreSQL pass, every test file shares one throttle table) rarely draw the same one; from a
// /24 one draw in 254 met an address already throttled.
const randomV4 = () => `198.${randomInt(18, 20)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
/** A /64 of its own: 2001:db8:<random>:<random>::/64. */
const randomNetwork = () => `2001:db8:${randomInt(1, 0xffff).toString(16)}:${randomInt(1, 0xffff).toString(16)}`;

async function signInFrom(server: TestServer, app: AppClient, forwardedFor: string | undefined, email: string, password: string) {
  const browser = new HttpBrowser({ 'accept-language': 'en', ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) });
  const login = await browser.navigate((await authorizationRequest(app)).url);
  return browser.submit(login, '/login', { email, password }, app.redirectUri);
}

describe('behind one proxy (proxy: true, forwarded_for.hops: 1)', () => {
  let server: TestServer;
  let app: AppClient;
  beforeAll(async () => {
    server = await startTestServer({
      proxy: true,
      throttle: { account: { free_attempts: 5, base_delay: '30s', max_delay: '1m' }, ip: { free_attempts: 3, base_delay: '30s', max_delay: '1m' } },
    });
    app = await appClient(server);
  });
  afterAll(async () => { await server?.close(); });

  it('counts failures by the address the proxy saw, whatever the client wrote before it', async () => {
    const client = randomV4();
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await signInFrom(server, app, `10.1.0.${i + 1}, ${client}`, uniqueEmail('spray'), 'not the password')).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Another client behind the same proxy is not held up.
    let other = randomV4();
    while (other === client) other = randomV4();
    expect((await signInFrom(server, app, `10.1.0.1, ${other}`, uniqueEmail('other'), 'not the password')).status).toBe(401);
  });

  it('counts an IPv6 client by its /64, and an IPv4-mapped address as the IPv4 address', async () => {
    const network = randomNetwork();
    const statuses = [];
    for (const host of ['::1', ':a:b:c:d', '::FFFF:0:7', ':0:0:0:42']) {
      statuses.push((await signInFrom(server, app, `${network}${host}`, uniqueEmail('v6'), 'not the password')).status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await signInFrom(server, app, `${randomNetwork()}::1`, uniqueEmail('v6'), 'not the password')).status).toBe(401);

    const v4 = randomV4();
    const mixed = [];
    for (const spelling of [v4, `::ffff:${v4}`, `[::ffff:${v4}]:4711`, v4]) {
      mixed.push((await signInFrom(server, app, spelling, uniqueEmail('mapped'), 'not the password')).status);
    }
    expect(mixed).toEqual([401, 401, 401, 429]);
  });

  it('checks at most free_attempts passwords of a parallel burst over HTTP, however many clients send it', async () => {
    const { email } = await registerAndAuthorize(server, app);
    const pages = await Promise.all(Array.from({ length: 24 }, () => signInFrom(server, app, `${randomNetwork()}::1`, email, 'not the password')));
    const counts = pages.reduce<Record<number, number>>((n, page) => ({ ...n, [page.status]: (n[page.status] ?? 0) + 1 }), {});
    expect(counts).toEqual({ 401: 5, 429: 19 });
    expect((await signInFrom(server, app, `${randomNetwork()}::1`, email, PASSWORD)).status).toBe(429);
  });

  it('opens /metrics to the allowed addresses only, not to a forged loopback entry', async () => {
    const forged = await fetch(`${server.issuer}/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1, 203.0.113.7' } });
    expect(forged.status).toBe(403);
    expect((await fetch(`${server.issuer}/metrics`, { headers: { 'x-forwarded-for': '::1, 203.0.113.7' } })).status).toBe(403);
    // The proxy itself, on loopback, without a client behind it.
    expect((await fetch(`${server.issuer}/metrics`)).status).toBe(200);
  });

  it('mails at most the per-address limit of reset links, answering every request with the same page', async () => {
    const { email } = await registerAndAuthorize(server, app);
    const browser = new HttpBrowser({ 'accept-language': 'en', 'x-forwarded-for': randomV4() });
    const form = await browser.navigate(`${server.issuer}/forgot-password`);
    const pages = [];
    for (let i = 0; i < 20; i++) pages.push(await browser.submit(form, '/forgot-password', { email }));
    const withoutTokens = (html: string) => html.replaceAll(/value="[^"]*"/g, '');
    expect(new Set(pages.map((p) => `${p.status} ${withoutTokens(p.html)}`)).size).toBe(1);
    expect(pages[0]!.status).toBe(200);
    const { per_email } = server.config.throttle.password_reset;
    // Every mail queued by those requests has gone out (linksSentTo waits for the outbox): none beyond the limit.
    expect((await server.linksSentTo(email)).filter((l) => l.includes('/reset-password'))).toHaveLength(per_email);
    expect((await readMailbox(server.mailboxDir)).filter((m) => m.to === email && /reset-password/.test(m.text))).toHaveLength(per_email);
  });
});

describe('behind trusted proxies (forwarded_for.trusted_proxies)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ proxy: true, forwarded_for: { trusted_proxies: ['127.0.0.0/8'] } });
  });
  afterAll(async () => { await server?.close(); });

  it('takes the nearest address that is not a trusted proxy', async () => {
    expect((await fetch(`${server.issuer}/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1, 203.0.113.7' } })).status).toBe(403);
    expect((await fetch(`${server.issuer}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.7, 127.0.0.2' } })).status).toBe(403);
    expect((await fetch(`${server.issuer}/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1' } })).status).toBe(200);
  });

  it('takes the scheme and the request id a trusted proxy forwards', async () => {
    const page = await fetch(`${server.issuer}/forgot-password`, { headers: FORWARDED });
    expect(page.headers.get('x-request-id')).toBe(FORWARDED['x-request-id']);
    expect(page.headers.getSetCookie().join('\n')).toMatch(/^__Host-parley\.csrf=[^;]+;.*secure/im);
  });
});

// What a proxy forwards besides the address: the scheme the client used, the host it asked for,
// the id the proxy gave the request.
const FORWARDED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'elsewhere.example', 'x-request-id': 'proxy-request-0123456789' };

describe('a peer that is not one of the trusted proxies', () => {
  const issuer = 'https://id.parley.test';
  let server: TestServer;
  let logs: Record<string, unknown>[];
  let node: string;
  beforeAll(async () => {
    // The test connects from 127.0.0.1, which is not among the trusted proxies.
    server = await startTestServer({ issuer, clients: TEST_CLIENTS('${issuer}'), proxy: true, forwarded_for: { trusted_proxies: ['10.0.0.0/8'] } });
    node = `http://127.0.0.1:${server.config.port}`;
    logs = captureLogs(server);
  });
  afterAll(async () => { await server?.close(); });

  it('is not believed when it says the request came over https, nor given its request id', async () => {
    const page = await fetch(`${node}/forgot-password`, { headers: FORWARDED, redirect: 'manual' });
    // Plain http to an https issuer: sent to the issuer, with no cookie (it would have to be Secure).
    expect(page.status).toBe(308);
    expect(page.headers.get('location')).toBe(`${issuer}/forgot-password`);
    expect(page.headers.getSetCookie()).toEqual([]);
    expect(page.headers.get('x-request-id')).not.toBe(FORWARDED['x-request-id']);
    // Health checks answer over plain http; their id is Parley's own.
    const health = await fetch(`${node}/healthz`, { headers: FORWARDED });
    expect(health.status).toBe(200);
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is named in the warning, as the proxy missing from trusted_proxies', async () => {
    const warning = logs.find((l) => Number(l.level) === 40 && String(l.msg).includes('plain http'));
    expect(warning?.msg).toMatch(/trusted_proxies/);
  });
});

describe('without a proxy (proxy: false)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      throttle: { ip: { free_attempts: 2, base_delay: '30s', max_delay: '1m' } },
      // It holds up 127.0.0.1 itself: on the database other test files share in the PostgreSQL
      // pass, their sign-ins would wait too. The embedded one is its own.
      database: { url: '', data_dir: 'memory://' },
    });
  });
  afterAll(async () => { await server?.close(); });

  it('ignores X-Forwarded-For: the connecting address is the client', async () => {
    const app = await appClient(server);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await signInFrom(server, app, randomV4(), uniqueEmail('direct'), 'not the password')).status);
    expect(statuses).toEqual([401, 401, 429]);
    expect((await fetch(`${server.issuer}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).status).toBe(200);
  });
});
