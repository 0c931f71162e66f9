import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.ts';
import { oidc, PASSWORD, uniqueEmail } from '../support/oidc-app.ts';
import { freePort, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';
import { startTlsProxy, type TlsProxy } from '../support/tls-proxy.ts';

// An app's own page (another site) POSTs to the authorization and logout endpoints, in Chromium.
// Over https the session cookie travels with those POSTs (SameSite=None; Secure), and nothing
// else does: Parley's form token cookie and the sign-in step cookies stay Lax, so a cross-site
// form cannot use them. Over plain http (development) the session cookie is Lax: the POST is
// accepted, but arrives without the session.

let chromium: Browser;
beforeAll(async () => { chromium = await launchChromium(); });
afterAll(async () => { await chromium?.close(); });

/** The other site: `localhost` is not the same site as `127.0.0.1`, whatever the ports. */
const otherSite = (issuer: string) => issuer.replace('127.0.0.1', 'localhost');

const escapeHtml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');

/** Serves, at `url` on the other site, an app page with a form that POSTs `fields` to `action`. */
async function appPageWithForm(context: BrowserContext, url: string, action: string, fields: Record<string, string>) {
  const inputs = Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`).join('');
  await context.route(url, (route) => route.fulfill({
    status: 200, contentType: 'text/html',
    body: `<!doctype html><title>App</title><form method="post" action="${escapeHtml(action)}">${inputs}<button>Continue</button></form>`,
  }));
}

/** Fields of an authorization request of the SPA (public, PKCE); only the arrival of a code matters here. */
async function spaAuthorization(issuer: string, extra: Record<string, string> = {}) {
  return {
    client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: `${issuer}/spa/callback`,
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    state: oidc.randomState(), ...extra,
  };
}

/** A new Chromium profile that registers through the SPA; the app's pages are answered by the test. */
async function signedInBrowser(issuer: string, options: { ignoreHTTPSErrors?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.newContext({ locale: 'en-US', ...options });
  context.setDefaultTimeout(10_000);
  await context.route(`${issuer}/spa**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
  const page = await context.newPage();
  await page.goto(`${issuer}/auth?${new URLSearchParams(await spaAuthorization(issuer))}`);
  await page.getByRole('link', { name: 'Create an account', exact: true }).click();
  await page.getByLabel('Email address').fill(uniqueEmail('cross-site'));
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/spa/callback`));
  return { context, page };
}

/** Submits the app page's form; returns where the browser ends up. */
async function submitFromApp(page: Page, appUrl: string, until: (url: URL) => boolean): Promise<URL> {
  await page.goto(appUrl);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(until);
  return new URL(page.url());
}

describe('over https, behind a TLS-terminating proxy', () => {
  let server: TestServer;
  let proxy: TlsProxy;
  let issuer: string;

  beforeAll(async () => {
    const port = await freePort();
    issuer = `https://127.0.0.1:${port}`;
    server = await startTestServer({ proxy: true, issuer, clients: TEST_CLIENTS(issuer) });
    proxy = await startTlsProxy(port, server.issuer);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  it('signs in silently from an app\'s POSTed authorization request: the session cookie went along', async () => {
    const { context, page } = await signedInBrowser(issuer, { ignoreHTTPSErrors: true });
    const fields = await spaAuthorization(issuer, { prompt: 'none' });
    await appPageWithForm(context, `${otherSite(issuer)}/app`, `${issuer}/auth`, fields);
    const callback = await submitFromApp(page, `${otherSite(issuer)}/app`, (url) => url.pathname === '/spa/callback' && url.searchParams.has('state'));
    expect(callback.searchParams.get('error')).toBeNull();
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('state')).toBe(fields.state);
    await context.close();
  });

  it('signs out from an app\'s POSTed logout request after the user confirms', async () => {
    const { context, page } = await signedInBrowser(issuer, { ignoreHTTPSErrors: true });
    const postLogout = `${issuer}/spa`;
    await appPageWithForm(context, `${otherSite(issuer)}/app`, `${issuer}/session/end`, { client_id: 'spa', post_logout_redirect_uri: postLogout, state: 'bye' });
    await page.goto(`${otherSite(issuer)}/app`);
    await page.getByRole('button', { name: 'Continue' }).click();
    // The session came along, so Parley asks before it signs the user out.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL((url) => url.href.startsWith(postLogout) && url.searchParams.get('state') === 'bye');

    const silent = await spaAuthorization(issuer, { prompt: 'none' });
    await page.goto(`${issuer}/auth?${new URLSearchParams(silent)}`);
    await page.waitForURL((url) => url.pathname === '/spa/callback');
    expect(new URL(page.url()).searchParams.get('error')).toBe('login_required');
    await context.close();
  });

  it('still refuses cross-site form posts to Parley\'s pages, even with the user\'s own form token', async () => {
    const { context, page } = await signedInBrowser(issuer, { ignoreHTTPSErrors: true });
    await page.goto(`${issuer}/account`);
    await page.waitForURL(`${issuer}/account`);
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    expect(csrf).toBeTruthy();

    await appPageWithForm(context, `${otherSite(issuer)}/app`, `${issuer}/account/consents/personalization`, { csrf: csrf!, action: 'grant' });
    await page.goto(`${otherSite(issuer)}/app`);
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${issuer}/account/consents/personalization`),
      page.getByRole('button', { name: 'Continue' }).click(),
    ]);
    expect(refused.status()).toBe(403);

    // The same form from Parley's own site goes through: only the site it came from differed.
    const sameSite = await context.request.post(`${issuer}/account/consents/personalization`, {
      form: { csrf: csrf!, action: 'grant' }, maxRedirects: 0,
    });
    expect(sameSite.status()).toBe(303);
    expect(sameSite.headers().location).toContain('done=consent_granted');

    // Nor can a cross-site form confirm a logout without the provider's xsrf token.
    await appPageWithForm(context, `${otherSite(issuer)}/app`, `${issuer}/session/end/confirm`, { logout: 'yes' });
    await page.goto(`${otherSite(issuer)}/app`);
    const [confirm] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${issuer}/session/end/confirm`),
      page.getByRole('button', { name: 'Continue' }).click(),
    ]);
    expect(confirm.status()).toBe(400);
    await page.goto(`${issuer}/auth?${new URLSearchParams(await spaAuthorization(issuer, { prompt: 'none' }))}`);
    await page.waitForURL((url) => url.pathname === '/spa/callback');
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    await context.close();
  });
});

describe('over plain http, in development', () => {
  let server: TestServer;
  beforeAll(async () => { server = await startTestServer(); });
  afterAll(async () => { await server?.close(); });

  it('accepts an app\'s POSTed authorization request, which arrives without the session', async () => {
    const { context, page } = await signedInBrowser(server.issuer);
    const fields = await spaAuthorization(server.issuer, { prompt: 'none' });
    await appPageWithForm(context, `${otherSite(server.issuer)}/app`, `${server.issuer}/auth`, fields);
    const callback = await submitFromApp(page, `${otherSite(server.issuer)}/app`, (url) => url.pathname === '/spa/callback' && url.searchParams.has('state'));
    expect(callback.searchParams.get('error')).toBe('login_required');
    expect(callback.searchParams.get('state')).toBe(fields.state);

    // A cross-site link (GET) still carries the Lax session cookie.
    const link = await spaAuthorization(server.issuer, { prompt: 'none' });
    await context.route(`${otherSite(server.issuer)}/link`, (route) => route.fulfill({
      status: 200, contentType: 'text/html',
      body: `<!doctype html><a href="${escapeHtml(`${server.issuer}/auth?${new URLSearchParams(link)}`)}">Continue</a>`,
    }));
    await page.goto(`${otherSite(server.issuer)}/link`);
    await page.getByRole('link', { name: 'Continue' }).click();
    await page.waitForURL((url) => url.pathname === '/spa/callback' && url.searchParams.get('state') === link.state);
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    await context.close();
  });

  it('accepts an app\'s POSTed logout request, which arrives without the session and asks nothing', async () => {
    const { context, page } = await signedInBrowser(server.issuer);
    const postLogout = `${server.issuer}/spa`;
    await appPageWithForm(context, `${otherSite(server.issuer)}/app`, `${server.issuer}/session/end`, { client_id: 'spa', post_logout_redirect_uri: postLogout, state: 'bye' });
    // Straight back to the app: without the session there is no one to ask "do you want to sign out?".
    const back = await submitFromApp(page, `${otherSite(server.issuer)}/app`, (url) => url.href.startsWith(postLogout) && url.searchParams.get('state') === 'bye');
    expect(back.searchParams.get('state')).toBe('bye');
    // The new, empty session's cookie took the place of the signed-in one in this browser.
    const silent = await spaAuthorization(server.issuer, { prompt: 'none' });
    await page.goto(`${server.issuer}/auth?${new URLSearchParams(silent)}`);
    await page.waitForURL((url) => url.pathname === '/spa/callback' && url.searchParams.get('state') === silent.state);
    expect(new URL(page.url()).searchParams.get('error')).toBe('login_required');
    await context.close();
  });
});
