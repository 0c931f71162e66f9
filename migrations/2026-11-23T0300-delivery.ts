import { sql, type Kysely } from 'kysely';

// Webhook delivery: the outbox is fanned out into one delivery row per (event, endpoint), and the
// worker claims, sends and settles those rows. outbox_events.status and .attempts predate this and
// are no longer written; per-endpoint state lives in deliveries.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('outbox_events')
    // Set once the event has its delivery rows: fan-out picks up the rows where it is null.
    .addColumn('fanned_out_at', 'timestamptz')
    // The writing transaction. Fan-out takes an event only once every older transaction of the
    // database has ended, so an event whose transaction commits late is not overtaken by a later
    // event of the same account that committed first (seq is assigned at insert, not at commit).
    // pg_current_xact_id() is core PostgreSQL 13+, and PGlite has it.
    .addColumn('txid', sql`xid8`, (c) => c.defaultTo(sql`pg_current_xact_id()`))
    .execute();
  await db.schema.createIndex('outbox_events_fan_out').on('outbox_events').column('seq')
    .where(sql.ref('fanned_out_at'), 'is', null).execute();

  await db.schema.createTable('deliveries')
    .addColumn('event_id', 'text', (c) => c.notNull().references('outbox_events.id').onDelete('cascade'))
    .addColumn('endpoint_id', 'text', (c) => c.notNull())
    // Copied from the event: the claim query orders by them without a join.
    .addColumn('account_id', 'text')
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    // withheld: not sent, because the user's consent no longer allowed its data when it was due.
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'dead', 'disabled', 'withheld')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    // events.retry_for runs from here: the event's creation, or its last replay.
    .addColumn('retry_from', 'timestamptz', (c) => c.notNull())
    // A claim's lease: another worker may take the row once it has passed (its holder crashed).
    .addColumn('locked_until', 'timestamptz')
    .addColumn('lease_token', 'text')
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('deliveries_pk', ['event_id', 'endpoint_id'])
    .execute();
  // What is due, in the order it is claimed.
  await db.schema.createIndex('deliveries_due').on('deliveries').columns(['next_attempt_at', 'seq'])
    .where(sql.ref('status'), '=', 'pending').execute();
  // "Is an earlier event of this account still pending for this endpoint?", asked for every
  // candidate; and "everything pending for this endpoint" when a 410 disables it.
  await db.schema.createIndex('deliveries_order').on('deliveries').columns(['endpoint_id', 'account_id', 'seq'])
    .where(sql.ref('status'), '=', 'pending').execute();
  // Dead letters, listed and replayed per endpoint.
  await db.schema.createIndex('deliveries_dead').on('deliveries').columns(['endpoint_id', 'seq'])
    .where(sql.ref('status'), 'in', sql`('dead', 'disabled')`).execute();

  // Endpoints as last seen in config, and whether a 410 Gone disabled them: survives restarts and
  // is shared by every node.
  await db.schema.createTable('webhook_endpoints')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    // A hash of url, format, events and purposes: a changed definition re-enables the endpoint.
    .addColumn('config_hash', 'text', (c) => c.notNull())
    .addColumn('disabled_at', 'timestamptz')
    .addColumn('disabled_reason', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
}
