import type { Context } from 'koa';
import { BodyTooLargeError, IncompleteBodyError } from './request-errors.ts';

/** Reads the whole body, refusing more than `limit` bytes. */
export async function readBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new BodyTooLargeError(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of ctx.req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new BodyTooLargeError(limit);
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw error;
    // The request stream fails only when its connection does ("aborted", ECONNRESET), which
    // is not to be mistaken for the database's connection failing. Node destroys the socket
    // with ERR_HTTP_REQUEST_TIMEOUT when it is the one that cut the request off.
    const socketError = ctx.req.socket?.errored as { code?: string } | null | undefined;
    throw new IncompleteBodyError(socketError?.code === 'ERR_HTTP_REQUEST_TIMEOUT');
  }
  return Buffer.concat(chunks);
}

/**
 * Reads an application/x-www-form-urlencoded body, refusing more than `limit` bytes. Only
 * Parley's own form routes use it; oidc-provider parses its endpoints itself.
 */
export async function readForm(ctx: Context, limit = 64 * 1024): Promise<URLSearchParams> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new BodyTooLargeError(limit);
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  return new URLSearchParams((await readBody(ctx, limit)).toString('utf8'));
}
