import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { state, type PageResponder } from './context.ts';

// Probes and scrapers reach a node over plain http inside the network; these set no cookies.
const PLAIN_HTTP_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Why a request reached a node whose issuer is https over plain http: a deployment mistake, most likely. */
function causeOf(ctx: Context): { key: string; hint: string } {
  const forwarded = ctx.get('x-forwarded-proto');
  if (state(ctx).ignoredForwarded?.includes('x-forwarded-proto')) {
    return { key: 'proxy_peer_not_trusted', hint: `the request carries X-Forwarded-Proto from ${ctx.req.socket.remoteAddress ?? 'a peer'}, which is not in forwarded_for.trusted_proxies, so it is ignored; add the proxy's address there` };
  }
  if (!ctx.app.proxy && forwarded) {
    return { key: 'proxy_not_trusted', hint: 'the request carries X-Forwarded-Proto, which is ignored because proxy is false; set proxy: true if a TLS-terminating proxy is in front of Parley' };
  }
  if (ctx.app.proxy && !forwarded) {
    return { key: 'proxy_sends_no_proto', hint: 'proxy is true but the request has no X-Forwarded-Proto; make the TLS-terminating proxy send X-Forwarded-Proto: https' };
  }
  if (ctx.app.proxy) {
    return { key: 'proxy_forwards_http', hint: 'the proxy forwarded a plain http request (X-Forwarded-Proto is not https); have it redirect http to https itself' };
  }
  return { key: 'no_tls', hint: 'there is no TLS here and no trusted proxy; put Parley behind a TLS-terminating proxy with proxy: true (or use an http issuer for local development)' };
}

/**
 * A node whose issuer is https answers only requests that came over https, directly or through
 * a trusted proxy's X-Forwarded-Proto. Anything else would fail on its first cookie, which must
 * be Secure, with a 500. Pages (GET, HEAD) are redirected to the same path at the issuer; other
 * requests get a 400 that says why. The cause is logged once per kind: it is the operator's to
 * fix, and a log line per request would drown everything else.
 */
export function httpsOnly(deps: { config: Config; logger: Logger; pages: PageResponder }): Middleware {
  const issuer = new URL(deps.config.issuer);
  if (issuer.protocol !== 'https:') return (_ctx, next) => next();
  const base = deps.config.baseUrl;
  const logged = new Set<string>();
  return async (ctx, next) => {
    if (ctx.secure || PLAIN_HTTP_PATHS.has(ctx.path)) return next();
    const cause = causeOf(ctx);
    if (!logged.has(cause.key)) {
      logged.add(cause.key);
      deps.logger.warn({ cause: cause.key, method: ctx.method, path: ctx.path },
        `plain http reached a node whose issuer is ${issuer.origin}: ${cause.hint}. Pages are redirected to https, other requests refused with 400 (logged once per cause)`);
    }
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      // The issuer's own origin, never the Host header: ctx.url is only a path and query here.
      ctx.status = 308;
      ctx.redirect(`${base}${ctx.url}`);
      return;
    }
    if (ctx.accepts('json', 'html') === 'html') {
      deps.pages.page(ctx, 'message', { title: deps.pages.t(ctx, 'title.error'), message: deps.pages.t(ctx, 'error.https_required', { url: issuer.origin }) }, 400);
      return;
    }
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: `this service only answers over https: use ${issuer.origin}` };
  };
}
