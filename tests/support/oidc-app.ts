import * as oidc from 'openid-client';
import { afterAll, beforeAll } from 'vitest';
import { HttpBrowser, type Page } from './browser.ts';
import { startTestServer, type TestOverrides, type TestServer } from './server.ts';

// The app side of the tests: a relying party built on openid-client, as any real app would be.

export const PASSWORD = 'correct horse battery staple';

export interface AppClient {
  config: oidc.Configuration;
  clientId: string;
  redirectUri: string;
}

export async function appClient(server: TestServer, clientId = 'web-app'): Promise<AppClient> {
  const client = server.config.clients.find((c) => c.client_id === clientId)!;
  const config = await oidc.discovery(new URL(server.issuer), clientId, client.client_secret, client.client_secret ? undefined : oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  return { config, clientId, redirectUri: client.redirect_uris[0]! };
}

export type ServedApps<Name extends string> = { server: TestServer } & Record<Name, AppClient>;

/**
 * A server started before the tests of the enclosing file or describe block and closed after
 * them, with openid-client apps named as the test likes (`{ spa: 'spa', webApp: 'web-app' }`).
 * Its fields are set once the tests run.
 */
export function serveForTests<Name extends string>(overrides: TestOverrides, apps: Record<Name, string>): ServedApps<Name> {
  const served = {} as ServedApps<Name>;
  beforeAll(async () => {
    const server = await startTestServer(overrides);
    Object.assign(served, { server });
    for (const [name, clientId] of Object.entries<string>(apps)) Object.assign(served, { [name]: await appClient(server, clientId) });
  });
  afterAll(async () => { await served.server?.close(); });
  return served;
}

export interface AuthorizationRequest {
  url: string;
  verifier: string;
  state: string;
  nonce: string;
}

export async function authorizationRequest(app: AppClient, params: Record<string, string> = {}): Promise<AuthorizationRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(app.config, {
    redirect_uri: app.redirectUri,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { url: url.href, verifier, state, nonce };
}

export function uniqueEmail(tag = 'user'): string {
  return `${tag}-${crypto.randomUUID()}@example.com`;
}

/** From the login page: registers through the page's link and form. */
export async function register(browser: HttpBrowser, loginPage: Page, email: string, stopAt: string, password = PASSWORD): Promise<Page> {
  const link = /href="([^"]*\/register)"/.exec(loginPage.html)?.[1];
  if (!link) throw new Error('no register link on the login page');
  const form = await browser.navigate(new URL(link, loginPage.url).href);
  return browser.submit(form, '/register', { email, password, name: 'Test User' }, stopAt);
}

export async function signIn(browser: HttpBrowser, loginPage: Page, email: string, stopAt: string, password = PASSWORD): Promise<Page> {
  return browser.submit(loginPage, '/login', { email, password }, stopAt);
}

/** Exchanges the code in a callback URL, checking state, nonce and PKCE as a real app does. */
export function exchange(app: AppClient, request: AuthorizationRequest, callbackUrl: string) {
  return oidc.authorizationCodeGrant(app.config, new URL(callbackUrl), {
    pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true,
  });
}

/** Registers a new user and completes a whole authorization; returns the tokens. */
export async function registerAndAuthorize(server: TestServer, app: AppClient, params: Record<string, string> = {}, email = uniqueEmail()) {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(app, params);
  const login = await browser.navigate(request.url);
  let page = await register(browser, login, email, app.redirectUri);
  if (!page.url.startsWith(app.redirectUri)) page = await browser.submit(page, '/consent', {}, app.redirectUri);
  const tokens = await exchange(app, request, page.url);
  return { browser, email, tokens, request };
}

/**
 * The OAuth error a refused call ended with, or undefined when it succeeded: the `error` of a
 * JSON error body, or of the bearer challenge in WWW-Authenticate when a resource refuses a token
 * (RFC 6750 §3), as userinfo does. Anything else (a network error, a body that is no OAuth
 * error) comes back as its code, so it never passes for the refusal a test expects.
 */
export function oauthErrorOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(() => undefined, (error: { error?: string; code?: string }) => {
    if (error instanceof oidc.WWWAuthenticateChallengeError) return error.cause[0]?.parameters.error ?? error.code;
    return error.error ?? error.code;
  });
}

export { oidc };
