import { createHash } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { launchChromium } from '../support/chromium.ts';
import {
  authorizationRequest, oidc, PASSWORD, register, registerAndAuthorize, serveForTests, uniqueEmail, type AppClient, type AuthorizationRequest,
} from '../support/oidc-app.ts';
import { TEST_CLIENTS } from '../support/server.ts';

// The pages oidc-provider submits by script — response_mode=form_post, the sign-out that precedes
// signing in as someone else, and a logout without a session — run their one inline script under
// a CSP that names its hash; every other page keeps a policy without scripts.

// elsewhere: a single-page app served from another origin than Parley's (localhost, not
// 127.0.0.1), so the form_post page posts across origins, as it does in production.
const t = serveForTests((issuer) => ({
  clients: [...TEST_CLIENTS(issuer), {
    client_id: 'elsewhere', name: 'Elsewhere', first_party: true,
    redirect_uris: [`${issuer.replace('127.0.0.1', 'localhost')}/callback`], purposes: [],
  }],
}), { spa: 'spa', elsewhere: 'elsewhere' });
let chromium: Browser;
beforeAll(async () => { chromium = await launchChromium(); });
afterAll(async () => { await chromium?.close(); });

/** The `script-src` sources of a CSP, or undefined when it has none. */
function scriptSources(csp: string | null | undefined): string[] | undefined {
  const directive = (csp ?? '').split(';').map((d) => d.trim().split(/\s+/)).find(([name]) => name === 'script-src');
  return directive?.slice(1);
}

const sha256Source = (script: string) => `'sha256-${createHash('sha256').update(script).digest('base64')}'`;

interface AppReceiver { context: BrowserContext; page: Page; posts: URLSearchParams[]; policies: [path: string, csp: string][] }

/**
 * A browser whose app answers its redirect URI itself (nothing listens there), keeping what was
 * POSTed to it, and the CSP of every response Parley sent, with its path, in order.
 */
async function appBrowser(app: AppClient): Promise<AppReceiver> {
  const context = await chromium.newContext({ locale: 'en-US' });
  context.setDefaultTimeout(10_000);
  const posts: URLSearchParams[] = [];
  const policies: [string, string][] = [];
  await context.route(`${app.redirectUri}**`, async (route) => {
    if (route.request().method() === 'POST') posts.push(new URLSearchParams(route.request().postData() ?? ''));
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' });
  });
  const page = await context.newPage();
  page.on('response', async (response) => {
    const csp = (await response.allHeaders())['content-security-policy'];
    if (csp && response.url().startsWith(t.server.issuer)) policies.push([new URL(response.url()).pathname, csp]);
  });
  return { context, page, posts, policies };
}

async function registerInPage(page: Page, request: AuthorizationRequest, email: string) {
  await page.goto(request.url);
  await page.getByRole('link', { name: 'Create an account', exact: true }).click();
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
}

/** The code exchange an app does with what the browser POSTed to its redirect URI. */
function exchangePosted(app: AppClient, request: AuthorizationRequest, body: URLSearchParams) {
  const callback = new Request(app.redirectUri, {
    method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  return oidc.authorizationCodeGrant(app.config, callback, {
    pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true,
  });
}

describe('response_mode=form_post', () => {
  it('POSTs the code and state to the app on its own origin in Chromium, which the app redeems', async () => {
    const { context, page, posts, policies } = await appBrowser(t.elsewhere);
    const request = await authorizationRequest(t.elsewhere, { response_mode: 'form_post' });
    await registerInPage(page, request, uniqueEmail('form-post'));
    await page.waitForURL((url) => url.href.startsWith(t.elsewhere.redirectUri));
    expect(posts).toHaveLength(1);
    expect(posts[0]!.get('state')).toBe(request.state);
    expect(posts[0]!.get('code')).toBeTruthy();
    const tokens = await exchangePosted(t.elsewhere, request, posts[0]!);
    expect(tokens.claims()!.aud).toBe('elsewhere');

    // The page that posted had a hash in its CSP; the sign-in page before it runs only our own
    // script files (the passkey form), no inline script.
    const resume = policies.find(([path]) => path.startsWith('/auth/'));
    expect(scriptSources(resume?.[1])).toEqual([expect.stringMatching(/^'sha256-[A-Za-z0-9+/]+=*'$/)]);
    const login = policies.find(([path]) => /^\/interaction\/[^/]+$/.test(path));
    expect(login?.[1]).toContain("default-src 'none'");
    expect(scriptSources(login?.[1])).toEqual(["'self'"]);
    await context.close();
  });

  it('names exactly the hash of its one inline script in the CSP, and no other page allows inline scripts', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(t.spa, { response_mode: 'form_post' });
    const login = await browser.navigate(request.url);
    // The sign-in page runs our own script files (the passkey form), nothing inline.
    expect(scriptSources(login.headers.get('content-security-policy'))).toEqual(["'self'"]);
    const page = await register(browser, login, uniqueEmail('form-post-http'), t.spa.redirectUri);

    expect(page.status).toBe(200);
    expect(page.html).toContain(`action="${t.spa.redirectUri}"`);
    const scripts = [...page.html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(1);
    const csp = page.headers.get('content-security-policy')!;
    expect(scriptSources(csp)).toEqual([sha256Source(scripts[0]!)]);
    // The rest of the policy is the strict one every page has.
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');

    const discovery = await fetch(`${t.server.issuer}/.well-known/openid-configuration`);
    expect(scriptSources(discovery.headers.get('content-security-policy'))).toBeUndefined();
  });
});

describe('signing in as someone else', () => {
  it('signs the first account out and completes the sign-in as the second, in Chromium', async () => {
    const second = await registerAndAuthorize(t.server, t.spa);
    const { context, page, policies } = await appBrowser(t.spa);

    const first = await authorizationRequest(t.spa);
    await registerInPage(page, first, uniqueEmail('first'));
    await page.waitForURL((url) => url.href.startsWith(t.spa.redirectUri));

    // Signed in as the first account, the app asks for a fresh sign-in, and the second account signs in.
    const request = await authorizationRequest(t.spa, { prompt: 'login' });
    await page.goto(request.url);
    await page.getByLabel('Email address').fill(second.email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((url) => url.href.startsWith(t.spa.redirectUri));
    // On the way, the provider's self-submitting sign-out page ran under its own script's hash.
    const selfSubmitting = policies.filter(([path, csp]) => path.startsWith('/auth/') && scriptSources(csp));
    expect(selfSubmitting).toHaveLength(1);

    const tokens = await oidc.authorizationCodeGrant(t.spa.config, new URL(page.url()), {
      pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true,
    });
    expect(tokens.claims()!.sub).toBe(second.tokens.claims()!.sub);
    await context.close();
  });
});

describe('a logout request without a session', () => {
  it('goes straight back to the app in Chromium', async () => {
    const { context, page } = await appBrowser(t.spa);
    const postLogout = t.server.config.clients.find((c) => c.client_id === 'spa')!.post_logout_redirect_uris[0]!;
    await context.route(`${postLogout}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed out' }));
    const logout = oidc.buildEndSessionUrl(t.spa.config, { client_id: 'spa', post_logout_redirect_uri: postLogout, state: 'gone' });
    await page.goto(logout.href);
    await page.waitForURL((url) => url.href.startsWith(postLogout));
    expect(new URL(page.url()).searchParams.get('state')).toBe('gone');
    await context.close();
  });
});
