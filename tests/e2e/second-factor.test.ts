import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { HttpBrowser, type Page } from '../support/browser.ts';
import {
  authorizationRequest, exchange, register, serveForTests, signIn, uniqueEmail, type AppClient, type AuthorizationRequest,
} from '../support/oidc-app.ts';
import { TEST_CLIENTS } from '../support/server.ts';

// The second factor in the sign-in, over HTTP with openid-client as the app: the mfa prompt right
// after login (before terms and consent), authenticator-app codes with a clock the test moves,
// recovery codes, enrolment when a client requires a second factor, step-up with acr_values and
// max_age, and what the ID token says (amr, acr). No sleeps: codes follow the server's clock.

const apps = serveForTests((issuer) => ({
  mfa: { policy: 'optional', throttle: { free_attempts: 3 } },
  clients: [
    ...TEST_CLIENTS(issuer),
    // A first-party app that requires a second factor, and one that never asks on its own.
    { client_id: 'bank', name: 'Bank', first_party: true, mfa: 'required', redirect_uris: [`${issuer}/bank/callback`] },
    { client_id: 'blog', name: 'Blog', first_party: true, mfa: 'off', redirect_uris: [`${issuer}/blog/callback`] },
  ],
}), { spa: 'spa', bank: 'bank', blog: 'blog' });

const STEP_S = 30;
/** The code the user's authenticator app shows now, by the server's clock. */
const appCode = (secret: string, stepsAhead = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: apps.server.clock.now().getTime() + stepsAhead * STEP_S * 1000 });
/** The page without the isolation marks the messages put around the values they insert. */
const text = (page: Page) => page.html.replace(/[\u2068\u2069]/g, '');

async function claimsOf(app: AppClient, request: AuthorizationRequest, callback: Page) {
  expect(callback.url.startsWith(app.redirectUri), callback.html.slice(0, 500)).toBe(true);
  return (await exchange(app, request, callback.url)).claims()!;
}

/**
 * A new account, signed up through the bank (which requires a second factor): the enrolment
 * pages, the QR code's secret, the first code, the ten recovery codes. Returns what a person keeps.
 */
async function enrolledUser() {
  const browser = new HttpBrowser();
  const email = uniqueEmail('mfa');
  const request = await authorizationRequest(apps.bank);
  const enrol = await register(browser, await browser.navigate(request.url), email, apps.bank.redirectUri);
  expect(text(enrol)).toContain('Bank asks for a second step when you sign in');
  const qr = await browser.submit(enrol, '/mfa/enrol', {});
  const image = /<img class="qr" src="data:image\/svg\+xml;base64,([^"]+)"/.exec(qr.html)![1]!.replaceAll('&#x3D;', '=');
  expect(Buffer.from(image, 'base64').toString()).toMatch(/^<svg viewBox="0 0 \d+ \d+"/);
  const secret = /<code dir="ltr">([A-Z2-7]+)<\/code>/.exec(qr.html)![1]!;
  // A wrong first code: nothing is set up, the field comes back with the reason.
  const wrong = await browser.submit(qr, '/mfa/enrol/confirm', { code: '000000' === appCode(secret) ? '111111' : '000000' });
  expect(wrong.status).toBe(401);
  const codesPage = await browser.submit(wrong, '/mfa/enrol/confirm', { code: appCode(secret) });
  const recoveryCodes = [...codesPage.html.matchAll(/<li><code>([0-9a-z]{5}-[0-9a-z]{5})<\/code><\/li>/g)].map((m) => m[1]!);
  expect(recoveryCodes).toHaveLength(10);
  const continueUrl = /<a class="button" href="([^"]+)"/.exec(codesPage.html)![1]!.replaceAll('&amp;', '&');
  const callback = await browser.navigate(new URL(continueUrl, codesPage.url).href, {}, apps.bank.redirectUri);
  const claims = await claimsOf(apps.bank, request, callback);
  expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  expect(claims.acr).toBe('urn:parley:acr:mfa');
  // The code just used cannot be used again: the next sign-in waits for the app's next code.
  apps.server.clock.advance(STEP_S);
  return { email, secret, recoveryCodes };
}

describe('the second factor in the sign-in', () => {
  it('lists the acr values in discovery', async () => {
    const discovery = await (await fetch(`${apps.server.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    expect(discovery.acr_values_supported).toEqual(['urn:parley:acr:1fa', 'urn:parley:acr:mfa', 'phr']);
  });

  it('tells the app a password sign-in is one factor', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const callback = await register(browser, await browser.navigate(request.url), uniqueEmail(), apps.spa.redirectUri);
    const claims = await claimsOf(apps.spa, request, callback);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.acr).toBe('urn:parley:acr:1fa');
  });

  it('under a required policy sets up an authenticator app first, confirmed by its first code, with ten recovery codes', async () => {
    await enrolledUser();
  });

  it('asks for a code at each sign-in once set up (optional policy); a code is taken once, the next step\'s is', async () => {
    const { email, secret } = await enrolledUser();
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const mfa = await signIn(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
    expect(text(mfa)).toContain('To continue to Brand SPA, enter a code from your authenticator app.');
    expect(mfa.url).toMatch(/\/interaction\/[^/]+$/);
    const refused = await browser.submit(mfa, '/mfa/totp', { code: '12345' });
    expect(refused.status).toBe(401);
    expect(refused.html).toContain('id="code-error"');
    const callback = await browser.submit(refused, '/mfa/totp', { code: appCode(secret) }, apps.spa.redirectUri);
    expect((await claimsOf(apps.spa, request, callback)).amr).toEqual(['pwd', 'otp', 'mfa']);

    // The same code in another sign-in (same 30 s step): refused as used; the next step's code works.
    const other = new HttpBrowser();
    const second = await authorizationRequest(apps.spa);
    const page = await signIn(other, await other.navigate(second.url), email, apps.spa.redirectUri);
    const replayed = await other.submit(page, '/mfa/totp', { code: appCode(secret) });
    expect(replayed.status).toBe(401);
    apps.server.clock.advance(STEP_S);
    const done = await other.submit(replayed, '/mfa/totp', { code: appCode(secret) }, apps.spa.redirectUri);
    expect((await claimsOf(apps.spa, second, done)).acr).toBe('urn:parley:acr:mfa');
    apps.server.clock.advance(STEP_S);
  });

  it('takes each recovery code once, in place of the app', async () => {
    const { email, recoveryCodes } = await enrolledUser();
    for (const [i, expected] of [[0, 'ok'], [0, 'refused'], [1, 'ok']] as const) {
      const browser = new HttpBrowser();
      const request = await authorizationRequest(apps.spa);
      const mfa = await signIn(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
      const answer = await browser.submit(mfa, '/mfa/recovery', { recovery_code: recoveryCodes[i]!.toUpperCase() }, apps.spa.redirectUri);
      if (expected === 'refused') {
        expect(answer.status).toBe(401);
        expect(answer.html).toMatch(/<details open>/);
        continue;
      }
      const claims = await claimsOf(apps.spa, request, answer);
      expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    }
  });

  it('throttles wrong codes per account, whichever browser sends them', async () => {
    const { email, secret } = await enrolledUser();
    const statuses: number[] = [];
    let last: { browser: HttpBrowser; page: Page; request: AuthorizationRequest } | undefined;
    for (let i = 0; i < 4; i++) {
      const browser = new HttpBrowser();
      const request = await authorizationRequest(apps.spa);
      const mfa = await signIn(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
      last = { browser, request, page: await browser.submit(mfa, '/mfa/totp', { code: appCode(secret, 5) }) };
      statuses.push(last.page.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(text(last!.page)).toMatch(/Too many attempts|try again/i);
    // Even the right code waits until the delay has passed; then it is taken.
    const early = await last!.browser.submit(last!.page, '/mfa/totp', { code: appCode(secret) });
    expect(early.status).toBe(429);
    apps.server.clock.advance(120);
    const done = await last!.browser.submit(early, '/mfa/totp', { code: appCode(secret) }, apps.spa.redirectUri);
    expect((await claimsOf(apps.spa, last!.request, done)).acr).toBe('urn:parley:acr:mfa');
    apps.server.clock.advance(STEP_S);
  });

  it('refuses a form without its CSRF token, and does not sign in', async () => {
    const { email, secret } = await enrolledUser();
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const mfa = await signIn(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
    const action = /action="([^"]*\/mfa\/totp)"/.exec(mfa.html)![1]!;
    const refused = await browser.request(new URL(action, mfa.url).href, { form: { code: appCode(secret) } });
    expect(refused.status).toBe(403);
    // The session owes its second factor: the preference center does not open on it.
    const account = await browser.request(`${apps.server.issuer}/account`);
    expect(account.status).toBe(303);
    expect(account.headers.get('location')).toBe('/account/login?return=%2Faccount');
  });

  it('steps up: an app asking acr_values gets only the second factor asked, and amr/acr in the ID token', async () => {
    const { email, secret } = await enrolledUser();
    const browser = new HttpBrowser();
    // The blog never asks for a second factor on its own.
    const first = await authorizationRequest(apps.blog);
    const callback = await signIn(browser, await browser.navigate(first.url), email, apps.blog.redirectUri);
    const one = await claimsOf(apps.blog, first, callback);
    expect([one.amr, one.acr]).toEqual([['pwd'], 'urn:parley:acr:1fa']);

    // Asked without a page (prompt=none), the second factor cannot be: interaction_required.
    const silent = await authorizationRequest(apps.blog, { acr_values: 'urn:parley:acr:mfa', prompt: 'none' });
    const refused = await browser.navigate(silent.url, {}, apps.blog.redirectUri);
    expect(new URL(refused.url).searchParams.get('error')).toBe('interaction_required');

    // Same browser, a sensitive step: no password again, the app's code only.
    const stepUp = await authorizationRequest(apps.blog, { acr_values: 'urn:parley:acr:mfa' });
    const mfa = await browser.navigate(stepUp.url, {}, apps.blog.redirectUri);
    expect(text(mfa)).toContain('enter a code from your authenticator app');
    const done = await browser.submit(mfa, '/mfa/totp', { code: appCode(secret) }, apps.blog.redirectUri);
    const two = await claimsOf(apps.blog, stepUp, done);
    expect([two.amr, two.acr]).toEqual([['pwd', 'otp', 'mfa'], 'urn:parley:acr:mfa']);
    expect(two.auth_time).toBe(one.auth_time);

    // Asked again right away: the session has it, straight back to the app.
    const again = await authorizationRequest(apps.blog, { acr_values: 'urn:parley:acr:mfa' });
    const back = await browser.navigate(again.url, {}, apps.blog.redirectUri);
    expect((await claimsOf(apps.blog, again, back)).acr).toBe('urn:parley:acr:mfa');

    // phr needs a passkey this account does not have: a voluntary acr_values falls back to the
    // policy, and the ID token says what was reached.
    const phr = await authorizationRequest(apps.blog, { acr_values: 'phr' });
    const reached = await browser.navigate(phr.url, {}, apps.blog.redirectUri);
    expect((await claimsOf(apps.blog, phr, reached)).acr).toBe('urn:parley:acr:mfa');
    apps.server.clock.advance(STEP_S);
  });

  it('with max_age, a second factor older than that is asked again, after the password', async () => {
    // Set up and signed in ten minutes ago (the provider reads session ages by the real time).
    apps.server.clock.advance(-600);
    const { email, secret } = await enrolledUser();
    const browser = new HttpBrowser();
    const first = await authorizationRequest(apps.blog, { acr_values: 'urn:parley:acr:mfa' });
    const mfa = await signIn(browser, await browser.navigate(first.url), email, apps.blog.redirectUri);
    await claimsOf(apps.blog, first, await browser.submit(mfa, '/mfa/totp', { code: appCode(secret) }, apps.blog.redirectUri));
    apps.server.clock.advance(600);

    const fresh = await authorizationRequest(apps.blog, { acr_values: 'urn:parley:acr:mfa', max_age: '60' });
    const login = await browser.navigate(fresh.url, {}, apps.blog.redirectUri);
    expect(login.html).toContain('autocomplete="current-password"');
    const again = await signIn(browser, login, email, apps.blog.redirectUri);
    expect(text(again)).toContain('enter a code from your authenticator app');
    const done = await browser.submit(again, '/mfa/totp', { code: appCode(secret) }, apps.blog.redirectUri);
    const claims = await claimsOf(apps.blog, fresh, done);
    expect(claims.acr).toBe('urn:parley:acr:mfa');
    expect(Math.floor(Date.now() / 1000) - Number(claims.auth_time)).toBeLessThan(60);
    apps.server.clock.advance(STEP_S);
  });

  it('refuses a code of another account\'s app', async () => {
    const alice = await enrolledUser();
    const bob = await enrolledUser();
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const mfa = await signIn(browser, await browser.navigate(request.url), alice.email, apps.spa.redirectUri);
    const refused = await browser.submit(mfa, '/mfa/totp', { code: appCode(bob.secret) });
    expect(refused.status).toBe(401);
    const recovery = await browser.submit(refused, '/mfa/recovery', { recovery_code: bob.recoveryCodes[0]! });
    expect(recovery.status).toBe(401);
  });
});
