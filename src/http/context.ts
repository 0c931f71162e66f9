import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { PageData, PageName } from '../views/pages.ts';
import { csrfToken } from './csrf.ts';
import { errorMessage, type Problem } from './errors.ts';

/** What every Parley route finds in ctx.state, set by the first middlewares. */
export interface RequestState {
  requestId: string;
  /** The client's address, as the proxies Parley trusts report it (ctx.ip is the same). */
  ip: string;
  /** For a request oidc-provider answered: the route template its router matched. */
  providerRoute?: string;
  log: Logger;
  locale: string;
}

export function state(ctx: Context): RequestState {
  return ctx.state as RequestState;
}

export interface Renderer {
  render<P extends PageName>(page: P, locale: string, data: PageData[P]): string;
  t(locale: string, key: string, vars?: Record<string, string | number>): string;
}

export interface PageResponder {
  /** Renders a page in the request's locale; never cached, since pages carry CSRF tokens. */
  page<P extends PageName>(ctx: Context, name: P, data: PageData[P], status?: number): void;
  /** A page form's CSRF token, creating the cookie when needed. */
  csrf(ctx: Context): string;
  t(ctx: Context, key: string, vars?: Record<string, string | number>): string;
  /** What a person reads about an error code (errors.ts has the table), in the request's locale. */
  errorMessage(ctx: Context, problem: Problem): string;
}

export function createPageResponder(renderer: Renderer, config: Config): PageResponder {
  const secure = new URL(config.issuer).protocol === 'https:';
  return {
    page(ctx, name, data, status = 200) {
      ctx.status = status;
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = renderer.render(name, state(ctx).locale, data);
    },
    csrf: (ctx) => csrfToken(ctx, secure),
    t: (ctx, key, vars) => renderer.t(state(ctx).locale, key, vars),
    errorMessage: (ctx, problem) => errorMessage((key, vars) => renderer.t(state(ctx).locale, key, vars), problem, config),
  };
}
