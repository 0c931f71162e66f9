// The consent ledger: append-only rows of granted / withdrawn per account and purpose, with the
// purpose's version and a hash of the text the user was shown. The current state is derived (the
// latest row per purpose); nothing is updated in place, so it answers "who consented to what,
// when, under which text" for an audit.
import { createHash, createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
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
  const rows = await db.selectFrom('consent_ledger')
    .select(['purpose', 'action', 'purpose_version', 'at'])
    .distinctOn('purpose')
    .where('subject', '=', accountId)
    .orderBy('purpose').orderBy('id', 'desc')
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
  await trx.insertInto('consent_ledger').values({
    subject: change.accountId, purpose: change.purpose, purpose_version: purpose.version, action: change.action,
    client_id: change.clientId, source: change.source, locale: change.locale, text_hash: textHash, at: now,
  }).execute();
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
 * What stays of an account's consents after it is deleted: the rows, as proof, under a pseudonym
 * that only someone holding the secret and the old account id can link back.
 */
export async function pseudonymizeConsents(trx: Transaction<Database>, accountId: string, secret: string): Promise<void> {
  const pseudonym = `deleted:${createHmac('sha256', secret).update(accountId).digest('hex')}`;
  await trx.updateTable('consent_ledger').set({ subject: pseudonym }).where('subject', '=', accountId).execute();
}
