import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { ProviderPages } from './provider.ts';

// What the parameters of an authorization or logout request may hold. The provider stores them
// with the interaction and the session as jsonb, which cannot hold NUL: a NUL in `state` used to
// fail that write and answer 500. No parameter of the protocol carries control characters (RFC
// 6749 appendix A: `state` is printable ASCII; the others are tokens, URIs, locales, hints), and
// none needs to be long. A request over these limits is the app's mistake: invalid_request.

/** The longest value any parameter may have: state, nonce, login_hint, scope, ... */
export const MAX_PARAM_LENGTH = 2048;

/** Parameters that carry a token or a JSON document, and may be longer. */
const LONGER_PARAMS: Readonly<Record<string, number>> = { id_token_hint: 8192, claims: 8192, request: 8192 };

// JSON may be laid out on lines (a `claims` request); nothing else may hold even those.
const CONTROL = /\p{Cc}/u;
const CONTROL_BUT_LAYOUT = /[^\P{Cc}\t\n\r]/u;
const JSON_PARAMS = new Set(['claims']);

/** The first problem with a request's parameters, as the error_description to answer with. */
export function requestParamProblem(params: Readonly<Record<string, unknown>>): string | undefined {
  for (const [name, value] of Object.entries(params)) {
    if (typeof value !== 'string') continue;
    if ((JSON_PARAMS.has(name) ? CONTROL_BUT_LAYOUT : CONTROL).test(value)) return `${name} must not contain control characters`;
    const max = LONGER_PARAMS[name] ?? MAX_PARAM_LENGTH;
    if (value.length > max) return `${name} is too long: at most ${max} characters`;
  }
  return undefined;
}

/**
 * For oidc-provider's `extraParams`: its validators run inside the authorization endpoint after
 * the client and the redirect_uri are checked and before anything is stored, and what they throw
 * is answered the standard way: redirected to the app with error=invalid_request when the
 * redirect_uri is the client's, shown on the error page otherwise. A validator is registered
 * under a parameter's name; this one looks at every parameter of the request, so it is
 * registered once, under `client_id`, which every request has (and which the provider accepts
 * anyway, so registering it allows nothing new).
 */
export const requestParamsCheck = {
  client_id: (ctx: KoaContextWithOIDC) => {
    const problem = requestParamProblem(ctx.oidc.params ?? {});
    if (problem) throw new errors.InvalidRequest(problem);
  },
};

/**
 * The same rule at the logout endpoint, which keeps `state` in the session and has no such hook:
 * a provider middleware, run before the provider routes the request, over its query string. A
 * refused request is answered as the provider answers its own logout errors: the error page, or
 * JSON for a client that does not ask for HTML.
 */
export function logoutParamsCheck(endSessionPath: string, pages: Pick<ProviderPages, 'error'>) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => {
    const problem = ctx.method === 'GET' && ctx.path === endSessionPath ? requestParamProblem(ctx.query) : undefined;
    if (!problem) return next();
    const error = new errors.InvalidRequest(problem);
    const out = { error: error.error, error_description: problem };
    ctx.status = error.statusCode;
    ctx.set('Cache-Control', 'no-store');
    if (ctx.accepts('json', 'html') === 'html') return pages.error(ctx, out, error);
    ctx.body = out;
  };
}
