// Which language a request is answered in, and the switcher that lets a person choose it.
//
// The order: the person's own choice on a page (the switcher, kept in a cookie for the browser
// session), then the app's ui_locales, then the locale saved on the signed-in account, then the
// browser's Accept-Language, then locales.default. The choice comes first because it is the only
// one the person stated here and now: an app's ui_locales is the app's guess, and a switcher that
// an app's hint could overrule would do nothing on that app's sign-in pages.
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Accounts } from '../accounts/service.ts';
import type { Config } from '../config/schema.ts';
import type { SessionReader } from '../oidc/sessions.ts';
import { negotiateLocale, pickLocale } from '../views/i18n.ts';
import { readForm } from './body.ts';
import type { RequestState } from './context.ts';
import { checkCsrf } from './csrf.ts';

/** Where the switcher posts. */
export const LOCALE_SWITCH_PATH = '/locale';

// Over https the cookie is __Host- prefixed, so a sibling subdomain cannot choose for the user.
const cookieName = (ctx: Context) => (ctx.secure ? '__Host-parley.locale' : 'parley.locale');

/** The language the person chose with the switcher in this browser session, if it is still supported. */
export function chosenLocale(ctx: Context, supported: readonly string[]): string | undefined {
  const value = ctx.cookies.get(cookieName(ctx));
  return value !== undefined && supported.includes(value) ? value : undefined;
}

// context.ts renders the switcher with returnAddress; reading the state through the type alone
// keeps the two modules from importing each other.
const state = (ctx: Context) => ctx.state as RequestState;

const queryUiLocales = (ctx: Context) => (typeof ctx.query.ui_locales === 'string' ? ctx.query.ui_locales : undefined);

/** The locale of a request before anything is known of its account: the choice, ui_locales in the query, Accept-Language. */
export function initialLocale(ctx: Context, config: Config, chosen: string | undefined): string {
  return pickLocale({
    chosen, uiLocales: queryUiLocales(ctx), acceptLanguage: ctx.get('accept-language') || undefined,
    supported: config.locales.supported, fallback: config.locales.default,
  });
}

/**
 * Settles the request's locale once the route knows more: the ui_locales of the authorization
 * request behind an interaction, and the signed-in account (read only when it can matter).
 */
export async function settleLocale(ctx: Context, config: Config, known: {
  uiLocales?: string | undefined;
  accountLocale?: (() => Promise<string | null | undefined>) | undefined;
}): Promise<string> {
  const s = state(ctx);
  s.locale = await negotiateLocale({
    chosen: s.chosenLocale, uiLocales: known.uiLocales ?? queryUiLocales(ctx), accountLocale: known.accountLocale,
    acceptLanguage: ctx.get('accept-language') || undefined,
    supported: config.locales.supported, fallback: config.locales.default,
  });
  return s.locale;
}

const MAX_RETURN_LENGTH = 2048;

/**
 * The page the switcher comes back to: the page itself when it was a GET; after a form post, the
 * page that form belongs to (a sign-in step returns to its interaction). A route whose page
 * cannot be fetched again (a one-time link) names a better place in state.returnTo.
 */
export function returnAddress(ctx: Context): string {
  const s = state(ctx);
  if (s.returnTo) return s.returnTo;
  if ((ctx.method === 'GET' || ctx.method === 'HEAD') && ctx.originalUrl.length <= MAX_RETURN_LENGTH) return ctx.originalUrl;
  // The register step has a page of its own; every other step's page is the interaction's.
  const interaction = /^\/interaction\/[A-Za-z0-9_-]+(?:\/register$)?/.exec(ctx.path);
  return interaction ? interaction[0] : ctx.path;
}

/** Only a path on this site: never another origin, a scheme-relative URL or a backslash trick. */
function safeReturn(value: string | null): string {
  if (!value || value.length > MAX_RETURN_LENGTH || !/^\/(?![/\\])[^\s\\]*$/.test(value)) return '/account';
  return value;
}

export interface LocaleRouteDeps {
  config: Config;
  accounts: Pick<Accounts, 'setLocale'>;
  sessions: SessionReader;
}

/**
 * POST /locale: remembers the choice for the browser session and, when someone is signed in, on
 * their account (it becomes their `locale` claim and the language of their mail); then goes back.
 * A form post with the CSRF token, not a link: it changes the account.
 */
export function localeRoutes({ config, accounts, sessions }: LocaleRouteDeps): Router {
  const secure = config.secureCookies;
  const router = new Router();
  router.post(LOCALE_SWITCH_PATH, async (ctx) => {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    // A language that is not offered changes nothing; the person is simply taken back.
    const locale = config.locales.supported.find((l) => l === body.get('locale'));
    if (locale) {
      // No maxAge: a session cookie, gone when the browser closes; the account keeps it for longer.
      ctx.cookies.set(cookieName(ctx), locale, { httpOnly: true, sameSite: 'lax', secure: secure || ctx.secure, path: '/', overwrite: true });
      const signedIn = await sessions.current(ctx.req, ctx.res, ctx.secure);
      if (signedIn) await accounts.setLocale(signedIn.accountId, locale);
    }
    ctx.status = 303;
    ctx.redirect(safeReturn(body.get('return')));
  });
  return router;
}
