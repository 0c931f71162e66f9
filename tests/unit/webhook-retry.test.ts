import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffSeconds, parseRetryAfter, scheduleRetry, type RetryPolicy } from '../../src/events/retry.ts';

const policy: RetryPolicy = { baseSeconds: 5, maxSeconds: 3600, retryForSeconds: 3 * 86400 };
const start = new Date('2026-11-23T00:00:00Z');
const at = (seconds: number) => new Date(start.getTime() + seconds * 1000);

describe('backoff', () => {
  it('doubles its ceiling with each attempt up to the maximum, and draws uniformly below it (full jitter)', () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5].map((n) => Math.round(backoffSeconds(n, policy, top)))).toEqual([5, 10, 20, 40, 80]);
    expect(backoffSeconds(11, policy, top)).toBeCloseTo(3600, 0);
    expect(backoffSeconds(5000, policy, top)).toBeCloseTo(3600, 0);
    expect(backoffSeconds(3, policy, () => 0)).toBe(0);
    fc.assert(fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const delay = backoffSeconds(attempt, policy, () => r);
      return delay >= 0 && delay < 3600 && Number.isFinite(delay);
    }));
  });
});

describe('Retry-After', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  it('reads delay-seconds and HTTP dates (RFC 9110 §10.2.3)', () => {
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Tue, 01 Dec 2026 12:01:30 GMT', now)).toBe(90);
    expect(parseRetryAfter('Tue, 01 Dec 2026 11:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
  });
});

describe('scheduling a retry', () => {
  it('waits the jittered backoff, within the retry window', () => {
    expect(scheduleRetry({ attempts: 1, retryFrom: start, now: at(0), policy, random: () => 0.5 }))
      .toEqual({ status: 'pending', nextAttemptAt: at(2.5) });
    expect(scheduleRetry({ attempts: 3, retryFrom: start, now: at(100), policy, random: () => 0.5 }))
      .toEqual({ status: 'pending', nextAttemptAt: at(110) });
  });

  it('never retries earlier than a Retry-After, and gives up if it reaches past the window', () => {
    expect(scheduleRetry({ attempts: 1, retryFrom: start, now: at(0), retryAfterSeconds: 600, policy, random: () => 0 }))
      .toEqual({ status: 'pending', nextAttemptAt: at(600) });
    expect(scheduleRetry({ attempts: 1, retryFrom: start, now: at(3 * 86400 - 60), retryAfterSeconds: 120, policy, random: () => 0 }))
      .toMatchObject({ status: 'dead' });
  });

  it('makes one last attempt at the end of the window, then dead-letters', () => {
    expect(scheduleRetry({ attempts: 40, retryFrom: start, now: at(3 * 86400 - 10), policy, random: () => 0.99 }))
      .toEqual({ status: 'pending', nextAttemptAt: at(3 * 86400) });
    expect(scheduleRetry({ attempts: 41, retryFrom: start, now: at(3 * 86400), policy, random: () => 0.99 }))
      .toEqual({ status: 'dead', reason: 'retried for 259200s (41 attempts)' });
  });

  it('counts the window from a replay, not from the event', () => {
    const replayed = at(10 * 86400);
    expect(scheduleRetry({ attempts: 1, retryFrom: replayed, now: at(10 * 86400 + 1), policy, random: () => 0.5 }))
      .toEqual({ status: 'pending', nextAttemptAt: at(10 * 86400 + 3.5) });
  });
});
