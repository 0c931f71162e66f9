import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import type { Alongside } from './authentication-methods.ts';
import { CredentialError } from './credential-errors.ts';
import { keyedHash } from './keyed-hash.ts';
import type { SecondFactorThrottle } from './second-factor-throttle.ts';

// Recovery codes stand in for a lost second factor. Ten, each used once, shown once when made
// and stored only as a keyed hash. Each is ten characters of Crockford's base32 (50 random
// bits), written xxxxx-xxxxx; reading tolerates case, spaces, dashes and the letters Crockford
// maps to digits (o → 0, i and l → 1), so a code copied from paper still works.

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_LENGTH = 10;
const HASH_PURPOSE = 'recovery-code';

export interface RecoveryCodes {
  /**
   * Makes a new set of codes, replacing the earlier set (used or not), and returns them: the
   * only time they can be read. `alongside` runs in the same transaction.
   */
  generate(accountId: string, alongside?: Alongside): Promise<string[]>;
  /** Uses one code, once; throttled like any second-factor code. Returns how many are left. */
  verify(accountId: string, code: string, alongside?: Alongside<{ remaining: number }>): Promise<{ remaining: number }>;
  remaining(accountId: string): Promise<number>;
}

function newCode(): string {
  // 5 bits a character from 8 random bits each: 256 is a multiple of 32, so every character is equally likely.
  const chars = [...randomBytes(CODE_LENGTH)].map((byte) => ALPHABET[byte % 32]!).join('');
  return `${chars.slice(0, 5)}-${chars.slice(5)}`;
}

/** The code's canonical form, or undefined when it cannot be one. */
export function normalizeRecoveryCode(input: string): string | undefined {
  const canonical = input.toLowerCase().replace(/[\s-]+/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  if (canonical.length !== CODE_LENGTH || [...canonical].some((c) => !ALPHABET.includes(c))) return undefined;
  return canonical;
}

export function createRecoveryCodes(deps: { db: DB; config: Config; clock: () => Date; throttle: SecondFactorThrottle }): RecoveryCodes {
  const { db, config, clock, throttle } = deps;
  // Bound to the account: a row copied to another account matches nothing there.
  const hashOf = (accountId: string, canonical: string) => keyedHash(config.secrets.key_encryption, HASH_PURPOSE, `${accountId}:${canonical}`);

  const remaining = async (executor: DB, accountId: string) => {
    const row = await executor.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('account_id', '=', accountId).where('used_at', 'is', null).executeTakeFirstOrThrow();
    return Number(row.n);
  };

  return {
    async generate(accountId, alongside) {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newCode);
      const now = clock();
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('recovery_codes').where('account_id', '=', accountId).execute();
        await trx.insertInto('recovery_codes')
          .values(codes.map((code) => ({ account_id: accountId, code_hash: hashOf(accountId, normalizeRecoveryCode(code)!), created_at: now, used_at: null })))
          .execute();
        await alongside?.(trx);
      });
      return codes;
    },

    async verify(accountId, code, alongside) {
      await throttle.reserve(accountId);
      const canonical = normalizeRecoveryCode(code);
      if (canonical === undefined) throw new CredentialError('code_invalid');
      return db.transaction().execute(async (trx) => {
        // Check and use in one statement: of two requests with the same code, one wins.
        const used = await trx.updateTable('recovery_codes').set({ used_at: clock() })
          .where('account_id', '=', accountId)
          .where('code_hash', '=', hashOf(accountId, canonical))
          .where('used_at', 'is', null)
          .returning('account_id')
          .executeTakeFirst();
        if (!used) throw new CredentialError('code_invalid');
        await throttle.clear(trx, accountId);
        const outcome = { remaining: await remaining(trx, accountId) };
        await alongside?.(trx, outcome);
        return outcome;
      });
    },

    remaining: (accountId) => remaining(db, accountId),
  };
}
