import type { Context } from 'koa';
import type { ProviderPages } from '../oidc/provider.ts';
import type { PageResponder, RequestState } from './context.ts';
import { errorSummary, isDatabaseUnavailable } from '../storage/database.ts';
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
    error(ctx, out) {
      adopt(ctx as unknown as Context);
      const c = ctx as unknown as Context;
      // The description is the provider's fixed text about the request (e.g. "redirect_uri did
      // not match any of the client's registered redirect_uris"); it never contains user data
      // beyond what the app itself sent, and the template escapes it.
      pages.page(c, 'message', {
        title: pages.t(c, 'title.error'),
        message: pages.t(c, 'error.oidc', { description: out.error_description ?? out.error }),
        requestId: c.state.requestId,
      }, c.status >= 400 ? c.status : 400);
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
 * is unreachable, the provider's generic 500 becomes a 503 the client may retry. Most failures
 * reach the provider's error handlers (and its server_error event); a few, such as saving the
 * session after the authorization handlers are done, are thrown past them to here.
 */
export function providerUnavailableMiddleware(pages: PageResponder) {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    let thrown: unknown;
    try {
      await next();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      thrown = error;
      adoptState(ctx);
      (ctx.state as Partial<RequestState>).log?.error({ err: errorSummary(error) }, 'database unavailable');
    }
    const failure = thrown ?? (ctx.state as { serverError?: unknown }).serverError;
    if (!failure || !isDatabaseUnavailable(failure)) return;
    ctx.set('Retry-After', '5');
    const json = thrown ? ctx.accepts('html', 'json') === 'json' : ctx.type === 'application/json';
    if (json) {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; retry shortly' };
    } else {
      adoptState(ctx);
      pages.page(ctx, 'message', { title: pages.t(ctx, 'title.error'), message: pages.t(ctx, 'error.unavailable') }, 503);
    }
  };
}
