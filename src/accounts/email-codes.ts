import { randomInt, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import type { EmailCodePurpose } from '../storage/schema.ts';
import type { Alongside } from './authentication-methods.ts';
import { CredentialError } from './credential-errors.ts';
import { isValidEmail, normalizeEmail } from './email.ts';
import { keyedHash } from './keyed-hash.ts';

// "Email me a code": six digits, single use, a few minutes, a few tries. A code is issued to an
// address whether or not an account has it, doing the same work either way, so neither the
// answer nor its timing tells whether the address is registered; whether anything is mailed is
// the caller's decision, in the same transaction (the outbox). Only the newest code of an
// address counts: asking again replaces the code in the mailbox.

const CODE_FORMAT = /^\d{6}$/;
const HASH_PURPOSE = 'email-code';
const PURPOSE: EmailCodePurpose = 'sign_in';

export interface IssuedEmailCode {
  email: string;
  /** The account with this address, if there is one. */
  accountId: string | null;
  /** The code itself: for the mail, never for a log. */
  code: string;
  expiresAt: Date;
}

export interface VerifiedEmailCode {
  email: string;
  accountId: string | null;
}

export interface EmailCodes {
  /**
   * Issues a code for the address. `alongside` runs in the issuing transaction: queue the mail
   * there (to an account's address only, or a "no account here" note — the caller decides).
   * At most mfa.email_codes.per_hour codes an hour per address: too_many_requests after that.
   */
  issue(email: string, alongside?: Alongside<IssuedEmailCode>): Promise<IssuedEmailCode>;
  /**
   * Uses the newest code of the address, once. Each try counts, and the count and the use are
   * one statement: after max_attempts tries even the right code is refused (code_exhausted), and
   * of parallel tries with the right code exactly one wins.
   */
  verify(email: string, code: string, alongside?: Alongside<VerifiedEmailCode>): Promise<VerifiedEmailCode>;
}

export function createEmailCodes(deps: { db: DB; config: Config; clock: () => Date }): EmailCodes {
  const { db, config, clock } = deps;
  const settings = config.mfa.email_codes;
  const hashOf = (email: string, code: string) => keyedHash(config.secrets.key_encryption, HASH_PURPOSE, `${PURPOSE}:${email}:${code}`);

  function addressOf(rawEmail: string): string {
    if (!settings.enabled) throw new CredentialError('method_disabled');
    const email = normalizeEmail(rawEmail);
    if (!isValidEmail(email)) throw new CredentialError('email_invalid');
    return email;
  }

  const accountIdOf = async (executor: DB, email: string) =>
    (await executor.selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirst())?.id ?? null;

  /** Why no code could be used: the newest code is spent, out of tries, or past its time. */
  async function problem(email: string, now: Date): Promise<CredentialError> {
    const newest = await db.selectFrom('email_codes').select(['used_at', 'attempts', 'expires_at'])
      .where('email', '=', email).where('purpose', '=', PURPOSE)
      .orderBy('seq', 'desc').executeTakeFirst();
    if (!newest || newest.used_at !== null) return new CredentialError('code_invalid');
    if (newest.attempts >= settings.max_attempts) return new CredentialError('code_exhausted');
    if (newest.expires_at <= now) return new CredentialError('code_expired');
    return new CredentialError('code_invalid');
  }

  return {
    async issue(rawEmail, alongside) {
      const email = addressOf(rawEmail);
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const now = clock();
      const hourAgo = new Date(now.getTime() - 3600_000);
      return db.transaction().execute(async (trx) => {
        // Requests for one address wait for each other here, so the hourly count cannot be
        // overtaken by a parallel request between its read and the insert.
        await sql`select pg_advisory_xact_lock(hashtextextended(${`email-code:${email}`}, 0))`.execute(trx);
        const recent = await trx.selectFrom('email_codes').select(['created_at'])
          .where('email', '=', email).where('purpose', '=', PURPOSE).where('created_at', '>', hourAgo)
          .orderBy('created_at', 'asc').execute();
        if (recent.length >= settings.per_hour) {
          const freedAt = recent[recent.length - settings.per_hour]!.created_at.getTime() + 3600_000;
          throw new CredentialError('too_many_requests', { retryAfterSeconds: Math.max(1, Math.ceil((freedAt - now.getTime()) / 1000)) });
        }
        const expiresAt = new Date(now.getTime() + settings.ttl * 1000);
        await trx.insertInto('email_codes').values({
          id: randomUUID(), email, purpose: PURPOSE, code_hash: hashOf(email, code), expires_at: expiresAt, used_at: null, created_at: now,
        }).execute();
        const issued = { email, accountId: await accountIdOf(trx, email), code, expiresAt };
        await alongside?.(trx, issued);
        return issued;
      });
    },

    async verify(rawEmail, rawCode, alongside) {
      const email = addressOf(rawEmail);
      const code = rawCode.replace(/\s+/g, '');
      // Not a code at all: no try is spent on a typo that could never be right.
      if (!CODE_FORMAT.test(code)) throw new CredentialError('code_invalid');
      const now = clock();
      const outcome = await db.transaction().execute(async (trx) => {
        const tried = await trx.updateTable('email_codes')
          .set((eb) => ({
            attempts: eb('attempts', '+', 1),
            used_at: sql<Date | null>`case when code_hash = ${hashOf(email, code)} then ${now}::timestamptz else null end`,
          }))
          .where('id', '=', (eb) => eb.selectFrom('email_codes').select('id')
            .where('email', '=', email).where('purpose', '=', PURPOSE)
            .orderBy('seq', 'desc').limit(1))
          .where('used_at', 'is', null)
          .where('expires_at', '>', now)
          .where('attempts', '<', settings.max_attempts)
          .returning('used_at')
          .executeTakeFirst();
        if (!tried) return 'unusable' as const;
        // A wrong code commits its try before the error is thrown.
        if (tried.used_at === null) return 'wrong' as const;
        const verified = { email, accountId: await accountIdOf(trx, email) };
        await alongside?.(trx, verified);
        return verified;
      });
      if (outcome === 'wrong') throw new CredentialError('code_invalid');
      if (outcome === 'unusable') throw await problem(email, now);
      return outcome;
    },
  };
}

/**
 * Deletes codes that can no longer be used nor count towards the hourly limit. Nothing else
 * reads them: a used code is not a record of anything.
 */
export async function purgeExpiredEmailCodes(db: DB, now: Date): Promise<number> {
  const hourAgo = new Date(now.getTime() - 3600_000);
  const deleted = await db.deleteFrom('email_codes')
    .where('created_at', '<', hourAgo)
    .where((eb) => eb.or([eb('expires_at', '<', now), eb('used_at', 'is not', null)]))
    .executeTakeFirst();
  return Number(deleted.numDeletedRows);
}
