import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest, exchange, oidc, register, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { captureLogs, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// The access log and the metrics name routes, never paths: paths carry account ids, interaction
// uids and whatever a client makes up.

const SECRET = 'api-client-secret-for-tests-0123';

let server: TestServer;
let app: AppClient;
let lines: Record<string, unknown>[];

beforeAll(async () => {
  server = await startTestServer({
    clients: [
      ...TEST_CLIENTS('${issuer}'),
      { client_id: 'reader', client_secret: SECRET, grant_types: ['client_credentials'], purposes: ['personalization'], scope: 'accounts:read' },
    ],
  });
  app = await appClient(server);
  lines = captureLogs(server);
});
afterAll(async () => { await server?.close(); });

describe('access log', () => {
  it('logs route templates for Parley\'s pages, the provider\'s endpoints and the API, with no id in any line', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(app);
    const login = await browser.navigate(request.url);
    const uid = /\/interaction\/([^/?#]+)/.exec(login.url)![1]!;
    let page = await register(browser, login, uniqueEmail('logged'), app.redirectUri);
    if (!page.url.startsWith(app.redirectUri)) page = await browser.submit(page, '/consent', {}, app.redirectUri);
    const code = new URL(page.url).searchParams.get('code')!;
    const sub = (await exchange(app, request, page.url)).claims()!.sub;

    const reader = await oidc.discovery(new URL(server.issuer), 'reader', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    const { access_token: token } = await oidc.clientCredentialsGrant(reader, { scope: 'accounts:read' });
    expect((await fetch(`${server.issuer}/api/v1/accounts/${sub}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${server.issuer}/no/such/${sub}`)).status).toBe(404);

    const requests = lines.filter((line) => line.msg === 'request');
    const routes = new Set(requests.map((line) => `${line.method as string} ${line.route as string}`));
    for (const expected of [
      'GET /auth', 'GET /auth/:uid', 'GET /interaction/:uid', 'GET /interaction/:uid/register', 'POST /interaction/:uid/register',
      'POST /token', 'GET /api/v1/accounts/:id', 'GET unmatched',
    ]) expect(routes, expected).toContain(expected);
    for (const line of requests) {
      expect(line).not.toHaveProperty('path');
      expect(line.ip).toBe('127.0.0.1');
    }
    for (const secret of [sub, uid, code, request.state]) expect(JSON.stringify(requests)).not.toContain(secret);
    // Other lines name an account on purpose ("account created"), never a sign-in or its codes.
    for (const secret of [uid, code, request.state]) expect(JSON.stringify(lines)).not.toContain(secret);

    const metrics = await (await fetch(`${server.issuer}/metrics`)).text();
    for (const secret of [sub, uid]) expect(metrics).not.toContain(secret);
    expect(metrics).toContain('route="/api/v1/accounts/:id"');
    expect(metrics).toContain('route="/auth/:uid"');
  });
});
