import { sql, type Kysely } from 'kysely';

// The consent ledger and the communication-preference ledger: append-only, the current state is
// the latest row per key. The consent ledger has no foreign key to accounts on purpose: it is the
// proof that outlives an account, pseudonymized when the account is deleted.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('consent_ledger')
    .addColumn('id', sql`bigint generated always as identity`, (c) => c.primaryKey())
    .addColumn('subject', 'text', (c) => c.notNull())          // the account id; a pseudonym once deleted
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('purpose_version', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull().check(sql`action in ('granted', 'withdrawn')`))
    .addColumn('client_id', 'text')
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('screen', 'preference_center', 'api')`))
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('text_hash', 'text', (c) => c.notNull())        // SHA-256 of the title and description shown
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('consent_ledger_subject').on('consent_ledger').columns(['subject', 'purpose', 'id']).execute();
  // Segments select accounts by their consent to a purpose.
  await db.schema.createIndex('consent_ledger_purpose').on('consent_ledger').columns(['purpose', 'subject', 'id']).execute();

  // Events of one account are delivered in the order they were written; created_at can tie.
  await db.schema.alterTable('outbox_events').addColumn('seq', sql`bigint generated always as identity`).execute();
  await db.schema.createIndex('outbox_events_account_seq').on('outbox_events').columns(['account_id', 'seq']).execute();

  await db.schema.createTable('communication_ledger')
    .addColumn('id', sql`bigint generated always as identity`, (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('screen', 'preference_center', 'api')`))
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('communication_ledger_account').on('communication_ledger').columns(['account_id', 'channel', 'topic', 'id']).execute();
}
