import { sql, type Kysely } from 'kysely';

// Indexes for the management API's segment queries and statistics (src/segments/query.ts,
// src/stats/). Measured with `npm run bench:segments` at 1,000,000 accounts and 5,000,000 answers.
export async function up(db: Kysely<unknown>): Promise<void> {
  // `answer in [...]` on single values (every type but multiple choice), compared as JSON: the
  // value itself is the key, so one B-tree serves every type; updated_at after it, so "answered
  // within 180 days" narrows the same range; account_id and purpose included, so a segment count
  // is an index-only scan. Partial: a B-tree entry must fit a third of a page, and a long free-text
  // answer would not (1000 = INDEXED_VALUE_BYTES in src/segments/query.ts, which repeats the
  // predicate so the planner can use the index; filter values are far shorter).
  await sql`create index answers_segments on answers (question_id, value, updated_at) include (account_id, purpose)
    where octet_length(value::text) <= 1000`.execute(db);
  // `answer in [...]` on multiple-choice answers (JSON arrays): a GIN index over the arrays only,
  // queried with `?|` (any of the values selected). Partial, so single values do not bloat it.
  await sql`create index answers_choices on answers using gin (value) where jsonb_typeof(value) = 'array'`.execute(db);
  // The current consent is the latest ledger row per account and purpose: one backward probe of
  // this index, answered from the index alone (action and version are included).
  await sql`create index consent_ledger_current on consent_ledger (subject, purpose, id desc) include (action, purpose_version)`.execute(db);
  // Statistics read the prompt log by day across all screen-sets.
  await db.schema.createIndex('prompt_log_at').on('prompt_log').columns(['at']).execute();
}
