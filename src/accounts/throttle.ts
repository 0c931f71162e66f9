import { sql, type Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { normalizeEmail } from './email.ts';

// Failed sign-ins are counted per email address and per client address, in the database, so
// that every node behind the load balancer sees the same counts. The email key is kept for
// addresses without an account too: a delay is never a sign that an account exists.

export interface SignInAttempt {
  email: string;
  ip: string;
}

export interface ThrottleState {
  /** The longest delay still running for this email or address, if any. */
  retryAfterSeconds: number | undefined;
  /** Whether failures are on record for this email, i.e. whether a success has any to clear. */
  accountHasFailures: boolean;
}

export interface Throttle {
  /** Everything known about an attempt's email and address, in one read. */
  assess(attempt: SignInAttempt): Promise<ThrottleState>;
  /** The longest delay still running for this email or address, if any. */
  check(attempt: SignInAttempt): Promise<{ retryAfterSeconds: number } | undefined>;
  recordFailure(attempt: SignInAttempt): Promise<void>;
  /** Forgets the failures of an email after a successful sign-in. The address keeps its count. */
  clear(email: string, within?: Transaction<Database>): Promise<void>;
}

type ThrottleRule = Config['throttle']['account'];

const accountKey = (email: string) => `account:${normalizeEmail(email)}`;
const ipKey = (ip: string) => `ip:${ip}`;

export function createThrottle(db: DB, config: Config['throttle'], clock: () => Date): Throttle {
  /**
   * Counts one failure and sets the delay in a single upsert, so that failures arriving at the
   * same moment on different nodes are all counted. The delay after the n-th failure is
   * base_delay · 2^(n − free_attempts), at most max_delay, and none before free_attempts.
   */
  async function countFailure(key: string, rule: ThrottleRule, now: Date): Promise<void> {
    const windowStart = new Date(now.getTime() - config.window * 1000);
    // The exponent stops growing once the delay has reached max_delay, so it cannot overflow.
    const maxDoublings = rule.base_delay > 0 ? Math.max(0, Math.ceil(Math.log2(rule.max_delay / rule.base_delay))) : 0;
    const failures = sql<number>`case when login_throttle.last_failure_at <= ${windowStart}::timestamptz
      then 1 else login_throttle.failures + 1 end`;
    const blockedUntil = sql<Date | null>`case when ${failures} >= ${rule.free_attempts}::integer
      then ${now}::timestamptz + make_interval(secs => least(${rule.max_delay}::double precision,
        ${rule.base_delay}::double precision * power(2, least(${failures} - ${rule.free_attempts}::integer, ${maxDoublings}::integer))))
      else null end`;

    await db.insertInto('login_throttle')
      .values({
        key,
        failures: 1,
        last_failure_at: now,
        // A first failure is delayed only when no failure is free.
        blocked_until: rule.free_attempts <= 1 ? new Date(now.getTime() + Math.min(rule.max_delay, rule.base_delay) * 1000) : null,
      })
      .onConflict((oc) => oc.column('key').doUpdateSet({
        failures,
        last_failure_at: now,
        blocked_until: blockedUntil,
      }))
      .execute();
  }

  async function assess({ email, ip }: SignInAttempt): Promise<ThrottleState> {
    const now = clock();
    const account = accountKey(email);
    const rows = await db.selectFrom('login_throttle')
      .select(['key', 'blocked_until'])
      .where('key', 'in', [account, ipKey(ip)])
      .execute();
    const until = Math.max(0, ...rows.map((r) => r.blocked_until?.getTime() ?? 0));
    return {
      retryAfterSeconds: until > now.getTime() ? Math.ceil((until - now.getTime()) / 1000) : undefined,
      accountHasFailures: rows.some((r) => r.key === account),
    };
  }

  return {
    assess,

    async check(attempt) {
      const { retryAfterSeconds } = await assess(attempt);
      return retryAfterSeconds === undefined ? undefined : { retryAfterSeconds };
    },

    async recordFailure({ email, ip }) {
      const now = clock();
      await countFailure(accountKey(email), config.account, now);
      await countFailure(ipKey(ip), config.ip, now);
    },

    async clear(email, within) {
      await (within ?? db).deleteFrom('login_throttle').where('key', '=', accountKey(email)).execute();
    },
  };
}

/**
 * Deletes the rows of addresses and emails whose failures are past the window and whose delay is
 * over: they decide nothing any more, and an IP address is personal data not to keep for nothing.
 */
export async function purgeStaleThrottles(db: DB, window: number, now: Date): Promise<number> {
  const forgotten = new Date(now.getTime() - window * 1000);
  const deleted = await db.deleteFrom('login_throttle')
    .where('last_failure_at', '<', forgotten)
    .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', now)]))
    .executeTakeFirst();
  return Number(deleted.numDeletedRows);
}
