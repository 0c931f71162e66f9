import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, oauthErrorOf, oidc, PASSWORD, register, registerAndAuthorize, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// The whole protocol over HTTP: a real server, openid-client as the app, a cookie-jar browser.

let server: TestServer;
let app: AppClient;

beforeAll(async () => {
  server = await startTestServer();
  app = await appClient(server);
});
afterAll(async () => { await server?.close(); });

describe('sign-in journey', () => {
  it('register → verify email → sign in → code → tokens → userinfo → refresh with rotation → sign out', async () => {
    const browser = new HttpBrowser();
    const email = uniqueEmail('journey');
    const first = await authorizationRequest(app, { scope: 'openid email profile offline_access', prompt: 'consent' });

    const loginPage = await browser.navigate(first.url);
    expect(loginPage.status).toBe(200);
    expect(loginPage.headers.get('cache-control')).toBe('no-store');
    expect(loginPage.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");

    // Registration signs the user in at once; the third-party app then asks for consent.
    const consent = await register(browser, loginPage, email, app.redirectUri);
    expect(consent.html).toContain('Web App');
    const callback = await browser.submit(consent, '/consent', {}, app.redirectUri);
    const tokens = await exchange(app, first, callback.url);
    const claims = tokens.claims()!;
    expect(claims.nonce).toBe(first.nonce);
    expect(tokens.refresh_token).toBeTruthy();

    let userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ sub: claims.sub, email, email_verified: false, name: 'Test User' });

    // The link in the development mailbox verifies the address.
    const [verifyLink] = (await server.linksSentTo(email)).filter((l) => l.includes('/verify-email'));
    expect(verifyLink).toBeDefined();
    expect((await browser.navigate(verifyLink!)).status).toBe(200);
    userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub);
    expect(userinfo.email_verified).toBe(true);

    // A new sign-in in a fresh browser with the password.
    const fresh = new HttpBrowser();
    const second = await authorizationRequest(app);
    const page = await signIn(fresh, await fresh.navigate(second.url), email, app.redirectUri);
    expect(page.url.startsWith(app.redirectUri)).toBe(true);
    expect((await exchange(app, second, page.url)).claims()!.sub).toBe(claims.sub);

    // Refresh rotates; presenting the old refresh token again revokes the whole grant.
    const refreshed = await oidc.refreshTokenGrant(app.config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(await oauthErrorOf(oidc.refreshTokenGrant(app.config, tokens.refresh_token!))).toBe('invalid_grant');
    expect(await oauthErrorOf(oidc.refreshTokenGrant(app.config, refreshed.refresh_token!))).toBe('invalid_grant');
    expect(await oauthErrorOf(oidc.fetchUserInfo(app.config, refreshed.access_token, claims.sub))).toBe('invalid_token');

    // RP-initiated logout: a confirmation page, then back to the registered URI.
    const logoutUrl = oidc.buildEndSessionUrl(app.config, {
      id_token_hint: tokens.id_token!, post_logout_redirect_uri: server.config.clients[0]!.post_logout_redirect_uris[0]!, state: 'bye',
    });
    const confirm = await browser.navigate(logoutUrl.href);
    expect(confirm.status).toBe(200);
    const signedOut = await browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, `${server.issuer}/app/signed-out`);
    expect(new URL(signedOut.url).searchParams.get('state')).toBe('bye');

    // The session is gone: prompt=none now answers login_required.
    const silent = await authorizationRequest(app, { prompt: 'none' });
    const answer = await browser.navigate(silent.url, {}, app.redirectUri);
    expect(new URL(answer.url).searchParams.get('error')).toBe('login_required');
  });

  it('a public first-party client signs in with PKCE and sees no consent screen', async () => {
    const spa = await appClient(server, 'spa');
    const { tokens } = await registerAndAuthorize(server, spa);
    expect(tokens.claims()!.aud).toBe('spa');
  });

  it('refuses a public client that omits PKCE', async () => {
    const spa = await appClient(server, 'spa');
    const url = oidc.buildAuthorizationUrl(spa.config, { redirect_uri: spa.redirectUri, scope: 'openid' });
    const page = await new HttpBrowser().navigate(url.href, {}, spa.redirectUri);
    expect(new URL(page.url).searchParams.get('error')).toBe('invalid_request');
  });

  it('picks the page language from ui_locales, then Accept-Language, with rtl for Arabic', async () => {
    const arabic = await new HttpBrowser().navigate((await authorizationRequest(app, { ui_locales: 'ar' })).url);
    expect(arabic.html).toMatch(/<html lang="ar" dir="rtl"/);
    const japanese = await new HttpBrowser({ 'accept-language': 'ja-JP,ja;q=0.9,en;q=0.5' }).navigate((await authorizationRequest(app)).url);
    expect(japanese.html).toMatch(/<html lang="ja" dir="ltr"/);
  });

  it('requires a fresh sign-in for prompt=login and max_age, with a later auth_time', async () => {
    const { browser, email, tokens } = await registerAndAuthorize(server, app);
    const firstAuthTime = tokens.claims()!.auth_time!;
    server.clock.advance(1); // auth_time has one-second resolution; it is Parley's clock that says when a password was entered
    for (const params of [{ prompt: 'login' }, { max_age: '0' }] as Record<string, string>[]) {
      const request = await authorizationRequest(app, params);
      const page = await browser.navigate(request.url, {}, app.redirectUri);
      expect(page.html).toContain('/login');
      const done = await signIn(browser, page, email, app.redirectUri);
      const again = await exchange(app, request, done.url);
      expect(again.claims()!.auth_time).toBeGreaterThan(firstAuthTime);
    }
  });

  it('signs in silently with prompt=none while the session lasts', async () => {
    const { browser } = await registerAndAuthorize(server, app);
    const request = await authorizationRequest(app, { prompt: 'none' });
    const page = await browser.navigate(request.url, {}, app.redirectUri);
    expect((await exchange(app, request, page.url)).access_token).toBeTruthy();
  });
});

describe('protocol errors', () => {
  it('shows an error page, never a redirect, for an unregistered or altered redirect_uri', async () => {
    for (const redirectUri of ['https://attacker.example/callback', `${app.redirectUri}/../evil`, `${app.redirectUri}?x=1`, app.redirectUri.toUpperCase()]) {
      const request = await authorizationRequest({ ...app, redirectUri }, {});
      const response = await new HttpBrowser().request(request.url);
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.text()).toContain('redirect_uri');
    }
  });

  it('redeems a code once; a replay fails and revokes the tokens already issued', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(app);
    const page = await register(browser, await browser.navigate(request.url), uniqueEmail(), app.redirectUri);
    const callback = await browser.submit(page, '/consent', {}, app.redirectUri);
    const tokens = await exchange(app, request, callback.url);
    const sub = tokens.claims()!.sub;
    expect((await oidc.fetchUserInfo(app.config, tokens.access_token, sub)).sub).toBe(sub);
    expect(await oauthErrorOf(exchange(app, request, callback.url))).toBe('invalid_grant');
    expect(await oauthErrorOf(oidc.fetchUserInfo(app.config, tokens.access_token, sub))).toBe('invalid_token');
  });

  it('gives exactly one success to twenty parallel redemptions of one code', async () => {
    const spa = await appClient(server, 'spa');
    const browser = new HttpBrowser();
    const request = await authorizationRequest(spa);
    const callback = await register(browser, await browser.navigate(request.url), uniqueEmail(), spa.redirectUri);
    const code = new URL(callback.url).searchParams.get('code')!;
    const responses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: spa.redirectUri, client_id: 'spa', code_verifier: request.verifier }),
    }).then(async (r) => ({ status: r.status, body: await r.json() as { error?: string; access_token?: string } }))));
    const winners = responses.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(responses.filter((r) => r.body.error === 'invalid_grant')).toHaveLength(19);
    // The replays revoked the grant, so even the winner's token no longer works.
    const userinfo = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${winners[0]!.body.access_token}` } });
    expect(userinfo.status).toBe(401);
  });

  it('refuses a code with the wrong PKCE verifier', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(app);
    const page = await register(browser, await browser.navigate(request.url), uniqueEmail(), app.redirectUri);
    const callback = await browser.submit(page, '/consent', {}, app.redirectUri);
    const wrong = { ...request, verifier: oidc.randomPKCECodeVerifier() };
    expect(await oauthErrorOf(exchange(app, wrong, callback.url))).toBe('invalid_grant');
  });

  it('answers prompt=none without a session with login_required', async () => {
    const request = await authorizationRequest(app, { prompt: 'none' });
    const page = await new HttpBrowser().navigate(request.url, {}, app.redirectUri);
    const params = new URL(page.url).searchParams;
    expect(params.get('error')).toBe('login_required');
    expect(params.get('state')).toBe(request.state);
  });

  it('revokes and introspects tokens for the client that holds them', async () => {
    const { tokens } = await registerAndAuthorize(server, app, { scope: 'openid offline_access', prompt: 'consent' });
    expect((await oidc.tokenIntrospection(app.config, tokens.access_token)).active).toBe(true);
    await oidc.tokenRevocation(app.config, tokens.refresh_token!);
    expect((await oidc.tokenIntrospection(app.config, tokens.refresh_token!)).active).toBe(false);
  });
});

describe('accounts over HTTP', () => {
  it('gives the same answer for a wrong password and an unknown email, then throttles with a clear message', async () => {
    const { email } = await registerAndAuthorize(server, app);
    const attempt = async (who: string, password: string) => {
      const browser = new HttpBrowser({ 'accept-language': 'en' });
      const login = await browser.navigate((await authorizationRequest(app)).url);
      return browser.submit(login, '/login', { email: who, password }, app.redirectUri);
    };
    const wrong = await attempt(email, 'not the password');
    const unknown = await attempt(uniqueEmail('nobody'), 'not the password');
    expect(wrong.status).toBe(unknown.status);
    const message = (html: string) => /role="alert"[^>]*>([^<]*)</.exec(html)?.[1]?.trim();
    expect(message(wrong.html)).toBe(message(unknown.html));
    expect(message(wrong.html)).toMatch(/incorrect/i);

    const { free_attempts } = server.config.throttle.account;
    let last = wrong;
    for (let i = 1; i < free_attempts + 1; i++) last = await attempt(email, 'still wrong');
    expect(last.status).toBe(429);
    expect(message(last.html)).toMatch(/try again in \d+ (seconds|minutes)/i);
    // Even the right password waits until the delay is over.
    const right = await attempt(email, PASSWORD);
    expect(right.status).toBe(429);
    expect(right.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('resets a forgotten password through the emailed link, signing out every session', async () => {
    const { email, tokens, browser: earlier } = await registerAndAuthorize(server, app);
    const sub = tokens.claims()!.sub;
    const browser = new HttpBrowser();
    const forgot = await browser.navigate(`${server.issuer}/forgot-password`);
    const sent = await browser.submit(forgot, '/forgot-password', { email });
    const unknown = await browser.submit(forgot, '/forgot-password', { email: uniqueEmail('ghost') });
    expect(sent.status).toBe(200);
    expect(unknown.html.replaceAll(/value="[^"]*"/g, '')).toBe(sent.html.replaceAll(/value="[^"]*"/g, ''));
    const link = (await server.linksSentTo(email)).find((l) => l.includes('/reset-password'))!;
    const form = await browser.navigate(link);
    const done = await browser.submit(form, '/reset-password', { password: 'a whole new passphrase' });
    expect(done.status).toBe(200);
    expect((await browser.navigate(link)).status).toBe(400); // the link works once
    // Whoever held the old password is out: tokens revoked, the old session gone.
    expect(await oauthErrorOf(oidc.fetchUserInfo(app.config, tokens.access_token, sub))).toBe('invalid_token');
    const silent = await authorizationRequest(app, { prompt: 'none' });
    const answer = await earlier.navigate(silent.url, {}, app.redirectUri);
    expect(new URL(answer.url).searchParams.get('error')).toBe('login_required');
    const request = await authorizationRequest(app);
    const fresh = new HttpBrowser();
    const page = await signIn(fresh, await fresh.navigate(request.url), email, app.redirectUri, 'a whole new passphrase');
    expect(page.html).toContain('/consent'); // signed in; the third-party app now asks for consent
  });

  it('refuses a form post without the CSRF token', async () => {
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(app)).url);
    const action = /action="([^"]*\/login)"/.exec(login.html)![1]!;
    const response = await browser.request(new URL(action, login.url).href, { form: { email: 'a@example.com', password: 'x' } });
    expect(response.status).toBe(403);
  });

  it('answers 413 to an oversized form', async () => {
    const response = await fetch(`${server.issuer}/forgot-password`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `email=${'a'.repeat(200_000)}`,
    });
    expect(response.status).toBe(413);
  });
});

describe('operations', () => {
  it('reports liveness and readiness', async () => {
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.issuer}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok' } });
  });

  it('serves Prometheus metrics to allowed addresses', async () => {
    const text = await (await fetch(`${server.issuer}/metrics`)).text();
    expect(text).toContain('parley_http_requests_total');
    expect(text).toMatch(/parley_signins_total\{outcome="success"\} \d+/);
  });

  it('publishes the signing key from the database in the JWKS', async () => {
    const jwks = await (await fetch(`${server.issuer}/jwks`)).json() as { keys: { kid: string; d?: string }[] };
    const stored = await server.parley.storage.db.selectFrom('signing_keys').select('kid').where('retired_at', 'is', null).execute();
    expect(jwks.keys.map((k) => k.kid)).toContain(stored[0]!.kid);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });
});

describe('behind a TLS-terminating proxy', () => {
  let proxied: TestServer;
  beforeAll(async () => { proxied = await startTestServer({ proxy: true }); });
  afterAll(async () => { await proxied?.close(); });

  it('advertises the issuer\'s endpoints, whatever the proxy says the request was', async () => {
    const discovery = await (await fetch(`${proxied.issuer}/.well-known/openid-configuration`, {
      headers: { 'x-forwarded-proto': 'https' },
    })).json() as Record<string, string>;
    expect(discovery.token_endpoint).toBe(`${proxied.issuer}/token`);
    expect(discovery.authorization_endpoint).toBe(`${proxied.issuer}/auth`);
  });

  it('keeps form tokens in a __Host- cookie over https, which no sibling subdomain can set', async () => {
    const page = await fetch(`${proxied.issuer}/forgot-password`, { headers: { 'x-forwarded-proto': 'https' } });
    const cookies = page.headers.getSetCookie().join('\n');
    expect(cookies).toMatch(/^__Host-parley\.csrf=[^;]+;.*path=\/;.*secure/im);
    expect(cookies).not.toMatch(/domain=/i);
  });
});
