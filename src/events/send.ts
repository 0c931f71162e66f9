// One delivery attempt over HTTP, classified: delivered (2xx), gone (410), or failed with what the
// log and the dead-letter list should say. Redirects are not followed: a receiver that moved must
// be reconfigured, and following one would send signed personal data to a place nobody chose.
import { parseRetryAfter } from './retry.ts';

export interface OutgoingRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'gone'; status: 410; error: string }
  | { kind: 'failed'; status: number | null; error: string; retryAfterSeconds?: number | undefined };

export type Fetch = typeof globalThis.fetch;

/** Enough of a receiver's error body to say what went wrong; the rest is not read. */
const ERROR_SNIPPET_BYTES = 512;
/** A success body is read (so the connection can be reused) up to this, then dropped. */
const SUCCESS_BODY_BYTES = 64 * 1024;

export async function attemptDelivery(fetch: Fetch, request: OutgoingRequest, timeoutMs: number, now: () => Date): Promise<AttemptOutcome> {
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: 'POST', headers: request.headers, body: request.body, redirect: 'manual',
      // Covers the whole exchange: connecting, the response headers and reading the body.
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return { kind: 'failed', status: null, error: describeFetchError(error, timeoutMs) };
  }
  const { status } = response;
  if (status >= 200 && status < 300) {
    await readBody(response, SUCCESS_BODY_BYTES);
    return { kind: 'delivered', status };
  }
  const body = summarize(await readBody(response, ERROR_SNIPPET_BYTES));
  if (status === 410) return { kind: 'gone', status, error: `HTTP 410 Gone${body ? `: ${body}` : ''}` };
  if (status >= 300 && status < 400) {
    const location = response.headers.get('location');
    return { kind: 'failed', status, error: `HTTP ${status}: redirects are not followed${location ? ` (to ${summarize(location)})` : ''}` };
  }
  // 503 may carry Retry-After too (RFC 9110 §10.2.3); both are honoured as a floor.
  const retryAfterSeconds = status === 429 || status === 503 ? parseRetryAfter(response.headers.get('retry-after'), now()) : undefined;
  return { kind: 'failed', status, error: `HTTP ${status}${body ? `: ${body}` : ''}`, retryAfterSeconds };
}

export function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no response within ${timeoutMs / 1000}s`;
  }
  // undici reports "fetch failed" and keeps the reason (ECONNREFUSED, a TLS error...) in `cause`.
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause === 'object') {
    const code = typeof cause.code === 'string' ? cause.code : undefined;
    const message = typeof cause.message === 'string' ? cause.message : undefined;
    if (code || message) return `request failed: ${[code, message && message !== code ? message : undefined].filter(Boolean).join(' ')}`;
  }
  return `request failed: ${error instanceof Error ? error.message : String(error)}`;
}

/** Reads at most `limit` bytes of the body; a body that breaks off or times out gives what came. */
export async function readBody(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= limit) {
        await reader.cancel();
        break;
      }
    }
  } catch {
    // Aborted or reset mid-body: the status is what counts.
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** One line, short: it goes into logs and the dead-letter list. */
function summarize(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
