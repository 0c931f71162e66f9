import { describe, expect, it } from 'vitest';
import { HttpBrowser, type Page } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, oidc, register, serveForTests, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { startTestServer } from '../support/server.ts';

// The `claims` request parameter (OIDC Core 5.5) asks for claims by name. It releases exactly what
// the scopes would: answers only under the app's purposes and the user's current consent.

// The welcome screen-set of the fixtures: favourite_drink (personalization) and birthday (offers,
// also the standard claim birthdate).
const CLAIMS = JSON.stringify({ userinfo: { preferences: null }, id_token: { birthdate: { essential: true } } });

// spa: first party, purposes personalization + offers; webApp: third party, personalization only.
const t = serveForTests({ screensets: { dir: 'tests/fixtures/screensets-e2e' } }, { spa: 'spa', webApp: 'web-app' });

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

/** A sign-in in a fresh browser asking only for `openid` and the claims parameter; `onPage` handles a consent screen. */
async function signInWithClaims(user: User, app: AppClient, onPage?: (browser: HttpBrowser, page: Page) => Promise<Page>) {
  const browser = new HttpBrowser({ 'accept-language': 'en' });
  const request = await authorizationRequest(app, { scope: 'openid', claims: CLAIMS });
  let page = await signIn(browser, await browser.navigate(request.url), user.email, app.redirectUri);
  if (!page.url.startsWith(app.redirectUri)) page = await onPage!(browser, page);
  const tokens = await exchange(app, request, page.url);
  const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, tokens.claims()!.sub);
  return { idToken: tokens.claims()!, userinfo, browser };
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
    let consentPage: Page | undefined;
    const { idToken, userinfo } = await signInWithClaims(user, t.webApp, async (browser, page) => {
      consentPage = page;
      return browser.submit(page, '/consent', {}, t.webApp.redirectUri);
    });
    // The screen says what the app asked for: the preferences it may receive, and the birth date.
    // (The interpolated purpose title comes wrapped in Unicode isolates, for right-to-left pages.)
    const items = [...consentPage!.html.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]!.replace(/[\u2068\u2069]/g, ''));
    expect(items).toEqual(['The preferences you shared for: Personalized recommendations', 'Your date of birth, if you shared it']);
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

  it('refuses a claim that no scope the app may ask for carries', async () => {
    const restricted = await startTestServer({
      demo: { enabled: false },
      clients: [{
        client_id: 'openid-only', client_secret: 'openid-only-secret-for-tests', scope: 'openid',
        redirect_uris: ['http://127.0.0.1:9/callback'], purposes: [],
      }],
    });
    try {
      const app = await appClient(restricted, 'openid-only');
      const request = await authorizationRequest(app, { scope: 'openid', claims: JSON.stringify({ userinfo: { email: null } }) });
      const answer = await new HttpBrowser().navigate(request.url, {}, app.redirectUri);
      const params = new URL(answer.url).searchParams;
      expect(params.get('error')).toBe('invalid_request');
      expect(params.get('error_description')).toMatch(/email/);
    } finally {
      await restricted.close();
    }
  });
});
