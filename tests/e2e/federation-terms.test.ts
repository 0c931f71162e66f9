import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findForm, HttpBrowser } from '../support/browser.ts';
import { ownDatabase } from '../support/database.ts';
import { appClient, authorizationRequest, exchange, type AppClient } from '../support/oidc-app.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startOidcUpstream, type OidcUpstream } from '../support/upstreams.ts';

// Terms on the provider path: accepted when registering with a provider (then the after_registration
// questions, as after a password registration), and a new version accepted at the next sign-in with
// it, before the app gets its code, as on the password path.
// Two servers one after the other on one database and one address, the second with version 2.

const TOS = { id: 'tos', title: { en: 'Terms of service' }, url: 'https://example.com/terms' };
const suffix = crypto.randomUUID().slice(0, 8);
const person = { sub: `terms-${suffix}`, email: `terms-${suffix}@demo-id.test`, email_verified: true, name: 'Terry' };

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-federation-terms-'));
const database = { data_dir: dataDir, url: '' };
let drop: (() => Promise<void>) | undefined;
let server: TestServer | undefined;
let upstream: OidcUpstream;
let port: number;
let upstreamPort: number;

const overrides = (version: number, screensets = 'tests/fixtures/screensets-none') => ({
  terms: [{ ...TOS, version }],
  screensets: { dir: screensets, watch: false },
  database,
  identity_providers: [{ id: 'demo-id', type: 'oidc', name: 'Demo ID', issuer: `http://127.0.0.1:${upstreamPort}`, client_id: 'parley', client_secret: 'demo-secret', trust_email_verified: true }],
});

beforeAll(async () => {
  const own = await ownDatabase('parley_fed_terms');
  drop = own.drop;
  database.url = own.backend.url;
  port = await freePort();
  upstreamPort = await freePort();
  upstream = await startOidcUpstream({
    port: upstreamPort, users: [person],
    clients: [{ client_id: 'parley', client_secret: 'demo-secret', redirect_uris: [`http://127.0.0.1:${port}/federation/demo-id/callback`] }],
  });
});
afterAll(async () => {
  await server?.close();
  await upstream?.close();
  await drop?.();
  rmSync(dataDir, { recursive: true, force: true });
});

async function continueWithDemoId(spa: AppClient) {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(spa);
  const page = await browser.navigate(request.url);
  const href = /href="([^"]*\/upstream\/demo-id)"/.exec(page.html)![1]!;
  return { browser, request, page: await browser.navigate(new URL(href, page.url).href, {}, spa.redirectUri) };
}

describe('terms on the provider path', () => {
  it('are accepted at registration, and a new version at the next sign-in with the provider', async () => {
    // With the welcome questions of the e2e screen-sets, triggered after_registration.
    server = await startTestServer(overrides(1, 'tests/fixtures/screensets-e2e'), { port });
    let spa = await appClient(server, 'spa');
    const first = await continueWithDemoId(spa);
    expect(first.page.html).toMatch(/id="terms-tos" name="terms" value="tos" required>/);
    const questions = await first.browser.submit(first.page, '/upstream/register', { terms: ['tos'] }, spa.redirectUri);
    // The same first screen as after a password registration.
    expect(questions.html).toContain('What do you like to drink?');
    // "Not now": the form's own fields, posted to its skip action.
    const { action, hidden } = findForm(questions.html, '/profile');
    const registered = await first.browser.navigate(new URL(`${action}/skip`, questions.url).href, { form: hidden }, spa.redirectUri);
    const sub = (await exchange(spa, first.request, registered.url)).claims()!.sub;
    const ledger = () => server!.parley.storage.db.selectFrom('terms_acceptances').select(['document_version', 'source'])
      .where('subject', '=', sub).orderBy('id').execute();
    expect(await ledger()).toEqual([{ document_version: 1, source: 'registration' }]);

    // The operator publishes version 2 and restarts.
    await server.close();
    server = await startTestServer(overrides(2), { port });
    spa = await appClient(server, 'spa');
    const next = await continueWithDemoId(spa);
    expect(next.page.url).toContain('/interaction/');
    expect(next.page.html).toContain('/terms/decline');
    const callback = await next.browser.submit(next.page, '/terms', { terms: 'tos' }, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    expect((await exchange(spa, next.request, callback.url)).claims()!.sub).toBe(sub);
    expect(await ledger()).toEqual([{ document_version: 1, source: 'registration' }, { document_version: 2, source: 'sign_in' }]);
  });
});
