import { sql, type Kysely } from 'kysely';

// Since consent_current (2026-11-29T1310) answers "what is the current consent", the ledger is
// read by subject only: an account's export, its pseudonymization, and the latest row of a few
// (subject, purpose) keys when consent_current is refreshed from it. consent_ledger_current
// (subject, purpose, id desc) serves all three; two more indexes were kept up on every consent
// written and read by nothing:
//   - consent_ledger_subject (subject, purpose, id): the same key, the other direction, which a
//     B-tree scans either way;
//   - consent_ledger_purpose (purpose, subject, id): for segments, which now read consent_current.
// Each consent written (a screen's, the preference center's, and some 200,000 in an import of
// 100,000 accounts) now updates three indexes instead of five.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index consent_ledger_subject`.execute(db);
  await sql`drop index consent_ledger_purpose`.execute(db);
}
