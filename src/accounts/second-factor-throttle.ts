import { sql, type Transaction } from 'kysely';
import type { MfaConfig } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { CredentialError } from './credential-errors.ts';

// Wrong second-factor codes are limited per account, so that someone who has the password cannot
// try the million six-digit codes behind it. An attempt is counted BEFORE its code is checked, in
// one statement that also refuses it while the account is blocked: parallel guesses cannot all
// slip in before the first failure is written. A right code clears the count. Stale rows go with
// the sign-in throttle's (purgeStaleThrottles).

export interface SecondFactorThrottle {
  /**
   * Counts an attempt, or throws CredentialError('throttled') when none is allowed now. Runs on
   * its own (never inside the caller's transaction): the count stays when the attempt fails.
   */
  reserve(accountId: string): Promise<void>;
  /** Forgets the attempts after a right code, in the transaction that accepts it. */
  clear(trx: Transaction<Database>, accountId: string): Promise<void>;
}

export function createSecondFactorThrottle(db: DB, config: MfaConfig['throttle'], clock: () => Date): SecondFactorThrottle {
  // free_attempts tries go through at once; the one that reaches the limit, and each after it,
  // blocks the next for base_delay · 2^(attempts − free_attempts), at most max_delay.
  const doublingsToMax = config.base_delay > 0 ? Math.max(0, Math.ceil(Math.log2(config.max_delay / config.base_delay))) : 0;
  const blockSeconds = (attempts: number) =>
    Math.min(config.max_delay, config.base_delay * 2 ** Math.min(Math.max(0, attempts - config.free_attempts), doublingsToMax));

  return {
    async reserve(accountId) {
      const now = clock();
      const windowStart = new Date(now.getTime() - config.window * 1000);
      const attempts = sql<number>`case when second_factor_throttle.last_attempt_at <= ${windowStart}::timestamptz
        then 1 else second_factor_throttle.attempts + 1 end`;
      const counted = await db.insertInto('second_factor_throttle')
        .values({
          account_id: accountId,
          attempts: 1,
          last_attempt_at: now,
          blocked_until: config.free_attempts <= 1 ? new Date(now.getTime() + blockSeconds(1) * 1000) : null,
        })
        .onConflict((oc) => oc.column('account_id')
          .doUpdateSet({
            attempts,
            last_attempt_at: now,
            blocked_until: sql<Date | null>`case when ${attempts} >= ${config.free_attempts}::integer
              then ${now}::timestamptz + make_interval(secs => least(${config.max_delay}::double precision,
                ${config.base_delay}::double precision * power(2, least(greatest(${attempts} - ${config.free_attempts}::integer, 0), ${doublingsToMax}::integer))))
              else null end`,
          })
          .where((eb) => eb.or([eb('second_factor_throttle.blocked_until', 'is', null), eb('second_factor_throttle.blocked_until', '<=', now)])))
        .returning('attempts')
        .executeTakeFirst();
      if (counted) return;
      const row = await db.selectFrom('second_factor_throttle').select('blocked_until').where('account_id', '=', accountId).executeTakeFirst();
      const waitMs = (row?.blocked_until?.getTime() ?? now.getTime()) - now.getTime();
      throw new CredentialError('throttled', { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) });
    },

    async clear(trx, accountId) {
      await trx.deleteFrom('second_factor_throttle').where('account_id', '=', accountId).execute();
    },
  };
}
