import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { startDemoId, type DemoIdClient, type DemoIdOptions, type DemoIdUser, type RunningDemoId } from '../../src/oidc/demo-id.ts';
import { HttpBrowser, findForm, type Page } from './browser.ts';

// The outside world for the federation tests: upstream identity providers on loopback. The
// OpenID one is Demo ID (oidc-provider) with switches to misbehave; the GitHub one is a small
// OAuth 2.0 server with GitHub's endpoints and habits. Requests for the real providers' host
// names (accounts.google.com, appleid.apple.com, login.microsoftonline.com, github.com) are sent
// to these stand-ins by `loopbackFetch`, so the presets are tested with their real URLs.

export const REDIRECT_URI = 'https://parley.test/federation/callback';

/** A fetch that sends the listed origins to loopback stand-ins and refuses every other non-loopback host. */
export function loopbackFetch(routes: Record<string, string> = {}): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const target = routes[url.origin];
    if (target) return fetch(new URL(url.pathname + url.search, target), init);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) throw new Error(`test fetch refused ${url.origin}: tests reach loopback only`);
    return fetch(url, init);
  };
}

export type IdTokenMisbehaviour = 'wrong_nonce' | 'expired' | 'bad_signature' | 'wrong_audience' | 'wrong_issuer';

export interface OidcUpstream extends RunningDemoId {
  /** Set to make the next answers wrong. */
  misbehave: { idToken?: IdTokenMisbehaviour; hang?: 'discovery' | 'token'; discovery?: (document: Record<string, unknown>) => void };
  /** How many discovery documents were served. */
  discoveries: number;
  /** The Apple client secrets the token endpoint accepted. */
  appleSecrets: string[];
}

export interface AppleClientCheck {
  teamId: string;
  keyId: string;
  clientId: string;
  publicKey: KeyObject;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

function hang(): Promise<never> {
  return new Promise(() => {});
}

/**
 * Demo ID as an upstream for tests, answering as `issuer` (default its own loopback URL), with an
 * RS256 key the test can also sign with, and:
 * - `misbehave.idToken`: the token endpoint's ID token re-signed with a wrong claim, or with another key;
 * - `misbehave.hang`: discovery or the token endpoint never answers (a provider that is slow);
 * - `apple`: the token endpoint accepts only Apple's kind of client secret, an ES256 JWT, and checks it.
 */
export async function startOidcUpstream(options: {
  clients: DemoIdClient[];
  users: DemoIdUser[];
  issuer?: string;
  extraClaims?: DemoIdOptions['extraClaims'];
  autoLogin?: boolean;
  apple?: AppleClientCheck;
  /** Where discovery is read besides /.well-known/openid-configuration (Microsoft: /common/v2.0/.well-known/…). */
  discoveryPath?: string;
  /** false: no RFC 9207 `iss` in authorization responses, as Microsoft's multi-tenant endpoints send none. */
  issInAuthorizationResponse?: boolean;
  /** The loopback port (default: any free one), for a Parley configured before the upstream starts. */
  port?: number;
}): Promise<OidcUpstream> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-${randomBytes(4).toString('hex')}`;
  const signingJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  // Assigned once started; the middleware runs only for requests, which come after.
  let state!: OidcUpstream;

  const misbehaving: DemoIdOptions['middleware'] = [
    async (ctx, next) => {
      if (options.discoveryPath && ctx.path === options.discoveryPath) ctx.path = '/.well-known/openid-configuration';
      if (ctx.path === '/.well-known/openid-configuration') {
        state.discoveries++;
        if (state.misbehave.hang === 'discovery') await hang();
      }
      if (ctx.path === '/token' && ctx.method === 'POST') {
        if (state.misbehave.hang === 'token') await hang();
        if (options.apple) await checkAppleClientSecret(ctx, options.apple, options.clients, state.appleSecrets);
        if (ctx.status === 401) return;
      }
      await next();
      if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') {
        const document = ctx.body as Record<string, unknown>;
        if (options.issInAuthorizationResponse === false) delete document.authorization_response_iss_parameter_supported;
        state.misbehave.discovery?.(document);
      }
      const location = ctx.response.get('location') ?? '';
      if (options.issInAuthorizationResponse === false && location.startsWith(REDIRECT_URI)) {
        const url = new URL(location);
        url.searchParams.delete('iss');
        ctx.response.set('location', url.href);
      }
      const body = ctx.body as { id_token?: string } | undefined;
      if (ctx.path === '/token' && state.misbehave.idToken && body && typeof body.id_token === 'string') {
        body.id_token = await tamper(body.id_token, state.misbehave.idToken, signingJwk);
      }
    },
  ];
  const running = await startDemoId({
    ...(options.issuer ? { issuer: options.issuer } : {}),
    clients: options.clients,
    users: options.users,
    autoLogin: options.autoLogin ?? true,
    ...(options.port ? { port: options.port } : {}),
    signingKeys: [signingJwk],
    ...(options.extraClaims ? { extraClaims: options.extraClaims } : {}),
    middleware: misbehaving,
  });
  state = Object.assign(running, { misbehave: {}, discoveries: 0, appleSecrets: [] });
  return state;
}

/** Re-signs an ID token with one thing wrong: a claim (with the right key) or the key itself. */
async function tamper(idToken: string, how: IdTokenMisbehaviour, jwk: JWK): Promise<string> {
  const claims = decodeJwt(idToken);
  const header = decodeProtectedHeader(idToken);
  const now = Math.floor(Date.now() / 1000);
  if (how === 'wrong_nonce') claims.nonce = 'a-nonce-from-another-sign-in';
  if (how === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  if (how === 'wrong_audience') claims.aud = 'some-other-app';
  if (how === 'wrong_issuer') claims.iss = 'https://impostor.test';
  const key = how === 'bad_signature' ? (await generateKeyPair('RS256')).privateKey : await importJWK(jwk, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: header.kid! }).sign(key);
}

/**
 * Apple's token endpoint: client_secret must be an ES256 JWT from the team's key (kid), with
 * iss = team, sub = client, aud = https://appleid.apple.com, and exp at most six months after
 * iat. A good one is swapped for the registered secret so oidc-provider lets the client in.
 */
async function checkAppleClientSecret(ctx: Parameters<NonNullable<DemoIdOptions['middleware']>[number]>[0], apple: AppleClientCheck, clients: DemoIdClient[], accepted: string[]) {
  const form = new URLSearchParams(await readBody(ctx.req));
  const secret = form.get('client_secret') ?? '';
  try {
    const { payload, protectedHeader } = await jwtVerify(secret, apple.publicKey, {
      algorithms: ['ES256'], issuer: apple.teamId, subject: apple.clientId, audience: 'https://appleid.apple.com',
    });
    if (protectedHeader.kid !== apple.keyId) throw new Error('wrong kid');
    if (payload.exp! - payload.iat! > 15_777_000) throw new Error('lives longer than six months');
  } catch {
    ctx.status = 401;
    ctx.body = { error: 'invalid_client' };
    return;
  }
  accepted.push(secret);
  form.set('client_secret', clients.find((c) => c.client_id === apple.clientId)!.client_secret!);
  (ctx.req as IncomingMessage & { body?: string }).body = form.toString();
}

/** What the provider sent back to the redirect URI: its method and parameters. */
export interface Callback { method: 'GET' | 'POST'; params: URLSearchParams }

/**
 * Plays the browser from Parley's authorization URL to the provider's answer at the redirect
 * URI: follows redirects, and reads a form_post page's hidden fields as the browser would post them.
 * `act` may act on a page the provider shows (e.g. press Cancel) and return the next page.
 */
export type PageAction = (browser: HttpBrowser, page: Page) => Promise<Page>;

export async function authorize(url: URL, options: { fetchRoutes?: Record<string, string>; act?: PageAction } = {}): Promise<Callback> {
  const browser = new HttpBrowser();
  const start = new URL(url);
  const route = options.fetchRoutes?.[start.origin];
  const first = route ? new URL(start.pathname + start.search, route).href : start.href;
  let page = await browser.navigate(first, {}, REDIRECT_URI);
  if (options.act && !page.url.startsWith(REDIRECT_URI)) page = await options.act(browser, page);
  if (page.url.startsWith(REDIRECT_URI)) return { method: 'GET', params: new URL(page.url).searchParams };
  if (page.html.includes(`action="${REDIRECT_URI}"`)) {
    const { hidden } = findForm(page.html, REDIRECT_URI);
    return { method: 'POST', params: new URLSearchParams(hidden) };
  }
  throw new Error(`the provider did not answer the redirect URI; last page ${page.url} (${page.status}): ${page.html.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------
// A GitHub-style OAuth 2.0 provider.

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  /** The public address, if the user shows one. */
  email: string | null;
  emails: { email: string; primary: boolean; verified: boolean; visibility: 'public' | 'private' | null }[];
}

export interface GitHubLike {
  url: string;
  /** Who "is signed in" at GitHub; the authorization page approves at once. */
  signedIn: GitHubUser;
  /** Refuse the next authorizations, as when the person presses Cancel. */
  deny: boolean;
  close(): Promise<void>;
}

/**
 * GitHub's OAuth web flow: /login/oauth/authorize, /login/oauth/access_token (errors such as
 * bad_verification_code with status 200, JSON only with Accept: application/json, PKCE S256),
 * /user and /user/emails with `Authorization: Bearer`, requiring a User-Agent.
 */
export async function startGitHubLike(options: { clientId: string; clientSecret: string; user: GitHubUser }): Promise<GitHubLike> {
  const codes = new Map<string, { user: GitHubUser; redirectUri: string | null; challenge: string | null }>();
  const tokens = new Map<string, GitHubUser>();
  const state = { signedIn: options.user, deny: false };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://github.test');
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirect = new URL(url.searchParams.get('redirect_uri')!);
      const stateParam = url.searchParams.get('state');
      if (url.searchParams.get('client_id') !== options.clientId) return json(res, 404, { message: 'Not Found' });
      if (state.deny) {
        redirect.searchParams.set('error', 'access_denied');
        redirect.searchParams.set('error_description', 'The user has denied your application access.');
      } else {
        const code = randomBytes(10).toString('hex');
        codes.set(code, {
          user: state.signedIn,
          redirectUri: url.searchParams.get('redirect_uri'),
          challenge: url.searchParams.get('code_challenge_method') === 'S256' ? url.searchParams.get('code_challenge') : null,
        });
        redirect.searchParams.set('code', code);
      }
      if (stateParam) redirect.searchParams.set('state', stateParam);
      res.writeHead(302, { location: redirect.href }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const form = new URLSearchParams(await readBody(req));
      if (!req.headers.accept?.includes('application/json')) return json(res, 406, { message: 'ask for JSON' });
      if (form.get('client_id') !== options.clientId || form.get('client_secret') !== options.clientSecret) {
        return json(res, 200, { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
      }
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const challengeOk = grant?.challenge === null || grant?.challenge === createHash('sha256').update(verifier).digest('base64url');
      if (!grant || !challengeOk || (grant.redirectUri !== null && grant.redirectUri !== form.get('redirect_uri'))) {
        return json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      }
      const token = `gho_${randomBytes(12).toString('hex')}`;
      tokens.set(token, grant.user);
      return json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
    }
    if (req.method === 'GET' && (url.pathname === '/user' || url.pathname === '/user/emails')) {
      if (!req.headers['user-agent']) return json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header' });
      const user = tokens.get((req.headers.authorization ?? '').replace(/^(Bearer|token) /i, ''));
      if (!user) return json(res, 401, { message: 'Bad credentials' });
      if (url.pathname === '/user') return json(res, 200, { id: user.id, login: user.login, name: user.name, email: user.email });
      return json(res, 200, user.emails);
    }
    json(res, 404, { message: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  });
}
