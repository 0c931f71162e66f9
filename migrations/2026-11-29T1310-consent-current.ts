import { sql, type Kysely } from 'kysely';

// The current consent per subject and purpose, kept next to the ledger: the ledger stays the
// append-only proof, this table is what every reader of "current consent" asks (release, the
// screen-set engine, webhook payloads, segments). It always holds exactly the latest ledger row of
// each (subject, purpose): it is written in the same transaction as each ledger row
// (src/consent/ledger.ts), and moved with the ledger when an account's rows are pseudonymized.
// `ledger_id` is the ledger row it reflects, so two transactions appending at once keep the later
// row whichever commits first. Segments join it as a plain table (one index probe, or a parallel
// join) instead of finding the latest ledger row per account.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('consent_current')
    .addColumn('subject', 'text', (c) => c.notNull())          // as in the ledger: the account id, or its pseudonym
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull().check(sql`action in ('granted', 'withdrawn')`))
    .addColumn('purpose_version', 'integer', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('ledger_id', 'bigint', (c) => c.notNull())
    .execute();
  // A segment checks one (account, purpose) per candidate account: with the state and version in
  // the key's index, that check is answered from the index alone, as the ledger's was
  // (consent_ledger_current); without them every check also read the table (bench/segments.ts).
  await sql`alter table consent_current add constraint consent_current_pk primary key (subject, purpose) include (action, purpose_version)`.execute(db);
  await sql`
    insert into consent_current (subject, purpose, action, purpose_version, at, ledger_id)
    select distinct on (subject, purpose) subject, purpose, action, purpose_version, at, id
    from consent_ledger
    order by subject, purpose, id desc`.execute(db);
}
