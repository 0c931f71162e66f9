import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';

// "Sign in faster next time?": after a password sign-in, an account without a passkey is offered
// to add one, at most once per profiling.min_interval (the same restraint as questions), and
// never again once it has one.

export interface PasskeyOffers {
  /** Whether to offer now: offers and passkeys are on, the account has none, and none was offered within the interval. */
  due(accountId: string): Promise<boolean>;
  /** The offer was shown: not again within the interval. */
  shown(accountId: string): Promise<void>;
}

export function createPasskeyOffers(deps: { db: DB; config: Config; clock: () => Date }): PasskeyOffers {
  const { db, config, clock } = deps;
  return {
    async due(accountId) {
      if (!config.mfa.passkeys.enabled || !config.mfa.passkeys.offer) return false;
      const since = new Date(clock().getTime() - config.profiling.min_interval * 1000);
      const row = await db.selectFrom('accounts')
        .select((eb) => [
          eb.exists(eb.selectFrom('webauthn_credentials').select('id').whereRef('account_id', '=', 'accounts.id')).as('has_passkey'),
          eb.exists(eb.selectFrom('passkey_offers').select('account_id').whereRef('account_id', '=', 'accounts.id').where('offered_at', '>', since)).as('recent'),
        ])
        .where('id', '=', accountId).executeTakeFirst();
      return row !== undefined && !row.has_passkey && !row.recent;
    },
    async shown(accountId) {
      const now = clock();
      await db.insertInto('passkey_offers').values({ account_id: accountId, offered_at: now })
        .onConflict((oc) => oc.column('account_id').doUpdateSet({ offered_at: now })).execute();
    },
  };
}
