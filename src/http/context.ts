import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { LayoutData, PageData, PageName } from '../views/pages.ts';
import { csrfToken, existingCsrfToken } from './csrf.ts';
import { LOCALE_SWITCH_PATH, returnAddress } from './locale.ts';
import { errorMessage, type Problem } from './errors.ts';
import { allowOwnScripts } from './security-headers.ts';

/** What every Parley route finds in ctx.state, set by the first middlewares. */
export interface RequestState {
  requestId: string;
  /** The client's address, as the proxies Parley trusts report it (ctx.ip is the same). */
  ip: string;
  /** Forwarded headers a peer that is not a trusted proxy sent, and that were ignored. */
  ignoredForwarded?: readonly string[];
  /** For a request oidc-provider answered: the route template its router matched. */
  providerRoute?: string;
  log: Logger;
  locale: string;
  /** The language the person chose with the switcher (a session cookie), if any. */
  chosenLocale?: string | undefined;
  /** Where the language switcher returns to, when the page itself cannot be fetched again. */
  returnTo?: string | undefined;
}

export function state(ctx: Context): RequestState {
  return ctx.state as RequestState;
}

export interface Renderer {
  render<P extends PageName>(page: P, locale: string, data: PageData[P], layout?: LayoutData): string;
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
  const secure = config.secureCookies;
  return {
    page(ctx, name, data, status = 200) {
      ctx.status = status;
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      // Plain http reaching an https issuer gets a page that sets no cookie (one would have to be
      // Secure), so it has no switcher: its post would be refused over plain http anyway. Nor
      // does the answer to a post that came without the CSRF cookie (a cross-site form, refused):
      // minting a token there would replace the one the person's open pages hold.
      const mintable = ctx.method === 'GET' || ctx.method === 'HEAD' || existingCsrfToken(ctx) !== undefined;
      const localeSwitch = (secure && !ctx.secure) || !mintable ? undefined
        : { action: LOCALE_SWITCH_PATH, csrfToken: csrfToken(ctx, secure), returnTo: returnAddress(ctx) };
      const html = renderer.render(name, state(ctx).locale, data, localeSwitch ? { localeSwitch } : {});
      if (html.includes('<script src="/assets/')) allowOwnScripts(ctx);
      ctx.body = html;
    },
    csrf: (ctx) => csrfToken(ctx, secure),
    t: (ctx, key, vars) => renderer.t(state(ctx).locale, key, vars),
    errorMessage: (ctx, problem) => errorMessage((key, vars) => renderer.t(state(ctx).locale, key, vars), problem, config),
  };
}
