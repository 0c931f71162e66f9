import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import { AccountValidationError } from './errors.ts';
import { checkPasswordPolicy, type PasswordHasher } from './passwords.ts';

// A password for an account that has none (made with an upstream provider): from then on its
// email address and the password sign in too. Only ever sets a first one: an account that has a
// password keeps it (changing a password is a reset, which signs out everywhere).

export async function setFirstPassword(
  deps: { db: DB; config: Config; hasher: PasswordHasher; clock: () => Date },
  accountId: string, password: string,
): Promise<boolean> {
  const { db, config, hasher, clock } = deps;
  const account = await db.selectFrom('accounts').select(['email', 'password_hash']).where('id', '=', accountId).executeTakeFirst();
  if (!account || account.password_hash !== null) return false;
  const problem = checkPasswordPolicy(password, {
    min: config.accounts.password_min_length, max: config.accounts.password_max_length,
    disallowed: [account.email, account.email.split('@')[0] ?? ''],
  });
  if (problem) throw new AccountValidationError({ password: problem });
  const hash = await hasher.hash(password);
  // Only if it still has none: a password set in another tab meanwhile stays.
  const set = await db.updateTable('accounts').set({ password_hash: hash, updated_at: clock() })
    .where('id', '=', accountId).where('password_hash', 'is', null).executeTakeFirst();
  return Number(set.numUpdatedRows) > 0;
}
