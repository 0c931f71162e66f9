import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { clientNetwork } from '../ip-addresses.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { normalizeEmail } from './email.ts';

// Failed sign-ins are counted per email address and per client network, in the database, so
// that every node behind the load balancer sees the same counts. The email key is kept for
// addresses without an account too: a delay is never a sign that an account exists.
//
// An attempt reserves its place before its password is checked, in one conditional upsert, so
// that attempts arriving together cannot all pass before any of them has failed: while fewer
// than free_attempts failures are on record, failures plus checks under way stay below
// free_attempts; once delays have begun, one check at a time, after each delay. A success gives
// its reservation back and clears the email's failures; the client network keeps its count.

export interface SignInAttempt {
  email: string;
  ip: string;
}

export type Reservation = { granted: true } | { granted: false; retryAfterSeconds: number };

export interface Throttle {
  /** Reserves a password check for this attempt, or says how long to wait. */
  reserve(attempt: SignInAttempt): Promise<Reservation>;
  /** Settles a granted reservation whose password was wrong (also counts a failure without one). */
  recordFailure(attempt: SignInAttempt): Promise<void>;
  /** Settles a granted reservation whose password was right: the email's failures are forgotten. */
  recordSuccess(attempt: SignInAttempt): Promise<void>;
  /** Gives back a granted reservation whose check did not happen (the check failed to run). */
  release(attempt: SignInAttempt): Promise<void>;
  /** The delay still running for this email or address, if any; reserves nothing. */
  check(attempt: SignInAttempt): Promise<{ retryAfterSeconds: number } | undefined>;
  /** Forgets the failures of an email (after a password reset). The address keeps its count. */
  clear(email: string, within?: Transaction<Database>): Promise<void>;
}

type ThrottleRule = Config['throttle']['account'];

/** A reservation whose check has not settled after this long is taken to be lost (its node died). */
export const RESERVATION_LEASE_SECONDS = 60;

const accountKey = (email: string) => `account:${normalizeEmail(email)}`;
const ipKey = (ip: string) => `ip:${clientNetwork(ip)}`;

export function createThrottle(db: DB, config: Config['throttle'], clock: () => Date): Throttle {
  // The exponent stops growing once the delay has reached max_delay, so it cannot overflow.
  const maxDoublings = (rule: ThrottleRule) =>
    (rule.base_delay > 0 ? Math.max(0, Math.ceil(Math.log2(rule.max_delay / rule.base_delay))) : 0);

  /**
   * The keys of an attempt, always in this order: every statement that touches both locks the
   * email's row before the address's, so two statements never wait for each other's rows.
   */
  function keysOf({ email, ip }: SignInAttempt) {
    const keys = { account: accountKey(email), ip: ipKey(ip) };
    const ruleOf = (key: string) => (key === keys.ip ? config.ip : config.account);
    return { ...keys, both: [keys.account, keys.ip], ruleOf };
  }

  /** SQL over the row being updated (login_throttle.*) at `now`: its counts and its rule's numbers. */
  function terms(keys: ReturnType<typeof keysOf>, now: Date) {
    const windowStart = new Date(now.getTime() - config.window * 1000);
    const leaseStart = new Date(now.getTime() - RESERVATION_LEASE_SECONDS * 1000);
    const rule = (pick: (rule: ThrottleRule) => number): RawBuilder<number> =>
      sql<number>`(case when login_throttle.key = ${keys.ip} then ${pick(config.ip)}::double precision else ${pick(config.account)}::double precision end)`;
    // Failures older than the window are forgotten; reservations older than the lease are lost.
    const failures = sql<number>`(case when login_throttle.last_failure_at > ${windowStart}::timestamptz then login_throttle.failures else 0 end)`;
    const inFlight = sql<number>`(case when login_throttle.reserved_at > ${leaseStart}::timestamptz then login_throttle.in_flight else 0 end)`;
    return { rule, failures, inFlight };
  }

  /** The delay after the n-th failure: base_delay · 2^(n − free_attempts), at most max_delay, none before free_attempts. */
  function delaySeconds(rule: ThrottleRule, n: number): number | undefined {
    return n < rule.free_attempts ? undefined : Math.min(rule.max_delay, rule.base_delay * 2 ** Math.min(n - rule.free_attempts, maxDoublings(rule)));
  }

  async function reserve(attempt: SignInAttempt): Promise<Reservation> {
    const now = clock();
    const keys = keysOf(attempt);
    const { rule, failures, inFlight } = terms(keys, now);
    const reserved = await db.insertInto('login_throttle')
      .values(keys.both.map((key) => ({ key, failures: 0, last_failure_at: null, blocked_until: null, in_flight: 1, reserved_at: now })))
      .onConflict((oc) => oc.column('key')
        .doUpdateSet({ in_flight: sql`${inFlight} + 1`, reserved_at: now })
        .where(sql<boolean>`(login_throttle.blocked_until is null or login_throttle.blocked_until <= ${now}::timestamptz)
          and (${inFlight} = 0 or ${failures} + ${inFlight} < ${rule((r) => r.free_attempts)})`))
      .returning('key')
      .execute();
    if (reserved.length === keys.both.length) return { granted: true };

    // Refused: give back what the other key granted, and say how long the refusing key waits.
    const granted = reserved.map((r) => r.key);
    const query = granted.length === 0 ? db : db.with('released', (qb) => qb.updateTable('login_throttle')
      .set({ in_flight: sql`greatest(login_throttle.in_flight - 1, 0)` })
      .where('key', 'in', granted)
      .returning('key'));
    const rows = await query.selectFrom('login_throttle').select(['key', 'blocked_until'])
      .where('key', 'in', keys.both.filter((key) => !granted.includes(key)))
      .execute();
    // A key refused for checks under way rather than a delay: their outcome is a moment away.
    const waits = rows.map((r) => Math.ceil(((r.blocked_until?.getTime() ?? 0) - now.getTime()) / 1000));
    return { granted: false, retryAfterSeconds: Math.max(1, ...waits) };
  }

  /** A row as an upsert inserts it when none is there (a success or reset deleted it meanwhile). */
  function insertRow(row: { key: string; failures: number; last_failure_at: Date | null; blocked_until: Date | null }) {
    return { ...row, in_flight: 0, reserved_at: null };
  }

  return {
    reserve,

    async recordFailure(attempt) {
      const now = clock();
      const keys = keysOf(attempt);
      const { rule, failures, inFlight } = terms(keys, now);
      const counted = sql<number>`(${failures} + 1)`;
      const delay = sql`least(${rule((r) => r.max_delay)}, ${rule((r) => r.base_delay)}
        * power(2, least(${counted} - ${rule((r) => r.free_attempts)}, ${rule(maxDoublings)})))`;
      await db.insertInto('login_throttle')
        .values(keys.both.map((key) => {
          const first = delaySeconds(keys.ruleOf(key), 1);
          return insertRow({ key, failures: 1, last_failure_at: now, blocked_until: first === undefined ? null : new Date(now.getTime() + first * 1000) });
        }))
        .onConflict((oc) => oc.column('key').doUpdateSet({
          failures: counted,
          last_failure_at: now,
          blocked_until: sql`case when ${counted} >= ${rule((r) => r.free_attempts)}
            then ${now}::timestamptz + make_interval(secs => ${delay}) else null end`,
          in_flight: sql`greatest(${inFlight} - 1, 0)`,
        }))
        .execute();
    },

    async recordSuccess(attempt) {
      const now = clock();
      const keys = keysOf(attempt);
      const { inFlight } = terms(keys, now);
      const isEmail = sql<boolean>`login_throttle.key = ${keys.account}`;
      await db.insertInto('login_throttle')
        .values(keys.both.map((key) => insertRow({ key, failures: 0, last_failure_at: null, blocked_until: null })))
        .onConflict((oc) => oc.column('key').doUpdateSet({
          failures: sql`case when ${isEmail} then 0 else login_throttle.failures end`,
          last_failure_at: sql`case when ${isEmail} then null else login_throttle.last_failure_at end`,
          blocked_until: sql`case when ${isEmail} then null else login_throttle.blocked_until end`,
          in_flight: sql`greatest(${inFlight} - 1, 0)`,
        }))
        .execute();
    },

    async release(attempt) {
      const keys = keysOf(attempt);
      // One row a statement: a statement holding both rows would have to take them in order.
      for (const key of keys.both) {
        await db.updateTable('login_throttle').set({ in_flight: sql`greatest(in_flight - 1, 0)` }).where('key', '=', key).execute();
      }
    },

    async check(attempt) {
      const now = clock();
      const rows = await db.selectFrom('login_throttle').select('blocked_until').where('key', 'in', keysOf(attempt).both).execute();
      const until = Math.max(0, ...rows.map((r) => r.blocked_until?.getTime() ?? 0));
      return until > now.getTime() ? { retryAfterSeconds: Math.ceil((until - now.getTime()) / 1000) } : undefined;
    },

    async clear(email, within) {
      await (within ?? db).deleteFrom('login_throttle').where('key', '=', accountKey(email)).execute();
    },
  };
}

/** How long failures count: throttle.window for passwords, mfa.throttle.window for second factors. */
export interface ThrottleWindows {
  signIn: number;
  secondFactor: number;
}

/**
 * Deletes the throttle rows that decide nothing any more: failures past their window, no delay
 * running, no check under way (passwords and second factors alike); and request limits whose
 * window is over. An IP address is personal data not to keep for nothing.
 */
export async function purgeStaleThrottles(db: DB, windows: ThrottleWindows, now: Date): Promise<number> {
  const before = (seconds: number) => new Date(now.getTime() - seconds * 1000);
  const leaseStart = before(RESERVATION_LEASE_SECONDS);
  const signIns = await db.deleteFrom('login_throttle')
    .where((eb) => eb.or([eb('last_failure_at', 'is', null), eb('last_failure_at', '<', before(windows.signIn))]))
    .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', now)]))
    .where((eb) => eb.or([eb('in_flight', '=', 0), eb('reserved_at', 'is', null), eb('reserved_at', '<', leaseStart)]))
    .executeTakeFirst();
  const secondFactors = await db.deleteFrom('second_factor_throttle')
    .where('last_attempt_at', '<', before(windows.secondFactor))
    .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', now)]))
    .executeTakeFirst();
  const limits = await db.deleteFrom('request_limits').where('window_ends_at', '<=', now).executeTakeFirst();
  return [signIns, secondFactors, limits].reduce((sum, deleted) => sum + Number(deleted.numDeletedRows), 0);
}
