import type { Context } from 'koa';

/** A request body larger than the limit: answered with 413 before anything is parsed. */
export class BodyTooLargeError extends Error {
  constructor() {
    super('request body too large');
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads an application/x-www-form-urlencoded body, refusing more than `limit` bytes. Only
 * Parley's own form routes use it; oidc-provider parses its endpoints itself.
 */
export async function readForm(ctx: Context, limit = 64 * 1024): Promise<URLSearchParams> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new BodyTooLargeError();
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLargeError();
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
