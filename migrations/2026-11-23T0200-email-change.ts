import { sql, type Kysely } from 'kysely';

// Changing the email address from the preference center: a token emailed to the new address
// carries the address it confirms.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('email_tokens').addColumn('new_email', 'text').execute();
  await sql`alter table email_tokens drop constraint email_tokens_purpose_check`.execute(db);
  await sql`alter table email_tokens add constraint email_tokens_purpose_check
    check (purpose in ('verify_email', 'reset_password', 'change_email'))`.execute(db);
}
