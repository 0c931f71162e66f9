import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser, type Page } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, oidc, register, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Which language the pages speak, over HTTP: Accept-Language with q-values and fallbacks, the
// app's ui_locales, the account's saved locale, and the switcher that remembers a person's choice
// in the browser session and on the account (the locale claim).

let server: TestServer;
let spa: AppClient;

beforeAll(async () => {
  server = await startTestServer();
  spa = await appClient(server, 'spa');
});
afterAll(async () => { await server?.close(); });

const langDir = (page: Page) => /<html lang="([^"]+)" dir="([^"]+)">/.exec(page.html)?.slice(1, 3);
const locale = async (email: string) => (await server.parley.storage.db.selectFrom('accounts').select('locale').where('email', '=', email).executeTakeFirstOrThrow()).locale;

/** Registers through the SPA in a browser of its own; the account's locale is the page's. */
async function registered(params: Record<string, string>, headers: Record<string, string> = {}) {
  const email = uniqueEmail('locale');
  const browser = new HttpBrowser(headers);
  const request = await authorizationRequest(spa, params);
  const callback = await register(browser, await browser.navigate(request.url), email, spa.redirectUri);
  return { email, browser, tokens: await exchange(spa, request, callback.url) };
}

describe('the language of the pages', () => {
  it('follows Accept-Language by q-value and falls back from he-IL to he, passing over pt-BR', async () => {
    const browser = new HttpBrowser({ 'accept-language': 'pt-BR, he-IL;q=0.8, en;q=0.5' });
    const login = await browser.navigate((await authorizationRequest(spa)).url);
    expect(langDir(login)).toEqual(['he', 'rtl']);
    expect(login.html).toContain('>כניסה</button>');
    const thai = new HttpBrowser({ 'accept-language': 'fr-CA, th-TH;q=0.9' });
    expect(langDir(await thai.navigate((await authorizationRequest(spa)).url))).toEqual(['th', 'ltr']);
    const nothing = new HttpBrowser({ 'accept-language': 'pt-BR, pt;q=0.9' });
    expect(langDir(await nothing.navigate((await authorizationRequest(spa)).url))).toEqual(['en', 'ltr']);
  });

  it('switches with the form under the page, back to the same page, and the choice outranks the app\'s ui_locales', async () => {
    const browser = new HttpBrowser({ 'accept-language': 'he' });
    const login = await browser.navigate((await authorizationRequest(spa, { ui_locales: 'ja' })).url);
    expect(langDir(login)).toEqual(['ja', 'ltr']);
    const thai = await browser.submit(login, '/locale', { locale: 'th' });
    expect(thai.url).toBe(login.url);
    expect(langDir(thai)).toEqual(['th', 'ltr']);
    expect(thai.html).toContain('<span class="locale-switch__current" lang="th" dir="ltr" aria-current="true">ไทย</span>');
    // The next sign-in of this browser session, whatever the app hints.
    const next = await browser.navigate((await authorizationRequest(spa, { ui_locales: 'ar' })).url);
    expect(langDir(next)).toEqual(['th', 'ltr']);
    // A session cookie: it lasts as long as the browser session, no longer.
    const cookie = [...browser.cookies.keys()].find((name) => name.endsWith('parley.locale'));
    expect(browser.cookies.get(cookie!)).toBe('th');
  });

  it('comes back to the page a form belongs to after a post: a refused sign-in, a refused registration', async () => {
    const browser = new HttpBrowser({ 'accept-language': 'en' });
    const login = await browser.navigate((await authorizationRequest(spa)).url);
    const refused = await browser.submit(login, '/login', { email: uniqueEmail('nobody'), password: 'not the password' });
    expect(refused.status).toBe(401);
    const hebrew = await browser.submit(refused, '/locale', { locale: 'he' });
    expect(hebrew.url).toBe(login.url);
    expect(langDir(hebrew)).toEqual(['he', 'rtl']);

    const form = await browser.navigate(`${login.url}/register`);
    const invalid = await browser.submit(form, '/register', { email: 'not-an-address', password: 'short' });
    const thai = await browser.submit(invalid, '/locale', { locale: 'th' });
    expect(thai.url).toBe(`${login.url}/register`);
    expect(langDir(thai)).toEqual(['th', 'ltr']);
  });

  it('keeps a language chosen on the sign-in page on the account, as its locale claim', async () => {
    const { email, tokens } = await registered({ ui_locales: 'ja' });
    const claim = async (t: typeof tokens) => (await oidc.fetchUserInfo(spa.config, t.access_token, t.claims()!.sub)).locale;
    expect(await claim(tokens)).toBe('ja');
    expect(await locale(email)).toBe('ja');

    const browser = new HttpBrowser({ 'accept-language': 'en' });
    const request = await authorizationRequest(spa);
    const login = await browser.navigate(request.url);
    const hebrew = await browser.submit(login, '/locale', { locale: 'he' });
    expect(langDir(hebrew)).toEqual(['he', 'rtl']);
    const callback = await signIn(browser, hebrew, email, spa.redirectUri);
    expect(await claim(await exchange(spa, request, callback.url))).toBe('he');
    expect(await locale(email)).toBe('he');
  });

  it('speaks the account\'s language once it knows who is signed in, and saves a change made while signed in', async () => {
    const { email, browser, tokens } = await registered({ ui_locales: 'ar' }, { 'accept-language': 'ja' });
    expect(await locale(email)).toBe('ar');
    // Signed in, no choice made in this browser: the account's Arabic beats the browser's Japanese.
    const account = await browser.navigate(`${server.issuer}/account`);
    expect(account.url).toBe(`${server.issuer}/account`);
    expect(langDir(account)).toEqual(['ar', 'rtl']);

    const thai = await browser.submit(account, '/locale', { locale: 'th' });
    expect(thai.url).toBe(`${server.issuer}/account`);
    expect(langDir(thai)).toEqual(['th', 'ltr']);
    expect(await locale(email)).toBe('th');
    const claims = await oidc.fetchUserInfo(spa.config, tokens.access_token, tokens.claims()!.sub);
    expect(claims.locale).toBe('th');

    // Another browser, signed in afresh without choosing: the account's language, not the browser's.
    const elsewhere = new HttpBrowser({ 'accept-language': 'en' });
    const request = await authorizationRequest(spa);
    await signIn(elsewhere, await elsewhere.navigate(request.url), email, spa.redirectUri);
    expect(langDir(await elsewhere.navigate(`${server.issuer}/account`))).toEqual(['th', 'ltr']);
  });

  it('needs the CSRF token, never leaves the site, and ignores a language it does not offer', async () => {
    const browser = new HttpBrowser({ 'accept-language': 'en' });
    const login = await browser.navigate((await authorizationRequest(spa)).url);
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.html)![1]!;
    const cookieSet = () => [...browser.cookies.keys()].some((name) => name.endsWith('parley.locale'));

    const forged = await browser.request(`${server.issuer}/locale`, { form: { locale: 'th', return: '/account' } });
    expect(forged.status).toBe(403);
    expect(cookieSet()).toBe(false);

    const unknown = await browser.request(`${server.issuer}/locale`, { form: { csrf, locale: 'xx', return: '/interaction/abc' } });
    expect(unknown.status).toBe(303);
    expect(unknown.headers.get('location')).toBe('/interaction/abc');
    expect(cookieSet()).toBe(false);

    for (const away of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const response = await browser.request(`${server.issuer}/locale`, { form: { csrf, locale: 'he', return: away } });
      expect(response.status).toBe(303);
      expect(response.headers.get('location'), away).toBe('/account');
    }
  });
});
