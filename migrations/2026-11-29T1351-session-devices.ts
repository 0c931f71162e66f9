import type { Kysely } from 'kysely';

// What a signed-in session was seen from, for the list in /account/security: the browser's user
// agent, the client address cut to its /24 (IPv4) or /48 (IPv6) — never the whole address — and
// when it was first and last seen. One row per provider session (its uid); goes with the account.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('session_devices')
    .addColumn('session_uid', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('user_agent', 'text', (c) => c.notNull())
    .addColumn('ip_prefix', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('session_devices_account').on('session_devices').column('account_id').execute();
}
