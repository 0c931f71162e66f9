import { describe, expect, it } from 'vitest';
import { HttpBrowser, type Page } from '../support/browser.ts';
import {
  authorizationRequest, exchange, oidc, register, serveForTests, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { TEST_CLIENTS } from '../support/server.ts';

// The `claims` request parameter (OIDC Core 5.5) asks for claims by name. It releases exactly what
// the scopes would: answers only under the app's purposes and the user's current consent.

// The welcome screen-set of the fixtures: favourite_drink (personalization) and birthday (offers,
// also the standard claim birthdate).
const CLAIMS = JSON.stringify({ userinfo: { preferences: null }, id_token: { birthdate: { essential: true } } });

// spa: first party, purposes personalization + offers; webApp: third party, personalization only;
// openidOnly: an app limited to the openid scope.
const t = serveForTests((issuer) => ({
  screensets: { dir: 'tests/fixtures/screensets-e2e' },
  clients: [...TEST_CLIENTS(issuer), {
    client_id: 'openid-only', client_secret: 'openid-only-secret-for-tests', scope: 'openid',
    redirect_uris: [`${issuer}/openid-only/callback`], purposes: [],
  }],
}), { spa: 'spa', webApp: 'web-app', openidOnly: 'openid-only' });

interface User { email: string; browser: HttpBrowser }

/** Registers through the SPA and answers the welcome screen, consenting to both purposes. */
async function newUser(): Promise<User> {
  const browser = new HttpBrowser();
  const email = uniqueEmail('claims');
  const request = await authorizationRequest(t.spa, { scope: 'openid' });
  const welcome = await register(browser, await browser.navigate(request.url), email, t.spa.redirectUri);
  const callback = await browser.submit(welcome, '/profile', {
    'answer.favourite_drink': 'tea', 'answer.birthday': '1990-04-01', consent: ['personalization', 'offers'],
  }, t.spa.redirectUri);
  expect(callback.url.startsWith(t.spa.redirectUri)).toBe(true);
  return { email, browser };
}

interface SignInOptions {
  /** The authorization request's parameters; by default `openid` and the claims of CLAIMS. */
  params?: Record<string, string>;
  /** Answers the consent screen, when one is expected. */
  onConsent?: (browser: HttpBrowser, page: Page) => Promise<Page>;
}

/** A sign-in in a fresh browser, the tokens exchanged and userinfo read as the app would. */
async function signInWithClaims(user: User, app: AppClient, options: SignInOptions = {}) {
  const browser = new HttpBrowser({ 'accept-language': 'en' });
  const request = await authorizationRequest(app, options.params ?? { scope: 'openid', claims: CLAIMS });
  let page = await signIn(browser, await browser.navigate(request.url), user.email, app.redirectUri);
  if (!page.url.startsWith(app.redirectUri)) {
    if (!options.onConsent) throw new Error(`expected no consent screen, got ${page.url}`);
    page = await options.onConsent(browser, page);
  }
  const tokens = await exchange(app, request, page.url);
  const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, tokens.claims()!.sub);
  return { idToken: tokens.claims()!, userinfo, browser };
}

/** The lines of a consent screen's list of what the app will receive. */
function consentItems(page: Page): string[] {
  // (An interpolated purpose title comes wrapped in Unicode isolates, for right-to-left pages.)
  return [...page.html.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]!.replace(/[\u2068\u2069]/g, ''));
}

/** Agrees on the consent screen, keeping what it listed. */
function agree(app: AppClient, listed: string[][]) {
  return (browser: HttpBrowser, page: Page) => {
    listed.push(consentItems(page));
    return browser.submit(page, '/consent', {}, app.redirectUri);
  };
}

describe('the claims request parameter', () => {
  it('is advertised in discovery', () => {
    expect(t.spa.config.serverMetadata().claims_parameter_supported).toBe(true);
  });

  it('releases answers asked for by name under the app\'s purposes and the user\'s consent', async () => {
    const user = await newUser();
    const { idToken, userinfo } = await signInWithClaims(user, t.spa);
    expect(idToken.birthdate).toBe('1990-04-01');
    expect(userinfo.preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });
    // Only what was asked: the email was neither in a scope nor in the claims parameter.
    expect(userinfo.email).toBeUndefined();
    expect(idToken.email).toBeUndefined();
  });

  it('releases nothing the app has no purpose for, though asked by name and agreed to on the consent screen', async () => {
    const user = await newUser();
    const listed: string[][] = [];
    const { idToken, userinfo } = await signInWithClaims(user, t.webApp, { onConsent: agree(t.webApp, listed) });
    // The screen says what the app asked for: the preferences it may receive, and the birth date.
    expect(listed).toEqual([['The preferences you shared for: Personalized recommendations', 'Your date of birth, if you shared it']]);
    // web-app is registered for personalization only; the birthday was given under offers.
    expect(idToken.birthdate).toBeUndefined();
    expect(userinfo.birthdate).toBeUndefined();
    expect(userinfo.preferences).toEqual({ favourite_drink: 'tea' });
  });

  it('stops releasing a claim asked for by name once its consent is withdrawn', async () => {
    const user = await newUser();
    const account = await user.browser.navigate(`${t.server.issuer}/account`);
    const withdrawn = await user.browser.submit(account, '/account/consents/offers', { action: 'withdraw' });
    expect(withdrawn.url).toContain('done=consent_withdrawn');
    const { idToken, userinfo } = await signInWithClaims(user, t.spa);
    expect(idToken.birthdate).toBeUndefined();
    expect(userinfo.preferences).toEqual({ favourite_drink: 'tea' });
  });

  it('asks once: a claim named beside the scope that carries it, or once that scope is granted, adds nothing to agree to', async () => {
    const user = await newUser();
    const listed: string[][] = [];
    await signInWithClaims(user, t.webApp, {
      params: { scope: 'openid profile', claims: JSON.stringify({ id_token: { birthdate: null } }) },
      onConsent: agree(t.webApp, listed),
    });
    expect(listed).toEqual([['Your name, language and, if you shared them, details such as your birthday']]);

    // Later, asking by name alone for another claim the profile scope granted then carries.
    const { idToken } = await signInWithClaims(user, t.webApp, { params: { scope: 'openid', claims: JSON.stringify({ id_token: { name: null } }) } });
    expect(idToken.name).toBe('Test User');
  });

  it('refuses a claim that no scope the app may ask for carries', async () => {
    const request = await authorizationRequest(t.openidOnly, { scope: 'openid', claims: JSON.stringify({ userinfo: { email: null } }) });
    const answer = await new HttpBrowser().navigate(request.url, {}, t.openidOnly.redirectUri);
    const params = new URL(answer.url).searchParams;
    expect(params.get('error')).toBe('invalid_request');
    expect(params.get('error_description')).toMatch(/email/);
  });
});
