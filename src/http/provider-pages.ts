import type { Context } from 'koa';
import type { ProviderPages } from '../oidc/provider.ts';
import type { PageResponder, RequestState } from './context.ts';
import { isDatabaseUnavailable } from '../storage/database.ts';
import { classified, classify, logFailure, problemBody, retryAfter, type Classified } from './errors.ts';
import { requestStateOf } from './app.ts';

function adoptState(ctx: Context) {
  Object.assign(ctx.state, requestStateOf(ctx.req) ?? {});
}

// The pages oidc-provider shows itself (errors it cannot redirect, sign-out), rendered with
// Parley's templates. They run in the provider's Koa context, so the request's state is
// looked up by its Node request.
export function providerPages(pages: PageResponder, fallbackLocale: string): ProviderPages {
  const adopt = (ctx: Context) => {
    Object.assign(ctx.state, { locale: fallbackLocale, requestId: '' }, requestStateOf(ctx.req));
  };
  return {
    error(ctx, out, error) {
      adopt(ctx as unknown as Context);
      const c = ctx as unknown as Context;
      // A request the provider refuses keeps the protocol's status, and the page shows the
      // provider's description: its fixed text about the request (e.g. "redirect_uri did not
      // match any of the client's registered redirect_uris"), which never contains user data
      // beyond what the app itself sent, and which the template escapes. A failure of its own is
      // looked up like any other (an unreachable database is a 503 to retry).
      const failure: Classified = c.status >= 500
        ? classify(error)
        : { ...classified({ module: 'request', code: 'protocol_error', params: { description: out.error_description ?? out.error } }, error), status: c.status >= 400 ? c.status : 400 };
      const wait = retryAfter(failure);
      if (wait) c.set('Retry-After', wait);
      pages.page(c, 'message', { title: pages.t(c, 'title.error'), message: pages.errorMessage(c, failure), requestId: c.state.requestId }, failure.status);
    },
    logout(ctx, formHtml) {
      adopt(ctx as unknown as Context);
      const clientName = ctx.oidc.client?.clientName ?? undefined;
      pages.page(ctx as unknown as Context, 'logout', { formHtml, clientName });
    },
    loggedOut(ctx) {
      adopt(ctx as unknown as Context);
      const clientName = ctx.oidc.client?.clientName ?? undefined;
      pages.page(ctx as unknown as Context, 'logged_out', { clientName });
    },
  };
}

/**
 * Runs first inside the provider's own middleware stack: gives it the client address Parley
 * found (its own ctx.ip would trust the client-written end of X-Forwarded-For), and notes the
 * route template its router matched, for metrics and the access log.
 */
export function providerRequestMiddleware() {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    const request = requestStateOf(ctx.req);
    if (request) ctx.request.ip = request.ip;
    try {
      await next();
    } finally {
      if (request && typeof ctx._matchedRoute === 'string') request.providerRoute = ctx._matchedRoute;
    }
  };
}

/**
 * Runs inside the provider's own middleware stack: when a request failed because the database
 * is unreachable, the provider's generic 500 becomes the table's answer to it, a 503 the client
 * may retry. Most failures reach the provider's error handlers (and its server_error event); a
 * few, such as saving the session after the authorization handlers are done, are thrown past them
 * to here.
 */
export function providerUnavailableMiddleware(pages: PageResponder) {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    let thrown: unknown;
    try {
      await next();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      thrown = error;
    }
    const failed = thrown ?? (ctx.state as { serverError?: unknown }).serverError;
    if (!failed) return;
    const failure = classify(failed);
    if (failure.module !== 'storage' || failure.code !== 'database_unavailable') return;
    adoptState(ctx);
    // A failure the provider saw was logged by its server_error event; one thrown past it was not.
    const log = (ctx.state as Partial<RequestState>).log;
    if (thrown && log) logFailure(log, failure);
    const wait = retryAfter(failure);
    if (wait) ctx.set('Retry-After', wait);
    const json = thrown ? ctx.accepts('html', 'json') === 'json' : ctx.type === 'application/json';
    if (json) {
      ctx.status = failure.status;
      ctx.body = problemBody(failure, (ctx.state as Partial<RequestState>).requestId ?? '');
    } else {
      pages.page(ctx, 'message', { title: pages.t(ctx, 'title.error'), message: pages.errorMessage(ctx, failure) }, failure.status);
    }
  };
}
