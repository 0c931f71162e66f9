// The consent ledger: append-only rows of granted / withdrawn per account and purpose, with the
// purpose's version and a hash of the text the user was shown. Nothing in it is updated in place
// (but the pseudonym of a deleted account), so it answers "who consented to what, when, under
// which text" for an audit. The current state, the latest row per purpose, is kept in
// consent_current, written in the same transaction as each ledger row: every reader of current
// consent reads that table, never the ledger.
import { createHash, createHmac } from 'node:crypto';
import { sql, type Kysely, type OnConflictBuilder, type Transaction } from 'kysely';
import type { Config, PurposeConfig } from '../config/schema.ts';
import { recordEvent } from '../events/outbox.ts';
import { localize } from '../screensets/loader.ts';
import type { AnswerSource, ConsentAction, Database } from '../storage/schema.ts';

export interface ConsentState {
  action: ConsentAction;
  /** The purpose version the user answered. */
  version: number;
  at: Date;
}

/** The latest ledger row per purpose; a purpose never answered is absent. */
export type ConsentStates = ReadonlyMap<string, ConsentState>;

export interface ConsentChange {
  accountId: string;
  purpose: string;
  action: ConsentAction;
  clientId: string | null;
  source: AnswerSource;
  locale: string;
}

/** The text a consent is given to: the purpose's title and description as shown in `locale`. */
export function consentText(purpose: PurposeConfig, locale: string, defaultLocale: string): { title: string; description: string } {
  return {
    title: localize(purpose.title, locale, defaultLocale),
    description: purpose.description ? localize(purpose.description, locale, defaultLocale) : '',
  };
}

export function consentTextHash(purpose: PurposeConfig, locale: string, defaultLocale: string): string {
  const { title, description } = consentText(purpose, locale, defaultLocale);
  return createHash('sha256').update(`${title}\n${description}`).digest('hex');
}

/** Whether data under a purpose may be used for this user now: a non-consent basis, or consent at the current version. */
export function purposeAllows(purpose: PurposeConfig | undefined, state: ConsentState | undefined): boolean {
  if (!purpose) return false;
  if (purpose.legal_basis !== 'consent') return true;
  return state?.action === 'granted' && state.version === purpose.version;
}

/** A consent given to an earlier version of the purpose's text: the user is asked again. */
export function needsReconsent(purpose: PurposeConfig | undefined, state: ConsentState | undefined): boolean {
  return purpose?.legal_basis === 'consent' && state?.action === 'granted' && state.version < purpose.version;
}

/**
 * How a purpose stands for a user. not_required: its legal basis is not consent. outdated:
 * granted to an earlier version of its text. none: never granted nor withdrawn.
 */
export type ConsentStatus = 'granted' | 'withdrawn' | 'none' | 'outdated' | 'not_required';

export function consentStatus(purpose: PurposeConfig | undefined, state: ConsentState | undefined): ConsentStatus {
  if (purpose && purpose.legal_basis !== 'consent') return 'not_required';
  if (!state) return 'none';
  if (state.action === 'withdrawn') return 'withdrawn';
  return purpose && state.version < purpose.version ? 'outdated' : 'granted';
}

/** A purpose's standing as carried in events with data under it. */
export interface ConsentSnapshot {
  purpose: string;
  legal_basis: string;
  /** The purpose's current text version. */
  version: number;
  state: ConsentStatus;
}

export function consentSnapshot(purposeId: string, purpose: PurposeConfig | undefined, state: ConsentState | undefined): ConsentSnapshot {
  return {
    purpose: purposeId, legal_basis: purpose?.legal_basis ?? 'unknown', version: purpose?.version ?? 0,
    state: consentStatus(purpose, state),
  };
}

export async function consentStates(db: Kysely<Database> | Transaction<Database>, accountId: string): Promise<Map<string, ConsentState>> {
  const rows = await db.selectFrom('consent_current')
    .select(['purpose', 'action', 'purpose_version', 'at'])
    .where('subject', '=', accountId)
    .execute();
  return new Map(rows.map((r) => [r.purpose, { action: r.action, version: r.purpose_version, at: r.at }]));
}

/**
 * Appends a grant or withdrawal at the purpose's current version, with its outbox event, in the
 * caller's transaction (so a consent given with an answer is stored with it, or not at all).
 */
export async function recordConsent(trx: Transaction<Database>, config: Config, change: ConsentChange, now: Date): Promise<void> {
  const purpose = config.purposes[change.purpose];
  if (!purpose) throw new Error(`unknown purpose "${change.purpose}"`);
  const textHash = consentTextHash(purpose, change.locale, config.locales.default);
  // One statement: the ledger row, and consent_current set to it.
  await trx.with('appended', (q) => q.insertInto('consent_ledger').values({
    subject: change.accountId, purpose: change.purpose, purpose_version: purpose.version, action: change.action,
    client_id: change.clientId, source: change.source, locale: change.locale, text_hash: textHash, at: now,
  }).returning(['id', 'subject', 'purpose', 'action', 'purpose_version', 'at']))
    .insertInto('consent_current')
    .columns(['subject', 'purpose', 'action', 'purpose_version', 'at', 'ledger_id'])
    .expression((eb) => eb.selectFrom('appended').select(['subject', 'purpose', 'action', 'purpose_version', 'at', 'id']))
    .onConflict(keepLatest)
    .execute();
  await recordEvent(trx, {
    type: change.action === 'granted' ? 'consent.granted' : 'consent.withdrawn',
    accountId: change.accountId,
    payload: {
      account_id: change.accountId, purpose: change.purpose, purpose_version: purpose.version,
      legal_basis: purpose.legal_basis, client_id: change.clientId, source: change.source, locale: change.locale, text_hash: textHash,
    },
  }, now);
}

/**
 * Brings consent_current up to date with the ledger for these (subject, purpose) keys, in the
 * caller's transaction: for ledger rows written in bulk without recordConsent (an import), after
 * they are inserted. Set-based: one statement for any number of keys.
 */
export async function refreshConsentCurrent(trx: Transaction<Database>, keys: readonly { subject: string; purpose: string }[]): Promise<void> {
  if (keys.length === 0) return;
  await trx.insertInto('consent_current')
    .columns(['subject', 'purpose', 'action', 'purpose_version', 'at', 'ledger_id'])
    .expression(sql`
      select distinct on (l.subject, l.purpose) l.subject, l.purpose, l.action, l.purpose_version, l.at, l.id
      from consent_ledger l
      join unnest(${keys.map((k) => k.subject)}::text[], ${keys.map((k) => k.purpose)}::text[]) as k(subject, purpose)
        on l.subject = k.subject and l.purpose = k.purpose
      order by l.subject, l.purpose, l.id desc`)
    .onConflict(keepLatest)
    .execute();
}

/**
 * A row already there is replaced only by a later ledger row: of two transactions appending for
 * the same key at once, the later row wins whichever commits first (the ledger's order is its id).
 */
function keepLatest(oc: OnConflictBuilder<Database, 'consent_current'>) {
  return oc.columns(['subject', 'purpose']).doUpdateSet((eb) => ({
    action: eb.ref('excluded.action'),
    purpose_version: eb.ref('excluded.purpose_version'),
    at: eb.ref('excluded.at'),
    ledger_id: eb.ref('excluded.ledger_id'),
  })).where('consent_current.ledger_id', '<', (eb) => eb.ref('excluded.ledger_id'));
}

/**
 * The subject a deleted account's proof records (consents, terms acceptances) are kept under: a
 * keyed hash, so they can be matched to the account id by whoever holds the key, and by nobody else.
 */
export function deletedSubject(accountId: string, secret: string): string {
  return `deleted:${createHmac('sha256', secret).update(accountId).digest('hex')}`;
}

/**
 * What stays of an account's consents after it is deleted: the rows, as proof, under a pseudonym
 * that only someone holding the secret and the old account id can link back. Its current-consent
 * rows move with them, so that consent_current stays the latest ledger row of every subject.
 */
export async function pseudonymizeConsents(trx: Transaction<Database>, accountId: string, secret: string): Promise<void> {
  const pseudonym = deletedSubject(accountId, secret);
  await trx.updateTable('consent_ledger').set({ subject: pseudonym }).where('subject', '=', accountId).execute();
  await trx.updateTable('consent_current').set({ subject: pseudonym }).where('subject', '=', accountId).execute();
}
