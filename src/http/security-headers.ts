import type { Middleware } from 'koa';
import type { Config } from '../config/schema.ts';

// A strict policy for every response, including the provider's: no scripts at all, styles only
// from our own stylesheet, no framing. Forms may post to us, and Chrome also checks form-action
// against the redirects that follow a form post, so the apps' callback origins are allowed too.
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
