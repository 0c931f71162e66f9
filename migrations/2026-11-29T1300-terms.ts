import { sql, type Kysely } from 'kysely';

// The terms acceptance ledger: append-only, one row per document accepted, like the consent
// ledger. No foreign key to accounts, on purpose: it is the proof of what a person agreed to, and
// outlives the account under a pseudonym when the account is deleted.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('terms_acceptances')
    .addColumn('id', sql`bigint generated always as identity`, (c) => c.primaryKey())
    .addColumn('subject', 'text', (c) => c.notNull())          // the account id; a pseudonym once deleted
    .addColumn('document_id', 'text', (c) => c.notNull())      // the terms: entry's id
    .addColumn('document_version', 'integer', (c) => c.notNull())
    .addColumn('client_id', 'text')                            // the app the person was signing in to
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('registration', 'sign_in')`))
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('text_hash', 'text', (c) => c.notNull())        // SHA-256 of the title and address shown
    .addColumn('accepted_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('terms_acceptances_subject').on('terms_acceptances').columns(['subject', 'document_id', 'id']).execute();
}
