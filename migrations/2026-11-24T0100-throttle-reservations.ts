import { sql, type Kysely } from 'kysely';

// Sign-in attempts are reserved before the password is checked, so parallel attempts cannot all
// pass the throttle before any of them has failed: `in_flight` counts the checks under way
// (a reservation lapses after a minute, should its node die mid-check). A row may now hold a
// reservation without any failure yet, hence last_failure_at without a value.
// Requests that are limited per hour (password reset mails) count in `request_limits`, one row a
// key and window.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('login_throttle')
    .addColumn('in_flight', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reserved_at', 'timestamptz')
    .execute();
  await sql`alter table login_throttle alter column last_failure_at drop not null`.execute(db);

  await db.schema.createTable('request_limits')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('window_ends_at', 'timestamptz', (c) => c.notNull())
    .execute();
}
