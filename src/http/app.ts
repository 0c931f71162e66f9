import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import Koa, { type Context, type Middleware } from 'koa';
import { Router } from '@koa/router';
import type { Logger } from 'pino';
import type { Accounts } from '../accounts/service.ts';
import type { Config } from '../config/schema.ts';
import type { Interactions } from '../oidc/interactions.ts';
import { addressMatcher, clientAddressOf, isTrustedPeer, type ForwardedForRule } from '../ip-addresses.ts';
import type { Storage } from '../storage/database.ts';
import { ASSETS_DIR } from '../views/render.ts';
import { accountRoutes } from './pages/email-links.ts';
import { state, type PageResponder, type RequestState } from './context.ts';
import { classify, logFailure, retryAfter, type Problem } from './errors.ts';
import { demoRoutes } from './pages/demo.ts';
import { healthRoutes } from './health-routes.ts';
import { chosenLocale, initialLocale, localeRoutes } from './locale.ts';
import { interactionRoutes } from './interaction/routes.ts';
import { upstreamCallbackRoutes, type Upstreams } from './interaction/upstream.ts';
import { accountIdentityRoutes } from './pages/account-identities.ts';
import type { SecondFactorServices } from './interaction/second-factor.ts';
import { signInMethodsRoutes, type SignInMethodsDeps } from './pages/sign-in-methods.ts';
import type { Terms } from '../consent/terms.ts';
import { createProfileScreen, previewRoutes } from './interaction/profile-screen.ts';
import type { Profiling } from '../screensets/profiling.ts';
import type { ScreenSetLibrary } from '../screensets/library.ts';
import type { SessionReader } from '../oidc/sessions.ts';
import type { PreferenceCenter } from '../consent/preference-center.ts';
import { preferenceCenterRoutes } from './pages/preference-center.ts';
import { routeLabel, type Metrics } from './metrics.ts';
import { securityHeaders } from './security-headers.ts';
import { httpsOnly } from './https-only.ts';
import { buildOpenApiDocument } from './api/openapi.ts';
import { apiOperations, apiRoutes, type ApiDependencies } from './api/routes.ts';
import { statsPageRoutes } from './pages/stats.ts';

export interface HttpDependencies {
  config: Config;
  logger: Logger;
  storage: Storage;
  accounts: Accounts;
  interactions: Interactions;
  pages: PageResponder;
  metrics: Metrics;
  profiling: Profiling;
  screenSets: ScreenSetLibrary;
  sessions: SessionReader;
  preferenceCenter: PreferenceCenter;
  /** The terms documents: accepted at registration and, after a new version, at sign-in. */
  terms: Terms;
  /** The upstream identity providers ("Continue with …"). */
  upstreams: Upstreams;
  /** Second factors in the sign-in: authenticator-app and recovery codes. */
  credentials: SecondFactorServices;
  /** What /account/security changes besides the account (passkeys, the security notices). */
  signInMethods: Pick<SignInMethodsDeps, 'passkeys' | 'notices' | 'revokeSessions'>;
  /** The management API at /api/v1 and the operators' /stats page. */
  api: Omit<ApiDependencies, 'config' | 'openApi'>;
  clock: () => Date;
  /** oidc-provider's request handler: everything Parley's own routes do not answer. */
  providerCallback: (req: IncomingMessage, res: import('node:http').ServerResponse) => Promise<void>;
  isReady(): Promise<{ ready: boolean; checks: Record<string, string> }>;
}

// The provider runs in its own Koa context; it finds the request's id, logger and locale here.
const requestStates = new WeakMap<IncomingMessage, RequestState>();

export function requestStateOf(req: IncomingMessage): RequestState | undefined {
  return requestStates.get(req);
}

function forwardedForRule(config: Config): ForwardedForRule | undefined {
  if (!config.proxy) return undefined;
  const { hops, trusted_proxies: trusted } = config.forwarded_for;
  return trusted.length > 0 ? { isTrustedProxy: addressMatcher(trusted) } : { hops };
}

// What a proxy says about the request it received besides the client's address: the scheme and
// host the client used (read by Koa and by the provider when proxy is true), and its request id.
const FORWARDED_HEADERS = ['x-forwarded-proto', 'x-forwarded-host', 'x-request-id'] as const;

function requestContext(config: Config, logger: Logger): Middleware {
  const forwardedFor = forwardedForRule(config);
  return async (ctx, next) => {
    const peer = ctx.req.socket.remoteAddress ?? '';
    // Believed only from a peer the X-Forwarded-For rule trusts: from anyone else they are taken
    // off the request, so that neither Parley nor the provider reads them.
    const ignoredForwarded = config.proxy && !isTrustedPeer(peer, forwardedFor)
      ? FORWARDED_HEADERS.filter((name) => ctx.req.headers[name] !== undefined) : [];
    for (const name of ignoredForwarded) delete ctx.req.headers[name];
    // Koa's own ctx.ip would be the leftmost X-Forwarded-For entry, which the client writes.
    ctx.request.ip = clientAddressOf(peer, ctx.get('x-forwarded-for') || undefined, forwardedFor);
    const forwarded = config.proxy ? ctx.get('x-request-id') : '';
    const requestId = /^[A-Za-z0-9._-]{8,128}$/.test(forwarded) ? forwarded : randomUUID();
    const chosen = chosenLocale(ctx, config.locales.supported);
    const s: RequestState = {
      requestId,
      ip: ctx.ip,
      ...(ignoredForwarded.length > 0 ? { ignoredForwarded } : {}),
      log: logger.child({ req_id: requestId }),
      chosenLocale: chosen,
      // Routes that learn more (an interaction's ui_locales, the signed-in account) settle it again.
      locale: initialLocale(ctx, config, chosen),
    };
    Object.assign(ctx.state, s);
    requestStates.set(ctx.req, s);
    ctx.set('X-Request-Id', requestId);
    await next();
  };
}

function accessLog(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      // Delegated provider requests answer on ctx.res directly; read the status from there.
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      const route = routeLabel(ctx, requestStates.get(ctx.req)?.providerRoute);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ method: ctx.method, route, status: String(status) });
      metrics.latency.observe({ method: ctx.method, route }, seconds);
      // The route, not the path: paths carry account ids and interaction uids, query strings
      // codes, tokens and states.
      state(ctx).log.info({ method: ctx.method, route, status, ms: Math.round(seconds * 1000), ip: ctx.ip }, 'request');
    }
  };
}

const NOT_FOUND: Problem<'request'> = { module: 'request', code: 'not_found' };

/**
 * Maps every failure to a page through the one table (errors.ts); users never see a stack trace,
 * and their mistakes are never a 500.
 */
function errorPages(pages: PageResponder): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined && ctx.respond !== false) {
        pages.page(ctx, 'message', { title: pages.t(ctx, 'title.error'), message: pages.errorMessage(ctx, NOT_FOUND) }, 404);
      }
    } catch (error) {
      const failure = classify(error);
      logFailure(state(ctx).log, failure);
      ctx.status = failure.status;
      if (failure.entry.silent) return;
      const wait = retryAfter(failure);
      if (wait) ctx.set('Retry-After', wait);
      pages.page(ctx, 'message', {
        title: pages.t(ctx, 'title.error'), message: pages.errorMessage(ctx, failure), requestId: state(ctx).requestId,
      }, failure.status);
    }
  };
}

// The package exports only its module entry points; the bundle is next to them
// (tests/unit/webauthn-browser-bundle.test.ts keeps this path honest).
const WEBAUTHN_BROWSER_BUNDLE = path.join(path.dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '../dist/bundle/index.umd.min.js');

function staticAssets(): Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/assets/') || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    // @simplewebauthn/browser's one-file bundle, from our own origin (the CSP allows no other).
    const file = ctx.path === '/assets/webauthn.js' ? WEBAUTHN_BROWSER_BUNDLE : path.join(ASSETS_DIR, path.normalize(ctx.path.slice('/assets/'.length)));
    if (file !== WEBAUTHN_BROWSER_BUNDLE && !file.startsWith(ASSETS_DIR + path.sep)) return next();
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return next();
    ctx.type = path.extname(file);
    ctx.length = info.size;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = createReadStream(file);
  };
}

export function createHttpApp(deps: HttpDependencies): Koa {
  const { config, logger, metrics, pages } = deps;
  const app = new Koa({ proxy: config.proxy, keys: [...config.secrets.cookie_keys] });
  app.silent = true;

  let openApiDocument: Record<string, unknown> | undefined;
  const api = {
    config, ...deps.api,
    openApi: () => (openApiDocument ??= buildOpenApiDocument(config, apiOperations(api))),
  };

  const linkedProviders = accountIdentityRoutes({ config, sessions: deps.sessions, clock: deps.clock, upstreams: deps.upstreams, pages });
  const router = new Router();
  for (const routes of [
    apiRoutes(api),
    statsPageRoutes({
      config, stats: deps.api.stats, sessions: deps.sessions, pages, clock: deps.clock,
      findAccount: (accountId) => deps.accounts.findById(accountId), screenSets: () => deps.screenSets.current(),
    }),
    healthRoutes({ config, metrics, isReady: deps.isReady }),
    interactionRoutes({
      config, accounts: deps.accounts, interactions: deps.interactions, pages, metrics, terms: deps.terms, clock: deps.clock,
      upstreams: deps.upstreams,
      credentials: deps.credentials,
      profileScreen: createProfileScreen({ config, profiling: deps.profiling, interactions: deps.interactions, pages, metrics, clock: deps.clock }),
    }),
    accountRoutes({ config, accounts: deps.accounts, pages }),
    upstreamCallbackRoutes({ upstreams: deps.upstreams }),
    localeRoutes({ config, accounts: deps.accounts, sessions: deps.sessions }),
    signInMethodsRoutes({
      config, db: deps.storage.db, accounts: deps.accounts, sessions: deps.sessions, pages, clock: deps.clock,
      totp: deps.credentials.totp, recoveryCodes: deps.credentials.recoveryCodes, ...deps.signInMethods,
    }),
    linkedProviders.router,
    preferenceCenterRoutes({
      config, accounts: deps.accounts, center: deps.preferenceCenter, sessions: deps.sessions, pages, clock: deps.clock, terms: deps.terms,
      identities: linkedProviders.section,
    }),
    ...(config.demo.enabled ? [demoRoutes({ config, pages })] : []),
    ...(config.env === 'development' || config.screensets.preview
      ? [previewRoutes({ config, library: deps.screenSets, pages, clock: deps.clock })] : []),
  ]) {
    router.use(routes.routes(), routes.allowedMethods());
  }

  app.use(requestContext(config, logger));
  app.use(accessLog(metrics));
  app.use(securityHeaders(config));
  app.use(httpsOnly({ config, logger, pages }));
  app.use(errorPages(pages));
  app.use(staticAssets());
  app.use(router.routes());
  app.use(async (ctx: Context) => {
    if (ctx._matchedRoute) return;
    ctx.respond = false;
    await deps.providerCallback(ctx.req, ctx.res);
  });
  return app;
}
