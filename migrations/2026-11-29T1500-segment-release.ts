import { sql, type Kysely } from 'kysely';

// The release state of each answer, kept on the answer, so that a segment count is a scan of the
// matching answers with a filter, and no join with the consents (src/segments/query.ts).
//
// answers.consent_version is the purpose version the account's current consent to the answer's
// purpose grants: consent_current.purpose_version when its action is 'granted', null when the
// current consent is a withdrawal or there is none. It stores a fact about the ledger, never a
// decision: whether the answer may be used is decided at query time by comparing it with the
// purpose's version in the configuration of the day, so raising a purpose's version hides every
// answer under it until the user consents again, without touching a row; a purpose that does not
// rest on consent ignores the column.
//
// Two triggers keep it equal to consent_current whoever writes (the answers service, the ledger,
// an import in bulk, a test), in the writer's transaction:
//   - an answer inserted, or its account or purpose changed, reads its consent_current row;
//   - a consent_current row inserted, updated (a new ledger row, or moved to a pseudonym) or
//     deleted rewrites consent_version on that account's answers under that purpose.
// Both take a transaction-level advisory lock on the account first, so that an answer written while
// another transaction changes the consent is seen by one or the other: without it, a first answer
// inserted while the first consent is inserted would each miss the other's uncommitted row. The
// lock key is the one lockAccountAnswers (src/answers/repository.ts) takes before it locks answer
// rows, so both orders take the account lock first (no deadlock between a consent change and an
// answer write). The lock on consent_current is taken BEFORE the row is written for the same reason.
//
// The segments value index carries the column, so a count over single-valued answers is answered
// from the index alone (it replaces the index of 2026-11-23T0400-segments).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function parley_granted_version(account text, purpose text) returns integer language sql stable as
    $$ select c.purpose_version from consent_current c where c.subject = $1 and c.purpose = $2 and c.action = 'granted' $$`.execute(db);
  await sql`
    create function parley_lock_account_answers(account text) returns void language sql as
    $$ select pg_advisory_xact_lock(hashtextextended('account-answers:' || account, 0)) $$`.execute(db);

  await rowTrigger(db, 'answers_consent_version', 'before insert or update of account_id, purpose on answers', `
    perform parley_lock_account_answers(new.account_id);
    new.consent_version := parley_granted_version(new.account_id, new.purpose);
    return new;`);

  await rowTrigger(db, 'consent_current_lock', 'before insert or update or delete on consent_current', `
    if tg_op in ('UPDATE', 'DELETE') then perform parley_lock_account_answers(old.subject); end if;
    if tg_op in ('INSERT', 'UPDATE') then perform parley_lock_account_answers(new.subject); return new; end if;
    return old;`);

  await rowTrigger(db, 'consent_current_answers', 'after insert or update or delete on consent_current', `
    if tg_op = 'DELETE' or (tg_op = 'UPDATE' and (old.subject, old.purpose) is distinct from (new.subject, new.purpose)) then
      update answers set consent_version = null
      where account_id = old.subject and purpose = old.purpose and consent_version is not null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
      update answers set consent_version = case when new.action = 'granted' then new.purpose_version end
      where account_id = new.subject and purpose = new.purpose
        and consent_version is distinct from (case when new.action = 'granted' then new.purpose_version end);
    end if;
    return null;`);

  // The column, filled for the answers as they are, before any writer can run (migrations run at
  // start-up). Filled by a change of type, which rewrites the table once and rebuilds its indexes:
  // an UPDATE of every answer with a grant would leave the table and its indexes about twice
  // their size (measured on 5M answers: 627 MB then 1.1 GB; an index built in the same
  // transaction also keeps the replaced rows). The old value index goes first, so it is not rebuilt.
  await sql`drop index answers_segments`.execute(db);
  await sql`alter table answers add column consent_version integer`.execute(db);
  await sql`alter table answers alter column consent_version type integer using parley_granted_version(account_id, purpose)`.execute(db);

  // As answers_segments (2026-11-23T0400-segments), with consent_version included: a count over a
  // value range (and "answered within") reads the index alone, checking the release state on the
  // index entry.
  await sql`create index answers_segment_values on answers (question_id, value, updated_at) include (account_id, purpose, consent_version)
    where octet_length(value::text) <= 1000`.execute(db);
}

/** A row-level trigger `name` (`when`: its timing, events and table) running a PL/pgSQL body of the same name. */
async function rowTrigger(db: Kysely<unknown>, name: string, when: string, body: string): Promise<void> {
  await sql`create function ${sql.raw(name)}() returns trigger language plpgsql as $$ begin ${sql.raw(body)} end $$`.execute(db);
  await sql`create trigger ${sql.raw(name)} ${sql.raw(when)} for each row execute function ${sql.raw(name)}()`.execute(db);
}
