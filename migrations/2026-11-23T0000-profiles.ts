import { sql, type Kysely } from 'kysely';

// Zero-party data: current answers, their append-only history, the prompt log the engine reads,
// and the rewards ledger. Every table is keyed by account and cascades with it, so deleting an
// account removes its answers with it.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('answers')
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('value', 'jsonb', (c) => c.notNull())
    // The purpose the answer was given under, kept with it: release follows what the user agreed
    // to then, even if an author later moves the question to another purpose.
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('set_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('answers_pk', ['account_id', 'question_id'])
    .execute();
  // Segments and statistics select by question and value across accounts.
  await db.schema.createIndex('answers_question').on('answers').columns(['question_id', 'updated_at']).execute();

  await db.schema.createTable('answer_history')
    .addColumn('id', sql`bigint generated always as identity`, (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('value', 'jsonb')                              // null: the answer was deleted
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('set_id', 'text', (c) => c.notNull())
    .addColumn('set_version', 'integer', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())            // the question as the user read it
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text')
    // retention: erased by the scheduled job when the purpose's retention ran out.
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('screen', 'preference_center', 'api', 'retention')`))
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('answer_history_account').on('answer_history').columns(['account_id', 'recorded_at']).execute();

  await db.schema.createTable('prompt_log')
    .addColumn('id', sql`bigint generated always as identity`, (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('session_key', 'text', (c) => c.notNull())      // one sign-in session
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('set_id', 'text', (c) => c.notNull())
    .addColumn('set_version', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('shown', 'answered', 'skipped', 'declined')`))
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('prompt_log_account').on('prompt_log').columns(['account_id', 'at']).execute();
  // A reloaded question page is one showing, not two.
  await db.schema.createIndex('prompt_log_shown_once').unique().on('prompt_log')
    .columns(['account_id', 'session_key', 'question_id']).where(sql.ref('outcome'), '=', 'shown').execute();
  // One outcome per question and sign-in session: a form posted twice is recorded once.
  await db.schema.createIndex('prompt_log_outcome_once').unique().on('prompt_log')
    .columns(['account_id', 'session_key', 'question_id']).where(sql.ref('outcome'), '<>', 'shown').execute();
  await db.schema.createIndex('prompt_log_stats').on('prompt_log').columns(['set_id', 'at']).execute();

  await db.schema.createTable('rewards')
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('points', 'integer')
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('granted_at', 'timestamptz', (c) => c.notNull())
    // Granted once per account and question, however often the question is answered.
    .addPrimaryKeyConstraint('rewards_pk', ['account_id', 'question_id'])
    .execute();
}
