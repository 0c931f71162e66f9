import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import Provider, { errors, interactionPolicy, type AdapterPayload, type Configuration, type KoaContextWithOIDC, type ClientMetadata } from 'oidc-provider';
import type { JWK } from 'jose';
import { API_SCOPES, type Config, type ClientConfig } from '../config/schema.ts';
import { ACR_VALUES_SUPPORTED } from '../accounts/authentication-methods.ts';
import type { DB } from '../storage/database.ts';
import { DatabaseAdapter, findGrant } from './adapter.ts';
import { claimsOfScopes, SCOPE_CLAIMS, type FindClaimsAccount } from './claims.ts';
import { logoutParamsCheck, requestParamsCheck } from './request-params.ts';

// The only place that configures oidc-provider. Everything it needs from the rest of Parley
// arrives as plain functions, so the provider knows nothing of accounts tables or templates.

export interface ProviderPages {
  /** Renders an OAuth/OIDC error that cannot be redirected back to the app. */
  error(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string | undefined }, error: Error): void | Promise<void>;
  /** The "do you want to sign out?" page; `formHtml` is the provider's form with its xsrf token. */
  logout(ctx: KoaContextWithOIDC, formHtml: string): void | Promise<void>;
  loggedOut(ctx: KoaContextWithOIDC): void | Promise<void>;
}

export interface ProviderDependencies {
  /** Its clients are every client of config.clientsById: the apps and the preference center's own. */
  config: Config;
  db: DB;
  /**
   * Parley's clock: when stored artifacts (sessions, grants, codes, tokens) expire in the
   * database and which grant is still live. The provider checks the times inside tokens and
   * cookies (exp, iat) with the real time: keep the two together outside tests.
   */
  clock: () => Date;
  signingKeys: JWK[];
  /** The user and their claims, for every token and userinfo request (./claims.ts). */
  findAccount: FindClaimsAccount;
  pages: ProviderPages;
  /** Prompts right after login, before consent, in order (the second factor, then the terms). */
  promptsAfterLogin?: interactionPolicy.Prompt[];
  /** Prompts added after login and consent (the profiling prompt comes in here). */
  extraPrompts?: interactionPolicy.Prompt[];
  /**
   * Told after each authorization request (and its resume) that ends with a signed-in session:
   * its uid, account and the request (the sessions list in /account/security keeps where from).
   */
  onSessionSeen?: (seen: { sessionUid: string; accountId: string; req: IncomingMessage }) => Promise<void>;
  /** Koa middleware run inside the provider, around its own handling of each request. */
  middleware?: ((ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => Promise<void>)[];
  /**
   * Told of every request the provider answered with server_error, and of any other failure its
   * Koa app reports (one thrown past its error handler), but for connections a client broke off.
   */
  onServerError?: (error: Error) => void;
}

const OIDC_SCOPES = ['openid', 'offline_access', 'email', 'profile', 'preferences'];

const SUPPORTED_CLAIMS = claimsOfScopes(Object.keys(SCOPE_CLAIMS));

// Claims about the sign-in itself rather than the user, which no scope carries and no consent covers.
const SIGN_IN_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

/** The claim names a `claims` request parameter (OIDC Core 5.5) asks for, in both its parts. */
function claimsRequested(claims: { userinfo?: unknown; id_token?: unknown }): string[] {
  return [claims.userinfo, claims.id_token].flatMap((part) => (part && typeof part === 'object' ? Object.keys(part) : []));
}

/** The API scopes of a client's configured `scope`: the most its client_credentials tokens carry. */
export function apiScopesOf(client: ClientConfig | undefined): string[] {
  const configured = new Set((client?.scope ?? '').split(' '));
  return API_SCOPES.filter((s) => configured.has(s));
}

/**
 * The OIDC part of a client's configured `scope`, for oidc-provider's client metadata (which
 * refuses scopes it does not serve itself). A scope that lists only API scopes allows `openid`
 * alone, so "at most what is configured" holds for sign-ins too.
 */
function oidcScopeOf(client: ClientConfig): string | undefined {
  if (client.scope === undefined) return undefined;
  const oidc = client.scope.split(' ').filter((s) => OIDC_SCOPES.includes(s));
  return oidc.length > 0 ? oidc.join(' ') : 'openid';
}

function clientMetadata(client: ClientConfig): ClientMetadata {
  const confidential = client.client_secret !== undefined;
  return {
    client_id: client.client_id,
    client_name: client.name ?? client.client_id,
    ...(confidential ? { client_secret: client.client_secret } : {}),
    token_endpoint_auth_method: confidential ? 'client_secret_basic' : 'none',
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    grant_types: client.grant_types,
    // auth_time in every ID token, so apps can enforce their own freshness rules.
    require_auth_time: true,
    response_types: client.grant_types.includes('authorization_code') ? ['code'] : [],
    ...(oidcScopeOf(client) ? { scope: oidcScopeOf(client) } : {}),
  };
}

/**
 * The Grant a stored payload holds, as provider.Grant.find makes it from the same row (the same
 * checks of its expiry), for a grant read by a query of Parley's own rather than by its id.
 */
async function grantOf(provider: Provider, stored: { id: string; payload: AdapterPayload } | undefined): Promise<InstanceType<Provider['Grant']> | undefined> {
  if (!stored) return undefined;
  const Grant = provider.Grant as unknown as { verify(payload: AdapterPayload): Promise<AdapterPayload>; instantiate(payload: AdapterPayload): InstanceType<Provider['Grant']> };
  try {
    return Grant.instantiate(await Grant.verify({ ...stored.payload, jti: stored.id }));
  } catch {
    return undefined;
  }
}

/** A token request of the client_credentials grant, the only way to a management API token. */
function isClientCredentialsRequest(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';
}

type ProviderMiddleware = (ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => Promise<void>;

/**
 * oidc-provider builds every URL it publishes — discovery, the JWKS address, redirects, the
 * action of its forms — from `ctx.href` (lib/helpers/oidc_context.js, urlFor), that is from the
 * request's Host header, X-Forwarded-Host behind a proxy, or an absolute-form request target:
 * all written by the client, and a shared cache would hand what one client wrote to everyone.
 * The issuer is the one public address, so the request's own URL is read against it.
 */
function issuerAddressed(issuer: URL): ProviderMiddleware {
  return async (ctx, next) => {
    Object.defineProperty(ctx.request, 'href', {
      get() {
        const { pathname, search } = new URL(ctx.originalUrl, issuer.origin);
        return `${issuer.origin}${pathname}${search}`;
      },
    });
    await next();
  };
}

/**
 * On an http issuer (development) the session cookie goes out SameSite=Lax: browsers drop a
 * SameSite=None cookie without Secure, and Secure is not for http. oidc-provider insists on None
 * when POST is enabled, so its Set-Cookie is adjusted here, as the provider itself appends the
 * session's expiry (lib/shared/session.js). The cost, over http only: a cross-site POST to the
 * authorization or logout endpoint arrives without the session, so the user signs in again, and a
 * POSTed logout ends only the browser's cookie, not the session (GET requests are unaffected).
 */
function laxSessionCookieOverHttp(sessionCookieName: string): ProviderMiddleware {
  const sessionCookie = new RegExp(`^${sessionCookieName.replaceAll('.', '\\.')}(\\.sig)?=`);
  return async (ctx, next) => {
    await next();
    // Node keeps Set-Cookie as a list, whatever Koa's types say of headers.
    const header = ctx.response.get('set-cookie') as string | string[] | undefined;
    if (!header) return;
    ctx.set('set-cookie', [header].flat().map((line) => (sessionCookie.test(line) ? line.replace(/;\s*samesite=none/i, '; samesite=lax') : line)));
  };
}

export function createProvider(deps: ProviderDependencies): Provider {
  const { config, db, clock } = deps;
  const { clientsById, secureCookies } = config;
  const issuer = new URL(config.issuer);
  const cookie = { httpOnly: true, sameSite: 'lax' as const, signed: true, secure: secureCookies };
  const sessionCookieName = 'parley.session';

  // The steps of every sign-in, in order: login → mfa (second factor) → terms → consent →
  // profile: nobody who has proven half of who they are accepts terms or answers questions. oidc-provider checks them in this order after each finished step and stops at the
  // first that asks for the user (README "Terms of service" refers here).
  const policy = interactionPolicy.base();
  (deps.promptsAfterLogin ?? []).forEach((prompt, i) => policy.add(prompt, policy.findIndex((p) => p.name === 'login') + 1 + i));
  for (const prompt of deps.extraPrompts ?? []) policy.add(prompt);

  const configuration: Configuration = {
    adapter: (name: string) => new DatabaseAdapter(db, name, clock),
    clients: config.clients.map(clientMetadata),
    jwks: { keys: deps.signingKeys as never },
    // OIDC Core 3.1.2.1 and RP-Initiated Logout 1.0 §2: the authorization and logout endpoints
    // accept POST as well as GET. An app's form posts there from its own site, so the session
    // cookie (the "long" one, read at both endpoints) must travel on cross-site POSTs:
    // SameSite=None, which browsers honour only with Secure (see laxSessionCookieOverHttp for
    // http issuers). Nothing else loosens: the interaction and resume cookies ("short") and
    // Parley's CSRF cookie stay Lax, so a cross-site form can drive neither a sign-in step nor a
    // page of Parley's; the logout confirmation carries the provider's own xsrf token.
    enableHttpPostMethods: true,
    cookies: {
      keys: config.secrets.cookie_keys,
      names: { session: sessionCookieName, interaction: 'parley.interaction', resume: 'parley.resume' },
      long: { ...cookie, sameSite: 'none' },
      short: cookie,
    },
    scopes: OIDC_SCOPES,
    // The levels a sign-in reaches (README "What apps receive"), in discovery; apps ask for one with acr_values.
    acrValues: [...ACR_VALUES_SUPPORTED],
    // How the user signed in (acr, amr) goes in every ID token: the provider releases a claim of
    // no scope only when the request names it, so openid carries them (userinfo has neither).
    claims: { ...SCOPE_CLAIMS, openid: [...SCOPE_CLAIMS.openid!, 'acr', 'amr'] },
    responseTypes: ['code'],
    // No control characters, nothing overlong, in any authorization parameter (request-params.ts).
    // idp: the upstream provider an app asks to go straight to (checked by the sign-in page).
    extraParams: { ...requestParamsCheck, idp: () => {} },
    // PKCE with S256 (the only method oidc-provider 9 accepts) for every client unless relaxed.
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' || (clientsById.get(client.clientId)?.pkce_required ?? true) },
    allowOmittingSingleRegisteredRedirectUri: false,
    // Every refresh rotates the token; presenting a used one revokes the whole grant (reuse detection).
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: config.ttl.access_token,
      AuthorizationCode: config.ttl.authorization_code,
      IdToken: config.ttl.id_token,
      RefreshToken: config.ttl.refresh_token,
      Interaction: config.ttl.interaction,
      Session: config.ttl.session,
      Grant: config.ttl.grant,
      // Management API tokens (the only client_credentials tokens): api.access_token_ttl.
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.api.access_token_ttl,
    },
    features: {
      devInteractions: { enabled: false },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => deps.pages.logout(ctx, form),
        postLogoutSuccessSource: (ctx) => deps.pages.loggedOut(ctx),
      },
      userinfo: { enabled: true },
      // OIDC Core 5.5: apps may ask for claims by name. Each claim needs a scope the client may
      // ask for to carry it (as a scope outside the client's `scope` is refused), then the user's
      // consent on the consent screen; what answers fill is released by the same rule as under a
      // scope (findAccount below).
      claimsParameter: {
        enabled: true,
        assertClaimsParameter: (_ctx, claims, client) => {
          const allowed = claimsOfScopes(client.scope ? client.scope.split(' ') : OIDC_SCOPES);
          for (const claim of claimsRequested(claims)) {
            // Claims the provider does not serve are ignored, as OIDC Core 5.5 asks.
            if (SIGN_IN_CLAIMS.has(claim) || !SUPPORTED_CLAIMS.has(claim) || allowed.has(claim)) continue;
            throw new errors.InvalidRequest(`the claim "${claim}" is not carried by any scope this client may ask for`);
          }
        },
      },
      // Systems calling the management API (a CRM, a data platform) authenticate as themselves.
      clientCredentials: { enabled: true },
      // RFC 8707: the management API is the one resource server. Its tokens are JWTs signed with
      // the issuer's keys, verified by the API locally (src/oidc/api-tokens.ts), with scopes cut
      // to the client's configured `scope`. Sign-ins never get a token for it: user-delegated
      // access to other people's data is not something an app should be able to ask a user for.
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, _client, oneOf) => oneOf ?? (isClientCredentialsRequest(ctx) ? config.api.audience : undefined),
        useGrantedResource: () => false,
        getResourceServerInfo: (ctx, resourceIndicator, client) => {
          if (resourceIndicator !== config.api.audience || !isClientCredentialsRequest(ctx)) {
            throw new errors.InvalidTarget('unknown resource, or not available to this grant');
          }
          const scopes = apiScopesOf(clientsById.get(client.clientId));
          if (scopes.length === 0) throw new errors.InvalidTarget('this client may not call the management API');
          return {
            scope: scopes.join(' '),
            audience: config.api.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: config.api.access_token_ttl,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    discovery: {
      ui_locales_supported: config.locales.supported,
      claims_locales_supported: undefined,
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `${issuer.origin}/interaction/${interaction.uid}`,
    },
    // Browsers may call the token and userinfo endpoints only from the app's own origins.
    clientBasedCORS: (_ctx, origin, client) => {
      const registered = clientsById.get(client.clientId)?.redirect_uris ?? [];
      return registered.some((uri) => new URL(uri).origin === origin);
    },
    // The brand's own apps are not shown a consent screen: their grant covers what they ask. Any
    // other app is not asked again for a claim it names (the claims parameter) that a scope the
    // user already granted it carries: that was agreed to with the scope.
    loadExistingGrant: async (ctx) => {
      const { client, session, provider } = ctx.oidc;
      if (!client || !session) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      const existing = grantId ? await provider.Grant.find(grantId)
        // A returning user is not asked again in a new browser: consent belongs to the account.
        : session.accountId ? await grantOf(provider, await findGrant(db, session.accountId, client.clientId, clock())) : undefined;
      const { accountId } = session;
      const firstParty = clientsById.get(client.clientId)?.first_party ?? false;
      if (!accountId || (!firstParty && existing?.accountId !== accountId)) return existing;
      const grant = existing?.accountId === accountId ? existing : new provider.Grant({ clientId: client.clientId, accountId });
      const grantedScopes = new Set(grant.getOIDCScope().split(' '));
      const grantedClaims = new Set(grant.getOIDCClaims());
      const agreed = (claim: string) => firstParty || claimsOfScopes(grantedScopes).has(claim);
      const scopes = firstParty ? [...ctx.oidc.requestParamOIDCScopes].filter((scope) => !grantedScopes.has(scope)) : [];
      const claims = [...ctx.oidc.requestParamClaims].filter((claim) => !grantedClaims.has(claim) && !SIGN_IN_CLAIMS.has(claim) && agreed(claim));
      if (scopes.length > 0) grant.addOIDCScope(scopes.join(' '));
      if (claims.length > 0) grant.addOIDCClaims(claims);
      if (scopes.length > 0 || claims.length > 0 || !grant.jti) await grant.save();
      return grant;
    },
    // Every token and userinfo request: the claims are assembled in ./claims.ts.
    findAccount: (ctx, sub) => deps.findAccount(sub, ctx.oidc.client?.clientId, ctx.req),
    renderError: (ctx, out, error) => deps.pages.error(ctx, out, error),
    // Parley answers with its own pages; don't leak the library's identity in errors.
    conformIdTokenClaims: true,
  };

  const provider = new Provider(config.issuer, configuration);
  // Behind a TLS-terminating proxy, X-Forwarded-Proto tells the provider the request came over
  // https, so it may send its Secure cookies. (Its URLs come from the issuer either way.)
  provider.proxy = config.proxy;
  provider.use(issuerAddressed(issuer));
  if (!secureCookies) provider.use(laxSessionCookieOverHttp(sessionCookieName));
  provider.use(logoutParamsCheck(provider.pathFor('end_session'), deps.pages));
  for (const middleware of deps.middleware ?? []) provider.use(middleware);
  if (deps.onSessionSeen) {
    const seen = deps.onSessionSeen;
    provider.use(async (ctx, next) => {
      await next();
      const session = ctx.oidc?.session;
      if (session?.accountId && session.uid && (ctx.oidc.route === 'authorization' || ctx.oidc.route === 'resume')) {
        await seen({ sessionUid: session.uid, accountId: session.accountId, req: ctx.req });
      }
    });
  }
  provider.on('server_error', (ctx: KoaContextWithOIDC, error: Error) => {
    (ctx.state as { serverError?: Error }).serverError = error;
    deps.onServerError?.(error);
  });
  // The provider is a Koa app of its own, and Koa prints to stderr what the app reports as an
  // error when nobody listens for it: a client cutting a POST /token body short ("Parse Error")
  // ends up there. With a listener nothing is printed; what matters goes to the logger.
  (provider as unknown as EventEmitter).on('error', (error: Error) => {
    if (!brokenOffByClient(error)) deps.onServerError?.(error);
  });
  return provider;
}

/**
 * A connection the client broke off (a body cut short, a reset, bytes the HTTP parser cannot
 * read): the client's doing, and the access log has the request's status.
 */
function brokenOffByClient(error: Error & { code?: unknown }): boolean {
  const code = typeof error.code === 'string' ? error.code : '';
  return code.startsWith('HPE_') || ['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code);
}

export type { Provider, KoaContextWithOIDC };
export { interactionPolicy };
