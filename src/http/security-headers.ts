import type { Middleware } from 'koa';
import type { Config } from '../config/schema.ts';

const SHA256_SOURCE = /'sha256-[A-Za-z0-9+/]+=*'/g;

// A strict policy for every response, including the provider's: no scripts (but for the hashes
// of the provider's self-submitting pages, providerScriptHashes below), styles only from our own
// stylesheet, no framing. Forms may post to us, and Chrome also checks form-action against the
// redirects that follow a form post, so the apps' callback origins are allowed too (form_post
// responses post straight to them).
export function securityHeaders(config: Config): Middleware {
  const origins = new Set<string>();
  for (const client of config.clients) {
    for (const uri of [...client.redirect_uris, ...client.post_logout_redirect_uris]) origins.add(new URL(uri).origin);
  }
  origins.delete(new URL(config.issuer).origin);
  const formAction = ["'self'", ...origins].join(' ');
  const csp = [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self' data:",
    `form-action ${formAction}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  const https = new URL(config.issuer).protocol === 'https:';

  return async (ctx, next) => {
    ctx.set('Content-Security-Policy', csp);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    // Verification and reset links carry tokens in the URL; never send them on as a Referer.
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    if (https) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
  };
}

/**
 * A page of ours that loads our own scripts (the passkey forms: /assets/webauthn.js and
 * /assets/passkeys.js) may run scripts from our origin and fetch from it; no inline script, no
 * other origin. Every other page keeps the policy without any script-src.
 */
export function allowOwnScripts(ctx: { response: { get(name: string): unknown }; set(name: string, value: string): void }): void {
  const policy = String(ctx.response.get('Content-Security-Policy') ?? '');
  if (!policy || /script-src/.test(policy)) return;
  ctx.set('Content-Security-Policy', `${policy}; script-src 'self'; connect-src 'self'`);
}

/**
 * A few of oidc-provider's pages submit themselves with one inline script: response_mode=form_post,
 * the sign-out that precedes signing in as someone else, and a logout request without a session.
 * The provider adds that script's sha256 to the response's CSP, but only to a script-src directive
 * already there (lib/helpers/script_src_sha.js). Run inside the provider, this gives its responses
 * one that allows nothing, and afterwards keeps exactly the hashes the provider added: those pages
 * may run their own script and nothing else, and every other response keeps the policy without
 * any script-src (default-src 'none' then forbids scripts).
 */
export function providerScriptHashes(): Middleware {
  return async (ctx, next) => {
    const policy = ctx.response.get('Content-Security-Policy');
    if (!policy) return next();
    ctx.set('Content-Security-Policy', `${policy}; script-src 'none'`);
    try {
      await next();
    } finally {
      const hashes = String(ctx.response.get('Content-Security-Policy')).match(SHA256_SOURCE) ?? [];
      ctx.set('Content-Security-Policy', hashes.length > 0 ? `${policy}; script-src ${hashes.join(' ')}` : policy);
    }
  };
}
