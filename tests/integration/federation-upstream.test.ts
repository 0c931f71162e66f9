import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { UpstreamError, type UpstreamErrorCode } from '../../src/federation/errors.ts';
import { MICROSOFT_CONSUMER_TENANT } from '../../src/federation/presets.ts';
import { resolveUpstreamSettings } from '../../src/federation/settings.ts';
import { UpstreamClient, parseUpstreamTransaction, type UpstreamTransaction } from '../../src/federation/upstream.ts';
import type { DemoIdUser } from '../../src/oidc/demo-id.ts';
import { TestClock } from '../support/server.ts';
import {
  REDIRECT_URI, authorize, loopbackFetch, startGitHubLike, startOidcUpstream,
  type GitHubLike, type OidcUpstream, type PageAction,
} from '../support/upstreams.ts';

// The upstream client against real providers on loopback: Demo ID (oidc-provider) standing in for
// a generic OpenID provider, Google, Apple and Microsoft, and a GitHub-style OAuth 2.0 server.
// Every test goes the whole way: authorization URL, the provider's pages and redirects, the
// callback, the code exchange, the ID token or userinfo.

const ADA: DemoIdUser = { sub: 'ada-1', email: 'Ada@Example.com', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', locale: 'en_GB' };
const GRACE: DemoIdUser = { sub: 'grace-2', email: 'grace@example.com', email_verified: false, given_name: 'Grace', family_name: 'Hopper' };

function client(entry: Record<string, unknown>, options: { routes?: Record<string, string>; clock?: TestClock; env?: NodeJS.ProcessEnv } = {}): UpstreamClient {
  const config = loadConfig({ env: {}, overrides: { identity_providers: [entry] } });
  const [settings] = resolveUpstreamSettings(config.identity_providers, { env: options.env ?? {} });
  return new UpstreamClient(settings!, {
    redirectUri: REDIRECT_URI,
    fetch: loopbackFetch(options.routes),
    ...(options.clock ? { now: options.clock.now } : {}),
  });
}

async function signIn(upstream: UpstreamClient, options: { loginHint?: string; routes?: Record<string, string>; act?: PageAction } = {}) {
  const { url, transaction } = await upstream.begin({ interactionUid: 'interaction-1', ...(options.loginHint ? { loginHint: options.loginHint } : {}) });
  const callback = await authorize(url, { ...(options.routes ? { fetchRoutes: options.routes } : {}), ...(options.act ? { act: options.act } : {}) });
  return { url, transaction, callback };
}

async function errorOf(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
  throw new Error('expected an UpstreamError');
}

async function expectCode(promise: Promise<unknown>, code: UpstreamErrorCode): Promise<UpstreamError> {
  const error = await errorOf(promise);
  expect(error.code, JSON.stringify(error.details)).toBe(code);
  return error;
}

describe('a generic OpenID provider', () => {
  let upstream: OidcUpstream;
  const entry = () => ({ id: 'acme', type: 'oidc', name: 'Acme ID', issuer: upstream.url, client_id: 'parley', client_secret: 'acme-secret', trust_email_verified: true });

  beforeAll(async () => {
    upstream = await startOidcUpstream({ clients: [{ client_id: 'parley', client_secret: 'acme-secret', redirect_uris: [REDIRECT_URI] }], users: [ADA, GRACE] });
  });
  afterAll(() => upstream.close());

  it('signs in with code, PKCE, state and nonce, and normalizes who the person is', async () => {
    const acme = client(entry());
    const { url, transaction, callback } = await signIn(acme, { loginHint: 'ada@example.com' });
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('state')).toBe(transaction.state);
    expect(url.searchParams.get('nonce')).toBe(transaction.nonce);
    expect(url.searchParams.get('login_hint')).toBe('ada@example.com');
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(callback.method).toBe('GET');
    const identity = await acme.complete(transaction, callback.params);
    expect(identity).toEqual({
      provider: 'acme', subject: 'ada-1', email: 'ada@example.com', emailVerified: true, emailVerifiedClaimed: true,
      name: 'Ada Lovelace', locale: 'en-GB',
    });
  });

  it('keeps the transaction as plain JSON that can be read back', async () => {
    const acme = client(entry());
    const { transaction, callback } = await signIn(acme, { loginHint: 'ada@example.com' });
    const stored = JSON.parse(JSON.stringify(transaction)) as unknown;
    const readBack = parseUpstreamTransaction(stored)!;
    expect(readBack).toEqual(transaction);
    expect((await acme.complete(readBack, callback.params)).subject).toBe('ada-1');
    expect(parseUpstreamTransaction({ ...transaction, state: 3 })).toBeUndefined();
    expect(parseUpstreamTransaction('{"v":1}')).toBeUndefined();
  });

  it('says email_verified only when the provider said so and is trusted to', async () => {
    const grace = await client(entry()).complete(...await flow(client(entry()), 'grace@example.com'));
    expect(grace).toMatchObject({ subject: 'grace-2', email: 'grace@example.com', emailVerified: false, emailVerifiedClaimed: false, name: 'Grace Hopper' });
    const untrusted = client({ ...entry(), trust_email_verified: false });
    const ada = await untrusted.complete(...await flow(untrusted, 'ada@example.com'));
    expect(ada).toMatchObject({ email: 'ada@example.com', emailVerified: false, emailVerifiedClaimed: true });
  });

  it('reads the discovery document once and reuses it', async () => {
    const acme = client(entry());
    const before = upstream.discoveries;
    await acme.begin({ interactionUid: 'a' });
    await Promise.all([acme.begin({ interactionUid: 'b' }), acme.begin({ interactionUid: 'c' })]);
    expect(upstream.discoveries - before).toBe(1);
  });

  it('refuses a callback whose state is not the transaction\'s, or has none', async () => {
    const acme = client(entry());
    const { transaction, callback } = await signIn(acme);
    const forged = new URLSearchParams(callback.params);
    forged.set('state', `${transaction.state.slice(0, -1)}x`);
    await expectCode(acme.complete(transaction, forged), 'state_mismatch');
    forged.delete('state');
    await expectCode(acme.complete(transaction, forged), 'state_mismatch');
    // A callback answering another sign-in of the same browser (another tab) is refused too.
    const other = await signIn(acme);
    await expectCode(acme.complete(transaction, other.callback.params), 'state_mismatch');
  });

  it('refuses a transaction of another provider, and one that waited too long', async () => {
    const clock = new TestClock();
    const acme = client(entry(), { clock });
    const { transaction, callback } = await signIn(acme);
    await expectCode(acme.complete({ ...transaction, provider: 'google' }, callback.params), 'state_mismatch');
    clock.advance(601);
    await expectCode(acme.complete(transaction, callback.params), 'expired');
  });

  it('refuses an ID token whose nonce is not the transaction\'s', async () => {
    const acme = client(entry());
    const { transaction, callback } = await signIn(acme);
    await expectCode(acme.complete({ ...transaction, nonce: 'n'.repeat(43) }, callback.params), 'invalid_id_token');
    upstream.misbehave = { idToken: 'wrong_nonce' };
    try {
      const next = await signIn(acme);
      const error = await expectCode(acme.complete(next.transaction, next.callback.params), 'invalid_id_token');
      expect(error.details.reason).toMatch(/nonce/);
    } finally {
      upstream.misbehave = {};
    }
  });

  it.each([
    ['bad_signature', /signature/],
    ['wrong_audience', /aud/],
    ['expired', /exp/],
    ['wrong_issuer', /iss/],
  ] as const)('refuses an ID token that is %s', async (misbehaviour, reason) => {
    const acme = client(entry());
    upstream.misbehave = { idToken: misbehaviour };
    try {
      const { transaction, callback } = await signIn(acme);
      const error = await expectCode(acme.complete(transaction, callback.params), 'invalid_id_token');
      expect(error.details).toMatchObject({ provider: 'acme', stage: 'token' });
      expect(error.details.reason).toMatch(reason);
    } finally {
      upstream.misbehave = {};
    }
  });

  it('refuses a code sent back a second time, and a code without its PKCE verifier', async () => {
    const acme = client(entry());
    const { transaction, callback } = await signIn(acme);
    await acme.complete(transaction, callback.params);
    const replay = await expectCode(acme.complete(transaction, callback.params), 'invalid_response');
    expect(replay.details.upstreamError).toBe('invalid_grant');
    const next = await signIn(acme);
    const wrongVerifier = await expectCode(acme.complete({ ...next.transaction, codeVerifier: 'v'.repeat(43) }, next.callback.params), 'invalid_response');
    expect(wrongVerifier.details.upstreamError).toBe('invalid_grant');
  });

  it('tells access_denied when the person cancels at the provider', async () => {
    const manual = await startOidcUpstream({ clients: [{ client_id: 'parley', client_secret: 'acme-secret', redirect_uris: [REDIRECT_URI] }], users: [ADA], autoLogin: false });
    try {
      const acme = client({ ...entry(), issuer: manual.url });
      const { transaction, callback } = await signIn(acme, {
        act: (browser, page) => browser.submit(page, '/cancel', { cancel: '1' }, REDIRECT_URI),
      });
      const error = await expectCode(acme.complete(transaction, callback.params), 'access_denied');
      expect(error.details).toMatchObject({ stage: 'callback', upstreamError: 'access_denied' });
    } finally {
      await manual.close();
    }
  });

  it('does not send tokens, codes or the secret to the logs', async () => {
    const acme = client(entry());
    upstream.misbehave = { idToken: 'wrong_audience' };
    try {
      const { transaction, callback } = await signIn(acme);
      const error = await errorOf(acme.complete(transaction, callback.params));
      const logged = JSON.stringify({ error: error.message, details: error.details });
      expect(logged).not.toContain(callback.params.get('code')!);
      expect(logged).not.toContain(transaction.codeVerifier);
      expect(logged).not.toContain('acme-secret');
      expect(logged).not.toMatch(/eyJ[\w-]+\.[\w-]+/);
      expect(JSON.stringify(acme.settings)).not.toContain('acme-secret');
    } finally {
      upstream.misbehave = {};
    }
  });

  it('refuses to follow a discovery document to a plain-http host that is not this machine', async () => {
    const acme = client(entry());
    upstream.misbehave = { discovery: (doc) => { doc.token_endpoint = 'http://192.0.2.1/token'; } };
    try {
      const { transaction, callback } = await signIn(acme);
      const error = await expectCode(acme.complete(transaction, callback.params), 'misconfigured');
      expect(error.details.reason).toMatch(/only https/);
    } finally {
      upstream.misbehave = {};
    }
  });

  async function flow(upstreamClient: UpstreamClient, loginHint: string): Promise<[UpstreamTransaction, URLSearchParams]> {
    const { transaction, callback } = await signIn(upstreamClient, { loginHint });
    return [transaction, callback.params];
  }
});

describe('a provider that is down or slow', () => {
  let upstream: OidcUpstream;
  const entry = (issuer: string) => ({ id: 'acme', type: 'oidc', name: 'Acme', issuer, client_id: 'parley', client_secret: 'acme-secret', timeout: '1s' });

  beforeAll(async () => {
    upstream = await startOidcUpstream({ clients: [{ client_id: 'parley', client_secret: 'acme-secret', redirect_uris: [REDIRECT_URI] }], users: [ADA] });
  });
  afterAll(() => upstream.close());

  it('is upstream_unavailable when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const error = await expectCode(client(entry(`http://127.0.0.1:${port}`)).begin({ interactionUid: 'x' }), 'upstream_unavailable');
    expect(error.details).toMatchObject({ stage: 'discovery', reason: expect.stringContaining('ECONNREFUSED') });
  });

  it('is upstream_unavailable when it goes away between the redirect and the callback', async () => {
    const brief = await startOidcUpstream({ clients: [{ client_id: 'parley', client_secret: 'acme-secret', redirect_uris: [REDIRECT_URI] }], users: [ADA] });
    const acme = client(entry(brief.url));
    const { transaction, callback } = await signIn(acme);
    await brief.close();
    const error = await expectCode(acme.complete(transaction, callback.params), 'upstream_unavailable');
    expect(error.details.stage).toBe('token');
  });

  it('is a timeout, not a hang, when discovery does not answer', async () => {
    upstream.misbehave = { hang: 'discovery' };
    try {
      const error = await expectCode(client(entry(upstream.url)).begin({ interactionUid: 'x' }), 'timeout');
      expect(error.details.stage).toBe('discovery');
    } finally {
      upstream.misbehave = {};
    }
  });

  it('is a timeout, not a hang, when the token endpoint does not answer', async () => {
    const acme = client(entry(upstream.url));
    const { transaction, callback } = await signIn(acme);
    upstream.misbehave = { hang: 'token' };
    try {
      const error = await expectCode(acme.complete(transaction, callback.params), 'timeout');
      expect(error.details.stage).toBe('token');
    } finally {
      upstream.misbehave = {};
    }
  });

  it('tries discovery again after a failure instead of keeping it', async () => {
    upstream.misbehave = { hang: 'discovery' };
    const acme = client(entry(upstream.url));
    await expectCode(acme.begin({ interactionUid: 'x' }), 'timeout');
    upstream.misbehave = {};
    await expect(acme.begin({ interactionUid: 'y' })).resolves.toMatchObject({ transaction: { provider: 'acme' } });
  });
});

describe('preset google', () => {
  let upstream: OidcUpstream;
  const routes = () => ({ 'https://accounts.google.com': upstream.url });

  beforeAll(async () => {
    upstream = await startOidcUpstream({
      issuer: 'https://accounts.google.com',
      clients: [{ client_id: 'parley.apps.googleusercontent.com', client_secret: 'google-secret', redirect_uris: [REDIRECT_URI] }],
      users: [{ ...ADA, sub: '110169484474386276334', hd: 'example.com' }],
    });
  });
  afterAll(() => upstream.close());

  it('discovers from https://accounts.google.com and trusts its email_verified', async () => {
    const google = client({ id: 'google', preset: 'google', client_id: 'parley.apps.googleusercontent.com', client_secret: { env: 'GOOGLE_SECRET' }, authorization_params: { hd: 'example.com' } }, {
      routes: routes(), env: { GOOGLE_SECRET: 'google-secret' },
    });
    const { url, transaction, callback } = await signIn(google, { loginHint: 'ada@example.com' });
    expect(url.searchParams.get('scope')).toBe('openid email profile');
    expect(url.searchParams.get('hd')).toBe('example.com');
    expect(await google.complete(transaction, callback.params)).toMatchObject({
      provider: 'google', subject: '110169484474386276334', email: 'ada@example.com', emailVerified: true, name: 'Ada Lovelace',
    });
  });
});

describe('preset apple', () => {
  let upstream: OidcUpstream;
  const teamId = 'TEAM123456';
  const keyId = 'KEY1234567';
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const relay = 'x7k2m9p4q1@privaterelay.appleid.com';
  const entry = { id: 'apple', preset: 'apple', client_id: 'com.example.web', apple: { team_id: teamId, key_id: keyId, private_key: { env: 'APPLE_P8' } } };

  beforeAll(async () => {
    upstream = await startOidcUpstream({
      issuer: 'https://appleid.apple.com',
      clients: [{ client_id: 'com.example.web', client_secret: 'registered-at-the-stand-in', redirect_uris: [REDIRECT_URI], post_user_on_first_authorization: true }],
      users: [{ sub: '001234.abcdef.1234', email: relay, email_verified: 'true', is_private_email: 'true', given_name: 'Ada', family_name: 'Lovelace' }],
      extraClaims: { email: ['is_private_email'], name: [] },
      apple: { teamId, keyId, clientId: 'com.example.web', publicKey },
    });
  });
  afterAll(() => upstream.close());

  // An environment variable holds the .p8 file with its newlines written as \n, as they often are.
  const apple = () => client(entry, { routes: { 'https://appleid.apple.com': upstream.url }, env: { APPLE_P8: p8.replaceAll('\n', '\\n') } });

  it('answers with form_post, pays with a signed client secret, and gives the name only the first time', async () => {
    const upstreamClient = apple();
    const first = await signIn(upstreamClient);
    expect(first.url.searchParams.get('response_mode')).toBe('form_post');
    expect(first.url.searchParams.get('scope')).toBe('openid email name');
    expect(first.callback.method).toBe('POST');
    expect(JSON.parse(first.callback.params.get('user')!)).toMatchObject({ name: { firstName: 'Ada', lastName: 'Lovelace' } });
    expect(await upstreamClient.complete(first.transaction, first.callback.params)).toEqual({
      provider: 'apple', subject: '001234.abcdef.1234', email: relay, emailVerified: true, emailVerifiedClaimed: true,
      emailIsPrivateRelay: true, name: 'Ada Lovelace',
    });
    expect(upstream.appleSecrets).toHaveLength(1);

    const again = await signIn(upstreamClient);
    expect(again.callback.params.has('user')).toBe(false);
    const identity = await upstreamClient.complete(again.transaction, again.callback.params);
    expect(identity.name).toBeUndefined();
    expect(identity.subject).toBe('001234.abcdef.1234');
  });

  it('never takes the address from the unsigned user field', async () => {
    const upstreamClient = apple();
    const { transaction, callback } = await signIn(upstreamClient);
    callback.params.set('user', JSON.stringify({ name: { firstName: 'Mallory' }, email: 'victim@example.com' }));
    const identity = await upstreamClient.complete(transaction, callback.params);
    expect(identity.email).toBe(relay);
  });

  it('is misconfigured when Apple refuses the client secret', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const wrongKey = client(entry, { routes: { 'https://appleid.apple.com': upstream.url }, env: { APPLE_P8: other } });
    const { transaction, callback } = await signIn(wrongKey);
    const error = await expectCode(wrongKey.complete(transaction, callback.params), 'misconfigured');
    expect(error.details).toMatchObject({ stage: 'token', upstreamError: 'invalid_client', status: 401 });
  });

  it('takes Apple\'s user_cancelled_authorize as access_denied', async () => {
    const upstreamClient = apple();
    const { transaction } = await upstreamClient.begin({ interactionUid: 'x' });
    await expectCode(upstreamClient.complete(transaction, { state: transaction.state, error: 'user_cancelled_authorize' }), 'access_denied');
  });
});

describe('preset microsoft', () => {
  const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const upstreams: OidcUpstream[] = [];
  // login.microsoftonline.com/common/v2.0 answers with the template issuer; the tokens carry the
  // tenant's own. The stand-in is Demo ID issuing as one tenant, its discovery rewritten.
  async function microsoftStandIn(tokenTenant: string, tidClaim: string) {
    const upstream = await startOidcUpstream({
      issuer: `https://login.microsoftonline.com/${tokenTenant}/v2.0`,
      clients: [{ client_id: '00000000-1111-2222-3333-444444444444', client_secret: 'ms-secret', redirect_uris: [REDIRECT_URI] }],
      // Any tenant administrator can set any address and Microsoft says nothing of its verification.
      users: [{ sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', tid: tidClaim }],
      extraClaims: { openid: ['tid'] },
      discoveryPath: '/common/v2.0/.well-known/openid-configuration',
      issInAuthorizationResponse: false,
    });
    upstream.misbehave = { discovery: (doc) => { doc.issuer = 'https://login.microsoftonline.com/{tenantid}/v2.0'; } };
    upstreams.push(upstream);
    return upstream;
  }
  afterAll(async () => { await Promise.all(upstreams.map((u) => u.close())); });

  const microsoft = (upstream: OidcUpstream, extra: Record<string, unknown> = {}) => client(
    { id: 'microsoft', preset: 'microsoft', client_id: '00000000-1111-2222-3333-444444444444', client_secret: 'ms-secret', ...extra },
    { routes: { 'https://login.microsoftonline.com': upstream.url } },
  );

  it('accepts a token whose issuer is the template filled with its tid, and never trusts its email', async () => {
    const upstream = await microsoftStandIn(tenant, tenant);
    const ms = microsoft(upstream);
    const { transaction, callback } = await signIn(ms);
    expect(await ms.complete(transaction, callback.params)).toMatchObject({
      provider: 'microsoft', email: 'ada@example.com', emailVerified: false, emailVerifiedClaimed: true, tenant,
    });
  });

  it('refuses a token whose tid is not the tenant in its issuer', async () => {
    const upstream = await microsoftStandIn(tenant, MICROSOFT_CONSUMER_TENANT);
    const ms = microsoft(upstream);
    const { transaction, callback } = await signIn(ms);
    const error = await expectCode(ms.complete(transaction, callback.params), 'invalid_id_token');
    expect(error.details.reason).toMatch(/iss/);
  });

  it('refuses a tenant outside allowed_tenants', async () => {
    const upstream = await microsoftStandIn(MICROSOFT_CONSUMER_TENANT, MICROSOFT_CONSUMER_TENANT);
    const ms = microsoft(upstream, { allowed_tenants: [tenant] });
    const { transaction, callback } = await signIn(ms);
    const error = await expectCode(ms.complete(transaction, callback.params), 'tenant_not_allowed');
    expect(error.details.reason).toContain(MICROSOFT_CONSUMER_TENANT);
  });
});

describe('preset github (OAuth 2.0)', () => {
  let github: GitHubLike;
  const octo = {
    id: 583231, login: 'octocat', name: null, email: 'octocat@users.noreply.github.com',
    emails: [
      { email: 'old@example.com', primary: false, verified: true, visibility: null },
      { email: 'Octo@Example.com', primary: true, verified: true, visibility: 'private' as const },
    ],
  };
  const routes = () => ({ 'https://github.com': github.url, 'https://api.github.com': github.url });
  const gh = () => client({ id: 'github', preset: 'github', client_id: 'Ov23liABCDEF', client_secret: { file: secretFile } }, { routes: routes() });
  let secretFile = '';

  beforeAll(async () => {
    github = await startGitHubLike({ clientId: 'Ov23liABCDEF', clientSecret: 'github-secret', user: octo });
    secretFile = `${mkdtempSync(`${tmpdir()}/parley-gh-`)}/secret`;
    writeFileSync(secretFile, 'github-secret\n');
  });
  afterAll(() => github.close());

  it('takes the numeric id, the login when there is no name, and the primary verified address', async () => {
    const upstream = gh();
    const { url, transaction, callback } = await signIn(upstream, { routes: routes() });
    expect(url.origin + url.pathname).toBe('https://github.com/login/oauth/authorize');
    expect(url.searchParams.get('scope')).toBe('read:user user:email');
    expect(url.searchParams.has('nonce')).toBe(false);
    expect(await upstream.complete(transaction, callback.params)).toEqual({
      provider: 'github', subject: '583231', email: 'octo@example.com', emailVerified: true, emailVerifiedClaimed: true, name: 'octocat',
    });
  });

  it('has no address when the primary one is not verified', async () => {
    github.signedIn = { ...octo, emails: [{ email: 'new@example.com', primary: true, verified: false, visibility: null }, octo.emails[0]!] };
    try {
      const upstream = gh();
      const { transaction, callback } = await signIn(upstream, { routes: routes() });
      const identity = await upstream.complete(transaction, callback.params);
      expect(identity.email).toBeUndefined();
      expect(identity.emailVerified).toBe(false);
    } finally {
      github.signedIn = octo;
    }
  });

  it('reads GitHub\'s errors answered with status 200, and its access_denied', async () => {
    const upstream = gh();
    const { transaction, callback } = await signIn(upstream, { routes: routes() });
    await upstream.complete(transaction, callback.params);
    const replay = await expectCode(upstream.complete(transaction, callback.params), 'invalid_response');
    expect(replay.details.upstreamError).toBe('bad_verification_code');

    github.deny = true;
    try {
      const denied = await signIn(upstream, { routes: routes() });
      await expectCode(upstream.complete(denied.transaction, denied.callback.params), 'access_denied');
    } finally {
      github.deny = false;
    }
  });

  it('is misconfigured when GitHub refuses the client secret', async () => {
    const wrong = `${mkdtempSync(`${tmpdir()}/parley-gh-`)}/secret`;
    writeFileSync(wrong, 'not-the-secret');
    const upstream = client({ id: 'github', preset: 'github', client_id: 'Ov23liABCDEF', client_secret: { file: wrong } }, { routes: routes() });
    const { transaction, callback } = await signIn(upstream, { routes: routes() });
    const error = await expectCode(upstream.complete(transaction, callback.params), 'misconfigured');
    expect(error.details.upstreamError).toBe('incorrect_client_credentials');
  });
});
