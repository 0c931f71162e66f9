import { sql, type Kysely } from 'kysely';

// Where an account came from and which outside identities sign in to it. Upstream identity
// providers ("Continue with Google") and imports from other systems both name an account by an id
// that is not Parley's: a provider by (provider, subject), an import by the old system's id.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('identities')
    // The configured identity_providers id (or, for an import, the name the old system used).
    .addColumn('provider', 'text', (c) => c.notNull())
    // The provider's stable id of the person (`sub`, GitHub's numeric id): never the email.
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    // What the provider asserted when the identity was linked or last used, kept as it said it:
    // whether Parley trusts it is the provider's configuration, decided at sign-in.
    .addColumn('email', 'text')
    .addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('linked_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_used_at', 'timestamptz')
    // One account per identity: an identity is never moved between accounts silently.
    .addPrimaryKeyConstraint('identities_pk', ['provider', 'subject'])
    .execute();
  await db.schema.createIndex('identities_account').on('identities').columns(['account_id', 'provider']).execute();

  // The id an imported account had in the system it came from; re-importing matches on it.
  await db.schema.alterTable('accounts').addColumn('external_id', 'text').execute();
  await sql`create unique index accounts_external_id on accounts (external_id) where external_id is not null`.execute(db);
}
