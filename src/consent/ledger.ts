// The consent ledger: append-only rows of granted / withdrawn per account and purpose, with the
// purpose's version and a hash of the text the user was shown. The current state is derived (the
// latest row per purpose); nothing is updated in place, so it answers "who consented to what,
// when, under which text" for an audit.
import { createHash, createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Config, PurposeConfig } from '../config/schema.ts';
import { recordEvent } from '../events/outbox.ts';
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

/** Localized text of a configured value: its own, its language's, or the default locale's. */
export function textIn(text: string | Record<string, string>, locale: string, defaultLocale: string): string {
  if (typeof text === 'string') return text;
  return text[locale] ?? text[locale.split('-')[0]!] ?? text[defaultLocale] ?? Object.values(text)[0] ?? '';
}

/** The text a consent is given to: the purpose's title and description as shown in `locale`. */
export function consentText(purpose: PurposeConfig, locale: string, defaultLocale: string): { title: string; description: string } {
  return {
    title: textIn(purpose.title, locale, defaultLocale),
    description: purpose.description ? textIn(purpose.description, locale, defaultLocale) : '',
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

/** How a purpose stands for a user, as carried in events with data under it. */
export interface ConsentSnapshot {
  purpose: string;
  legal_basis: string;
  /** The purpose's current text version. */
  version: number;
  /** not_required: the legal basis is not consent. outdated: granted to an earlier version. */
  state: 'granted' | 'withdrawn' | 'not_given' | 'outdated' | 'not_required';
}

export function consentSnapshot(purposeId: string, purpose: PurposeConfig | undefined, state: ConsentState | undefined): ConsentSnapshot {
  const base = { purpose: purposeId, legal_basis: purpose?.legal_basis ?? 'unknown', version: purpose?.version ?? 0 };
  if (purpose && purpose.legal_basis !== 'consent') return { ...base, state: 'not_required' };
  if (!state) return { ...base, state: 'not_given' };
  if (state.action === 'withdrawn') return { ...base, state: 'withdrawn' };
  return { ...base, state: purpose && state.version < purpose.version ? 'outdated' : 'granted' };
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
