import type { Kysely } from 'kysely';

// When a person was last offered to add a passkey after a password sign-in ("Sign in faster next
// time?"), so that the offer comes at most once per profiling.min_interval. Goes with the account.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('passkey_offers')
    .addColumn('account_id', 'text', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
    .addColumn('offered_at', 'timestamptz', (c) => c.notNull())
    .execute();
}
