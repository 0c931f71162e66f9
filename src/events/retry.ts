// When to try a failed delivery again, and when to give up. Pure functions of their inputs; the
// random source is a parameter so that tests can pin it.

export interface RetryPolicy {
  /** The first retry waits up to this many seconds; each further one up to twice as long... */
  baseSeconds: number;
  /** ...but never more than this. */
  maxSeconds: number;
  /** Retrying stops this long after the event was created (or replayed). */
  retryForSeconds: number;
}

export type Schedule =
  | { status: 'pending'; nextAttemptAt: Date }
  | { status: 'dead'; reason: string };

/**
 * "Full jitter": a uniformly random wait between 0 and the exponential ceiling, so that receivers
 * coming back after an outage are not hit by every node's retries at the same instant.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export function backoffSeconds(attempt: number, policy: Pick<RetryPolicy, 'baseSeconds' | 'maxSeconds'>, random: () => number): number {
  const ceiling = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.max(0, attempt - 1));
  return random() * ceiling;
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns whole seconds from `now`
 * (0 for a date in the past), or undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  // An HTTP-date names its month and day; anything else Date.parse might accept ("-5") is not one.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now.getTime()) / 1000));
}

/**
 * After the `attempts`-th failed attempt: the next attempt, or dead once the retry window is over.
 * A Retry-After is a floor (the next attempt is never earlier); one reaching past the window ends
 * it. The last attempt is made at the end of the window rather than skipped.
 */
export function scheduleRetry(input: {
  attempts: number;
  retryFrom: Date;
  now: Date;
  retryAfterSeconds?: number | undefined;
  policy: RetryPolicy;
  random: () => number;
}): Schedule {
  const { attempts, retryFrom, now, retryAfterSeconds, policy, random } = input;
  const deadline = retryFrom.getTime() + policy.retryForSeconds * 1000;
  if (now.getTime() >= deadline) return { status: 'dead', reason: `retried for ${policy.retryForSeconds}s (${attempts} attempts)` };
  if (retryAfterSeconds !== undefined) {
    const next = now.getTime() + retryAfterSeconds * 1000;
    if (next > deadline) return { status: 'dead', reason: `Retry-After (${retryAfterSeconds}s) reaches past the retry window` };
    return { status: 'pending', nextAttemptAt: new Date(next) };
  }
  const next = now.getTime() + Math.round(backoffSeconds(attempts, policy, random) * 1000);
  return { status: 'pending', nextAttemptAt: new Date(Math.min(next, deadline)) };
}
