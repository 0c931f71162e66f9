import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { CsrfError } from './request-errors.ts';

// Double-submit token: a random value in a signed, httpOnly, SameSite=Lax cookie, repeated in a
// hidden form field. A cross-site page can neither read the cookie nor forge its signature. Over
// https the cookie is __Host- prefixed: a sibling subdomain cannot plant one of its own.
const cookieName = (ctx: Context) => (ctx.secure ? '__Host-parley.csrf' : 'parley.csrf');

// A token made during this request: a page asks for it more than once (its own form, the
// language switcher), and the cookie sent back must match every copy.
const issued = new WeakMap<object, string>();

/** The token the browser already holds, if it sent a valid one with this request. */
export function existingCsrfToken(ctx: Context): string | undefined {
  const existing = ctx.cookies.get(cookieName(ctx), { signed: true });
  return existing && /^[A-Za-z0-9_-]{43}$/.test(existing) ? existing : undefined;
}

export function csrfToken(ctx: Context, secure: boolean): string {
  const existing = existingCsrfToken(ctx);
  if (existing) return existing;
  const already = issued.get(ctx.req);
  if (already) return already;
  const token = randomBytes(32).toString('base64url');
  issued.set(ctx.req, token);
  ctx.cookies.set(cookieName(ctx), token, { signed: true, httpOnly: true, sameSite: 'lax', secure: secure || ctx.secure, path: '/', overwrite: true });
  return token;
}

export function checkCsrf(ctx: Context, submitted: string | null): void {
  const expected = ctx.cookies.get(cookieName(ctx), { signed: true });
  if (!expected || !submitted) throw new CsrfError();
  const a = Buffer.from(expected);
  const b = Buffer.from(submitted);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new CsrfError();
}
