import { timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { z } from 'zod';
import { isValidEmail, normalizeEmail } from '../accounts/email.ts';
import { AppleClientSecret } from './apple-secret.ts';
import { UpstreamError, type UpstreamErrorCode, type UpstreamStage } from './errors.ts';
import { TENANT_PLACEHOLDER, isSecureOrLoopback } from './presets.ts';
import type { UpstreamSettings } from './settings.ts';

// The client side of "Continue with …": one UpstreamClient per configured provider, built on
// openid-client. It starts an authorization (state, nonce, PKCE S256) and completes it from the
// callback into one normalized UpstreamIdentity, or throws an UpstreamError with a code from a
// closed list. It stores nothing: the transaction it hands out is kept by the caller (it must
// come back from the same browser) and given back to `complete`.

/** Who the provider says the person is, in one shape whatever the provider. */
export interface UpstreamIdentity {
  /** The configured provider id. */
  provider: string;
  /** The provider's stable id for the person: the key of a linked identity. */
  subject: string;
  /** Normalized (as account emails are); absent when the provider gave none, or not an address. */
  email?: string;
  /** True only when the provider said the address is verified AND it is trusted to say so. */
  emailVerified: boolean;
  /** What the provider said about the address, trusted or not (kept with the linked identity). */
  emailVerifiedClaimed: boolean;
  /** Apple's private relay (…@privaterelay.appleid.com): verified, forwards only from registered domains. */
  emailIsPrivateRelay?: true;
  name?: string;
  locale?: string;
  /** Microsoft: the tenant (`tid`) the person signed in with. */
  tenant?: string;
}

/**
 * What must survive between sending the browser to the provider and its coming back: to be kept
 * where only this browser can bring it back (a signed, HttpOnly cookie) and tied to the Parley
 * interaction that was waiting. Plain JSON.
 */
export interface UpstreamTransaction {
  v: 1;
  provider: string;
  /** The Parley interaction the sign-in belongs to. */
  interactionUid: string;
  state: string;
  /** oidc only. */
  nonce?: string;
  codeVerifier: string;
  /** Seconds since the epoch. */
  createdAt: number;
}

const transactionSchema = z.strictObject({
  v: z.literal(1),
  provider: z.string().min(1).max(64),
  interactionUid: z.string().min(1).max(128),
  state: z.string().min(16).max(256),
  nonce: z.string().min(16).max(256).optional(),
  codeVerifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
  createdAt: z.number().int().nonnegative(),
});

/** A transaction read back from wherever the caller kept it, or undefined if it is not one. */
export function parseUpstreamTransaction(value: unknown): UpstreamTransaction | undefined {
  const result = transactionSchema.safeParse(value);
  if (!result.success) return undefined;
  const { nonce, ...rest } = result.data;
  return nonce === undefined ? rest : { ...rest, nonce };
}

export interface UpstreamClientOptions {
  /** Parley's callback URL for this provider, exactly as registered there. */
  redirectUri: string;
  now?: () => Date;
  /**
   * How requests reach the outside world (default: the global fetch). Tests give one that sends
   * the providers' real host names to stand-ins on loopback.
   */
  fetch?: typeof fetch;
  /** Seconds a transaction may wait for its callback (default 10 minutes: time to sign up at the provider). */
  transactionTtl?: number;
  /** Seconds a discovered configuration is reused before it is read again (default an hour). */
  discoveryTtl?: number;
}

/** Refused before any byte is sent: an upstream URL that is neither https nor on this machine. */
class InsecureUrlError extends TypeError {}

/**
 * The one way requests leave for a provider. openid-client's own https-only rule is switched off
 * (allowInsecureRequests) because a development upstream (Demo ID) runs on http://localhost; this
 * keeps the rule for everything else, including endpoints that a discovery document names.
 */
function guardedFetch(fetchImpl: typeof fetch): oidc.CustomFetch {
  return (url, options) => {
    const target = new URL(url);
    if (!isSecureOrLoopback(target)) {
      return Promise.reject(new InsecureUrlError(`refused to send a request to ${target.protocol}//${target.hostname}: only https, or http to this machine`));
    }
    const headers = { 'user-agent': 'Parley', ...options.headers };
    return fetchImpl(url, { ...options, headers } as RequestInit);
  };
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The first of `names` present in `claims` with a usable value. */
function pick(claims: Record<string, unknown>, names: string[]): unknown {
  for (const name of names) {
    const value = claims[name];
    if (value !== undefined && value !== null && value !== '') return value;
  }
  return undefined;
}

/** Apple has sent booleans as the strings "true" and "false". */
function isTrue(value: unknown): boolean {
  return value === true || value === 'true';
}

function text(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.normalize('NFC').trim();
  return trimmed === '' ? undefined : trimmed.slice(0, max);
}

const LOCALE = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$/;

/**
 * Apple's posted `user` field, sent on the first authorization only:
 * {"name":{"firstName":"…","lastName":"…"},"email":"…"}. Unsigned, so only the name is taken,
 * for display; the address comes from the signed ID token.
 */
export function nameFromAppleUserField(raw: string | null | undefined): string | undefined {
  if (!raw || raw.length > 4096) return undefined;
  try {
    const user = JSON.parse(raw) as { name?: { firstName?: unknown; lastName?: unknown } } | null;
    const parts = [text(user?.name?.firstName, 100), text(user?.name?.lastName, 100)].filter((p) => p !== undefined);
    return parts.length > 0 ? parts.join(' ') : undefined;
  } catch {
    return undefined;
  }
}

/** An OAuth error object carried in the provider's answer, if any: only its code and description. */
function oauthErrorIn(error: unknown): { error: string; description?: string } | undefined {
  for (let node: unknown = error, depth = 0; node && depth < 4; node = (node as { cause?: unknown }).cause, depth++) {
    if (node instanceof oidc.ResponseBodyError || node instanceof oidc.AuthorizationResponseError) {
      return { error: node.error, ...(node.error_description ? { description: node.error_description } : {}) };
    }
    // GitHub answers token errors with status 200; openid-client then finds no access_token.
    const body = (node as { body?: unknown }).body;
    if (body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') {
      const { error: code, error_description: description } = body as { error: string; error_description?: unknown };
      return { error: code, ...(typeof description === 'string' ? { description } : {}) };
    }
  }
  return undefined;
}

function statusIn(error: unknown): number | undefined {
  for (let node: unknown = error, depth = 0; node && depth < 4; node = (node as { cause?: unknown }).cause, depth++) {
    if (node instanceof Response) return node.status;
    if (node instanceof oidc.ResponseBodyError) return node.status;
  }
  return undefined;
}

// GitHub names two of these its own way: incorrect_client_credentials, redirect_uri_mismatch.
const CREDENTIALS_REFUSED = new Set([
  'invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'unsupported_response_type',
  'incorrect_client_credentials', 'redirect_uri_mismatch',
]);
const PROVIDER_UNAVAILABLE = new Set(['server_error', 'temporarily_unavailable']);
const ID_TOKEN_CODES = new Set(['OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'OAUTH_KEY_SELECTION_FAILED']);

/** The claims found about the person; `address` when an emails endpoint, not the claims, says which address. */
interface FoundClaims {
  claims: Record<string, unknown>;
  address?: { email?: unknown; verified: boolean };
}

/** Turns whatever openid-client or fetch threw into one of the domain's error codes. */
export function toUpstreamError(error: unknown, provider: string, stage: UpstreamStage): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const make = (code: UpstreamErrorCode, reason: string, extra: { upstreamError?: string; upstreamErrorDescription?: string; status?: number } = {}) =>
    new UpstreamError(code, { provider, stage, reason, ...extra });
  if (error instanceof InsecureUrlError) return make('misconfigured', error.message);
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return make('timeout', 'no answer in time');
  const oauthError = oauthErrorIn(error);
  const status = statusIn(error);
  const extra = {
    ...(oauthError ? { upstreamError: oauthError.error.slice(0, 64) } : {}),
    ...(oauthError?.description ? { upstreamErrorDescription: oauthError.description.slice(0, 200) } : {}),
    ...(status !== undefined ? { status } : {}),
  };
  if (oauthError) {
    if (CREDENTIALS_REFUSED.has(oauthError.error)) return make('misconfigured', 'the provider refused Parley\'s client credentials or request', extra);
    if (PROVIDER_UNAVAILABLE.has(oauthError.error) || (status ?? 0) >= 500) return make('upstream_unavailable', 'the provider reported an error on its side', extra);
    return make('invalid_response', 'the provider refused the request', extra);
  }
  if (error instanceof oidc.ClientError) {
    const inner = error.cause instanceof Error ? error.cause.message : undefined;
    const reason = inner && inner !== error.message ? `${error.message}: ${inner}` : error.message;
    if (error.code === 'OAUTH_TIMEOUT' || error.code === 'OAUTH_ABORT') return make('timeout', 'no answer in time');
    if (status !== undefined && status >= 500) return make('upstream_unavailable', reason, extra);
    if (stage === 'discovery' && error.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') return make('misconfigured', reason, extra);
    if (stage === 'token' && (ID_TOKEN_CODES.has(error.code ?? '') || /\bJWT\b|ID Token/i.test(reason))) return make('invalid_id_token', reason, extra);
    return make('invalid_response', reason, extra);
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    // Refused, reset, no such host: the system error code says which.
    const code = (error.cause as { code?: unknown } | undefined)?.code;
    return make('upstream_unavailable', `cannot reach the provider (${typeof code === 'string' ? code : 'network error'})`);
  }
  // openid-client's argument checks: metadata or settings it cannot work with.
  if (error instanceof TypeError) return make('misconfigured', error.message);
  if (error instanceof SyntaxError) return make('invalid_response', 'the provider sent something that is not JSON');
  return make('invalid_response', `unexpected ${typeof name === 'string' ? name : 'error'}`);
}

export class UpstreamClient {
  readonly settings: UpstreamSettings;
  readonly #options: Required<Omit<UpstreamClientOptions, 'fetch'>>;
  readonly #fetch: oidc.CustomFetch;
  readonly #appleSecret: AppleClientSecret | undefined;
  /** The Apple client secret last obtained, read by the (synchronous) client authentication hook. */
  #appleSecretValue = '';
  #configuration: { value: oidc.Configuration; until: number } | undefined;
  #discovering: Promise<oidc.Configuration> | undefined;

  constructor(settings: UpstreamSettings, options: UpstreamClientOptions) {
    this.settings = settings;
    this.#options = {
      redirectUri: options.redirectUri,
      now: options.now ?? (() => new Date()),
      transactionTtl: options.transactionTtl ?? 600,
      discoveryTtl: options.discoveryTtl ?? 3600,
    };
    this.#fetch = guardedFetch(options.fetch ?? fetch);
    const auth = settings.clientAuthentication;
    this.#appleSecret = auth.method === 'apple_jwt'
      ? new AppleClientSecret({ teamId: auth.teamId, keyId: auth.keyId, clientId: settings.clientId, privateKey: auth.privateKey, now: this.#options.now })
      : undefined;
  }

  get id(): string { return this.settings.id; }

  /**
   * Starts a sign-in: the URL to send the browser to, and the transaction to keep until it comes
   * back. For an OpenID provider this reads its discovery document (cached).
   */
  async begin(request: { interactionUid: string; loginHint?: string }): Promise<{ url: URL; transaction: UpstreamTransaction }> {
    const config = await this.#discovered();
    const { settings } = this;
    const transaction: UpstreamTransaction = {
      v: 1,
      provider: settings.id,
      interactionUid: request.interactionUid,
      state: oidc.randomState(),
      ...(settings.type === 'oidc' ? { nonce: oidc.randomNonce() } : {}),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      createdAt: Math.floor(this.#options.now().getTime() / 1000),
    };
    const loginHint = request.loginHint?.trim();
    const url = oidc.buildAuthorizationUrl(config, {
      ...settings.authorizationParams,
      redirect_uri: this.#options.redirectUri,
      scope: settings.scopes.join(' '),
      state: transaction.state,
      ...(transaction.nonce ? { nonce: transaction.nonce } : {}),
      code_challenge: await oidc.calculatePKCECodeChallenge(transaction.codeVerifier),
      code_challenge_method: 'S256',
      ...(settings.responseMode ? { response_mode: settings.responseMode } : {}),
      ...(loginHint && settings.loginHintParameter ? { [settings.loginHintParameter]: loginHint.slice(0, 256) } : {}),
    });
    return { url, transaction };
  }

  /**
   * Completes a sign-in from the parameters the provider sent back (the callback's query, or its
   * form body for form_post) and the transaction `begin` gave. Checks the transaction, the state,
   * the provider's error if it sent one; exchanges the code with PKCE; has openid-client validate
   * the ID token (signature against the provider's keys, issuer, audience, nonce, expiry).
   */
  async complete(transaction: UpstreamTransaction, callback: URLSearchParams | Record<string, string>): Promise<UpstreamIdentity> {
    const params = new URLSearchParams(callback);
    const { settings } = this;
    const fail = (code: UpstreamErrorCode, stage: UpstreamStage, reason: string, extra: object = {}): never => {
      throw new UpstreamError(code, { provider: settings.id, stage, reason, ...extra });
    };
    if (transaction.provider !== settings.id) fail('state_mismatch', 'transaction', `the transaction was started for ${transaction.provider}`);
    const now = Math.floor(this.#options.now().getTime() / 1000);
    if (now - transaction.createdAt > this.#options.transactionTtl || transaction.createdAt - now > 60) {
      fail('expired', 'transaction', 'the transaction is too old');
    }
    const state = params.get('state');
    // The state is checked before anything else the callback says, an error included: whatever
    // does not come back with this browser's state was not sent by the provider for this sign-in.
    if (state === null || !sameText(state, transaction.state)) fail('state_mismatch', 'callback', state === null ? 'the callback has no state' : 'the callback state is not the transaction\'s');
    const error = params.get('error');
    if (error !== null) {
      const description = params.get('error_description');
      const extra = { upstreamError: error.slice(0, 64), ...(description ? { upstreamErrorDescription: description.slice(0, 200) } : {}) };
      // Apple says user_cancelled_authorize where OAuth says access_denied.
      if (error === 'access_denied' || error === 'user_cancelled_authorize') fail('access_denied', 'callback', 'the person did not allow the sign-in', extra);
      if (PROVIDER_UNAVAILABLE.has(error)) fail('upstream_unavailable', 'callback', 'the provider reported an error on its side', extra);
      if (CREDENTIALS_REFUSED.has(error)) fail('misconfigured', 'callback', 'the provider refused the authorization request', extra);
      fail('invalid_response', 'callback', 'the provider answered with an error', extra);
    }
    if (!params.get('code')) fail('invalid_response', 'callback', 'the callback has no code');
    if (settings.type === 'oidc' && transaction.nonce === undefined) fail('state_mismatch', 'transaction', 'the transaction has no nonce');

    const config = await this.#discovered();
    // Only what the authorization response is made of goes to openid-client; Apple's extra `user`
    // field (and anything else) stays out of its checks.
    const current = new URL(this.#options.redirectUri);
    for (const name of ['code', 'state', 'iss']) {
      const value = params.get(name);
      if (value !== null) current.searchParams.set(name, value);
    }
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      if (this.#appleSecret) this.#appleSecretValue = await this.#appleSecret.value();
      tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: transaction.codeVerifier,
        expectedState: transaction.state,
        ...(settings.type === 'oidc' ? { expectedNonce: transaction.nonce!, idTokenExpected: true } : {}),
      });
    } catch (cause) {
      throw toUpstreamError(cause, settings.id, 'token');
    }

    const found = settings.type === 'oidc'
      ? { claims: await this.#oidcClaims(config, tokens) }
      : await this.#oauth2Claims(config, tokens.access_token);
    return this.#identity(found, params.get('user'));
  }

  async #oidcClaims(config: oidc.Configuration, tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): Promise<Record<string, unknown>> {
    const { settings } = this;
    const idToken = tokens.claims();
    if (!idToken) throw new UpstreamError('invalid_id_token', { provider: settings.id, stage: 'token', reason: 'no ID token' });
    const issuer = config.serverMetadata().issuer;
    if (issuer.includes(TENANT_PLACEHOLDER) || settings.preset === 'microsoft') {
      // Microsoft's multi-tenant issuer: the token's iss must be the template with its own tid.
      // openid-client checks this for login.microsoftonline.com; it is checked again here so the
      // rule does not hang on a library detail, and the tenant is then held to allowed_tenants.
      const tid = idToken.tid;
      if (typeof tid !== 'string' || idToken.iss !== issuer.replace(TENANT_PLACEHOLDER, tid)) {
        throw new UpstreamError('invalid_id_token', { provider: settings.id, stage: 'token', reason: 'the issuer does not match the token\'s tenant (tid)' });
      }
      if (settings.allowedTenants.length > 0 && !settings.allowedTenants.includes(tid)) {
        throw new UpstreamError('tenant_not_allowed', { provider: settings.id, stage: 'token', reason: `tenant ${tid} is not in allowed_tenants` });
      }
    }
    const claims: Record<string, unknown> = { ...idToken };
    const missing = (names: string[]) => names.length > 0 && pick(claims, names) === undefined;
    const userinfoEndpoint = config.serverMetadata().userinfo_endpoint;
    if (userinfoEndpoint && (missing(settings.claims.email) || missing(settings.claims.name))) {
      try {
        // openid-client checks that the userinfo `sub` is the ID token's.
        const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, idToken.sub);
        // The signed ID token wins over the userinfo answer where both have a claim.
        return { ...userinfo, ...claims };
      } catch (cause) {
        throw toUpstreamError(cause, settings.id, 'userinfo');
      }
    }
    return claims;
  }

  async #oauth2Claims(config: oidc.Configuration, accessToken: string): Promise<FoundClaims> {
    const { settings } = this;
    const endpoints = settings.endpoints!;
    const user = await this.#getJson(config, accessToken, endpoints.userinfo_endpoint, 'userinfo');
    if (!user || typeof user !== 'object' || Array.isArray(user)) {
      throw new UpstreamError('invalid_response', { provider: settings.id, stage: 'userinfo', reason: 'the userinfo answer is not a JSON object' });
    }
    if (!endpoints.emails_endpoint) return { claims: user as Record<string, unknown> };
    // GitHub: the primary address, and only if GitHub verified it. The userinfo `email` is the
    // public one the person chose to show, which says nothing about verification.
    const emails = await this.#getJson(config, accessToken, endpoints.emails_endpoint, 'emails');
    const entries = Array.isArray(emails) ? emails as { email?: unknown; primary?: unknown; verified?: unknown }[] : [];
    const primary = entries.find((e) => e && e.primary === true && e.verified === true && typeof e.email === 'string');
    return { claims: user as Record<string, unknown>, address: primary ? { email: primary.email, verified: true } : { verified: false } };
  }

  async #getJson(config: oidc.Configuration, accessToken: string, url: string, stage: UpstreamStage): Promise<unknown> {
    try {
      const response = await oidc.fetchProtectedResource(config, accessToken, new URL(url), 'GET', undefined, new Headers({ accept: 'application/json' }));
      if (!response.ok) {
        await response.body?.cancel();
        throw new UpstreamError(response.status >= 500 ? 'upstream_unavailable' : 'invalid_response', {
          provider: this.settings.id, stage, reason: `the provider answered ${response.status}`, status: response.status,
        });
      }
      return await response.json();
    } catch (cause) {
      throw toUpstreamError(cause, this.settings.id, stage);
    }
  }

  #identity({ claims, address }: FoundClaims, appleUserField: string | null): UpstreamIdentity {
    const { settings } = this;
    const mapping = settings.claims;
    const rawSubject = pick(claims, mapping.subject);
    const subject = typeof rawSubject === 'number' && Number.isSafeInteger(rawSubject) ? String(rawSubject) : text(rawSubject, 255);
    if (subject === undefined) {
      throw new UpstreamError('invalid_response', { provider: settings.id, stage: 'userinfo', reason: `no subject in ${mapping.subject.join(' or ')}` });
    }
    const rawEmail = text(address ? address.email : pick(claims, mapping.email), 320);
    const email = rawEmail === undefined ? undefined : normalizeEmail(rawEmail);
    const usableEmail = email !== undefined && isValidEmail(email) ? email : undefined;
    const claimed = usableEmail !== undefined && (address ? address.verified : isTrue(pick(claims, mapping.email_verified)));
    const given = text(claims.given_name, 100);
    const family = text(claims.family_name, 100);
    const name = text(pick(claims, mapping.name), 200)
      ?? ([given, family].some((p) => p !== undefined) ? [given, family].filter((p) => p !== undefined).join(' ') : undefined)
      ?? (settings.preset === 'apple' ? nameFromAppleUserField(appleUserField) : undefined);
    const rawLocale = text(pick(claims, mapping.locale), 35);
    const locale = rawLocale !== undefined && LOCALE.test(rawLocale) ? rawLocale.replaceAll('_', '-') : undefined;
    const privateRelay = settings.preset === 'apple' && usableEmail !== undefined
      && (isTrue(claims.is_private_email) || usableEmail.endsWith('@privaterelay.appleid.com'));
    return {
      provider: settings.id,
      subject,
      ...(usableEmail !== undefined ? { email: usableEmail } : {}),
      emailVerified: claimed && settings.trustEmailVerified,
      emailVerifiedClaimed: claimed,
      ...(privateRelay ? { emailIsPrivateRelay: true as const } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(locale !== undefined ? { locale } : {}),
      ...(typeof claims.tid === 'string' && settings.preset === 'microsoft' ? { tenant: claims.tid } : {}),
    };
  }

  /** The provider's configuration: discovered (oidc) or built from the settings (oauth2); reused for discoveryTtl. */
  async #discovered(): Promise<oidc.Configuration> {
    const now = this.#options.now().getTime();
    if (this.#configuration && this.#configuration.until > now) return this.#configuration.value;
    // Concurrent sign-ins wait for one discovery; a failed one is not kept, so the next sign-in tries again.
    this.#discovering ??= this.#discover()
      .then((value) => {
        this.#configuration = { value, until: this.#options.now().getTime() + this.#options.discoveryTtl * 1000 };
        return value;
      })
      .finally(() => { this.#discovering = undefined; });
    return this.#discovering;
  }

  async #discover(): Promise<oidc.Configuration> {
    const { settings } = this;
    const auth = this.#clientAuthentication();
    if (settings.type === 'oauth2') {
      const endpoints = settings.endpoints!;
      const config = new oidc.Configuration({
        issuer: new URL(endpoints.authorization_endpoint).origin,
        authorization_endpoint: endpoints.authorization_endpoint,
        token_endpoint: endpoints.token_endpoint,
      }, settings.clientId, undefined, auth);
      config[oidc.customFetch] = this.#fetch;
      config.timeout = settings.timeout;
      oidc.allowInsecureRequests(config);
      return config;
    }
    try {
      return await oidc.discovery(new URL(settings.issuer!), settings.clientId, undefined, auth, {
        [oidc.customFetch]: this.#fetch,
        timeout: settings.timeout,
        // openid-client checks the ID token's signature against the provider's JWKS only when
        // asked: OIDC lets a client skip it for a token received straight from the token endpoint
        // over TLS, but a development provider on plain http has no TLS to lean on, and a check
        // that always runs is one less rule that depends on deployment.
        execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks],
      });
    } catch (cause) {
      throw toUpstreamError(cause, settings.id, 'discovery');
    }
  }

  #clientAuthentication(): oidc.ClientAuth {
    const auth = this.settings.clientAuthentication;
    switch (auth.method) {
      case 'client_secret_post': return oidc.ClientSecretPost(auth.secret.reveal());
      case 'none': return oidc.None();
      case 'apple_jwt':
        // Apple takes the client secret in the form body (client_secret_post); its value is the
        // JWT obtained just before the token request.
        return (_as, client, body) => {
          body.set('client_id', client.client_id);
          body.set('client_secret', this.#appleSecretValue);
        };
    }
  }
}

/** One client per configured provider, by id. */
export function createUpstreamClients(
  settings: UpstreamSettings[],
  options: Omit<UpstreamClientOptions, 'redirectUri'> & { redirectUri(providerId: string): string },
): Map<string, UpstreamClient> {
  return new Map(settings.map((s) => [s.id, new UpstreamClient(s, { ...options, redirectUri: options.redirectUri(s.id) })]));
}
