import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser, type FormFields } from '../support/browser.ts';
import {
  authorizationRequest, exchange, oidc, register, registerAndAuthorize, serveForTests, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// OpenID Connect Core 3.1.2.1 and RP-Initiated Logout 1.0 §2: the authorization and the logout
// endpoint accept POST (form-encoded) as well as GET. The session cookie is the one cookie a
// cross-site POST must carry; the cookies that guard forms stay SameSite=Lax.

const t = serveForTests({}, { app: 'web-app' });

/** The parameters of an authorization request URL, as the form an app would POST instead. */
function formOf(url: string): FormFields {
  return Object.fromEntries(new URL(url).searchParams);
}

const endpoints = () => t.app.config.serverMetadata();

describe('POST at the authorization endpoint', () => {
  it('signs in from a form-encoded authorization request, and again silently while the session lasts', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(t.app);
    const login = await browser.navigate(endpoints().authorization_endpoint!, { form: formOf(request.url) });
    expect(login.status).toBe(200);
    const consent = await register(browser, login, uniqueEmail('post-auth'), t.app.redirectUri);
    const callback = await browser.submit(consent, '/consent', {}, t.app.redirectUri);
    const tokens = await exchange(t.app, request, callback.url);
    expect(tokens.claims()!.nonce).toBe(request.nonce);

    const silent = await authorizationRequest(t.app, { prompt: 'none' });
    const page = await browser.navigate(endpoints().authorization_endpoint!, { form: formOf(silent.url) }, t.app.redirectUri);
    expect((await exchange(t.app, silent, page.url)).claims()!.sub).toBe(tokens.claims()!.sub);
  });

  it('refuses a POSTed request with an unregistered redirect_uri on an error page, as for GET', async () => {
    const request = await authorizationRequest({ ...t.app, redirectUri: 'https://attacker.example/callback' });
    const response = await new HttpBrowser().request(endpoints().authorization_endpoint!, { form: formOf(request.url) });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });
});

describe('POST at the logout endpoint', () => {
  it('asks for confirmation, signs out and returns to the post_logout_redirect_uri with the state', async () => {
    const { browser, tokens } = await registerAndAuthorize(t.server, t.app);
    const postLogout = t.server.config.clients[0]!.post_logout_redirect_uris[0]!;
    const confirm = await browser.navigate(endpoints().end_session_endpoint!, {
      form: { id_token_hint: tokens.id_token!, post_logout_redirect_uri: postLogout, state: 'bye' },
    });
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Web App');
    const signedOut = await browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, postLogout);
    expect(new URL(signedOut.url).searchParams.get('state')).toBe('bye');

    const silent = await authorizationRequest(t.app, { prompt: 'none' });
    const answer = await browser.navigate(silent.url, {}, t.app.redirectUri);
    expect(new URL(answer.url).searchParams.get('error')).toBe('login_required');
  });

  it('refuses a POSTed post_logout_redirect_uri the app did not register', async () => {
    const { browser, tokens } = await registerAndAuthorize(t.server, t.app);
    const response = await browser.request(endpoints().end_session_endpoint!, {
      form: { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://attacker.example/' },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });
});

describe('bad input in a POST', () => {
  it('refuses a POSTed logout whose state holds a NUL byte or is too long, as it refuses the GET', async () => {
    const { browser } = await registerAndAuthorize(t.server, t.app);
    for (const state of ['a\u0000b', 's'.repeat(2049)]) {
      const refused = await browser.navigate(endpoints().end_session_endpoint!, { form: { client_id: 'web-app', state } });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('state');
    }
    const json = await new HttpBrowser({ accept: 'application/json' }).request(endpoints().end_session_endpoint!, { form: { state: '\u0000' } });
    expect(json.status).toBe(400);
    expect(await json.json()).toEqual({ error: 'invalid_request', error_description: 'state must not contain control characters' });
    // The session is untouched, and the same request without the bad byte is served.
    const confirm = await browser.navigate(endpoints().end_session_endpoint!, { form: { client_id: 'web-app', state: 'ab' } });
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('/session/end/confirm');
  });

  it('refuses a POSTed authorization request whose state holds a NUL byte, back at the app', async () => {
    const request = await authorizationRequest(t.app, { state: 'a\u0000b' });
    const answer = await new HttpBrowser().navigate(endpoints().authorization_endpoint!, { form: formOf(request.url) }, t.app.redirectUri);
    expect(new URL(answer.url).searchParams.get('error')).toBe('invalid_request');
  });
});

/** A browser that records every Set-Cookie it is sent; `reach` maps public URLs to the server. */
class RecordingBrowser extends HttpBrowser {
  readonly setCookies: string[] = [];
  readonly #reach: (url: string) => string;

  constructor(reach: (url: string) => string = (url) => url, headers: Record<string, string> = {}) {
    super(headers);
    this.#reach = reach;
  }

  override async request(url: string, init: Parameters<HttpBrowser['request']>[1] = {}): Promise<Response> {
    const response = await super.request(this.#reach(url), init);
    this.setCookies.push(...response.headers.getSetCookie());
    return response;
  }

  /** The attributes of the last Set-Cookie for `name`, lower-cased. */
  attributes(name: string): string[] {
    const line = this.setCookies.findLast((l) => l.startsWith(`${name}=`));
    if (!line) throw new Error(`no Set-Cookie for ${name} in:\n${this.setCookies.join('\n')}`);
    return line.split(';').slice(1).map((a) => a.trim().toLowerCase());
  }
}

/** Signs a new user in through a POSTed authorization request; returns the browser that did it. */
async function signInByPost(browser: RecordingBrowser, client: AppClient) {
  const request = await authorizationRequest(client);
  const login = await browser.navigate(client.config.serverMetadata().authorization_endpoint!, { form: formOf(request.url) });
  const consent = await register(browser, login, uniqueEmail('cookies'), client.redirectUri);
  const callback = await browser.submit(consent, '/consent', {}, client.redirectUri);
  expect(callback.url.startsWith(client.redirectUri)).toBe(true);
}

describe('cookie attributes', () => {
  it('on an http issuer, keeps every cookie SameSite=Lax: browsers refuse SameSite=None without Secure', async () => {
    const browser = new RecordingBrowser();
    await signInByPost(browser, t.app);
    for (const name of ['parley.session', 'parley.session.sig', 'parley.interaction', 'parley.resume', 'parley.csrf']) {
      expect(browser.attributes(name), name).toContain('samesite=lax');
    }
  });

  describe('on an https issuer behind a TLS-terminating proxy', () => {
    // The proxy's public name; the test browser plays the proxy and reaches the node on loopback.
    const publicIssuer = 'https://parley.test';
    let proxied: TestServer;
    let proxiedApp: AppClient;
    const reach = (url: string) => url.replace(publicIssuer, proxied.issuer);

    beforeAll(async () => {
      proxied = await startTestServer({ proxy: true, issuer: publicIssuer, clients: TEST_CLIENTS(publicIssuer) });
      const client = proxied.config.clients.find((c) => c.client_id === 'web-app')!;
      const config = await oidc.discovery(new URL(publicIssuer), client.client_id, client.client_secret, undefined, {
        [oidc.customFetch]: (url: string, options: RequestInit) => fetch(reach(url), {
          ...options, headers: { ...options.headers as Record<string, string>, 'x-forwarded-proto': 'https' },
        }),
      });
      proxiedApp = { config, clientId: client.client_id, redirectUri: client.redirect_uris[0]! };
    });
    afterAll(async () => { await proxied?.close(); });

    it('sends the session cookie SameSite=None; Secure, and keeps the interaction, resume and form-token cookies Lax', async () => {
      const browser = new RecordingBrowser(reach, { 'x-forwarded-proto': 'https' });
      await signInByPost(browser, proxiedApp);
      for (const name of ['parley.session', 'parley.session.sig']) {
        expect(browser.attributes(name), name).toEqual(expect.arrayContaining(['samesite=none', 'secure', 'httponly']));
      }
      for (const name of ['parley.interaction', 'parley.resume', '__Host-parley.csrf']) {
        expect(browser.attributes(name), name).toEqual(expect.arrayContaining(['samesite=lax', 'secure', 'httponly']));
      }
    });
  });
});
