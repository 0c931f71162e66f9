import { sql, type Kysely } from 'kysely';

// Answers, consents and communication settings brought in by `parley import users` (or its API)
// are marked as such in their history: source 'import', with the times they had in the old
// system. The checks that list the sources gain it.
const SOURCES: [table: string, sources: string][] = [
  ['answer_history', `'screen', 'preference_center', 'api', 'retention', 'import'`],
  ['consent_ledger', `'screen', 'preference_center', 'api', 'import'`],
  ['communication_ledger', `'screen', 'preference_center', 'api', 'import'`],
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [table, sources] of SOURCES) {
    // The name PostgreSQL gave the column's check when the table was created.
    await sql.raw(`alter table ${table} drop constraint ${table}_source_check, add constraint ${table}_source_check check (source in (${sources}))`).execute(db);
  }
}
