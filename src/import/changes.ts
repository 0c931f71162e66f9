// What importing one record would change on the account it matches, decided without a database:
// the writer loads a snapshot of the account (matched by external id, else by email), asks for
// the changes, and writes exactly those. Importing the same record again then finds nothing to
// change, which is what makes a re-run of the same file a no-op ("unchanged").
//
// The rules, each for a reason:
// - Nothing is removed or overwritten with older data: an import brings the past in; what the
//   user did in Parley since is newer and stays.
// - History is appended, never rewritten: an answer, consent or communication entry is new
//   unless the same one (same key, same time, same value) is already there.
// - The current answer (or consent, or setting) moves only to an imported entry that is newer
//   than anything the account already has for that question (including a deletion).
// - An imported password hash replaces only another imported hash: once the user has signed in
//   and the hash is Parley's own, an older export must not bring the old password back.
// - email_verified only goes from false to true.
import { parseStoredHash } from '../accounts/password-verifier.ts';
import type { AnswerValue, Identity, ImportedAnswer, ImportedCommunication, ImportedConsent, ImportRecord } from './record.ts';

export interface AnswerHistoryEntry { questionId: string; value: AnswerValue | null; purpose: string; at: Date }
export interface CurrentAnswer { questionId: string; value: AnswerValue; purpose: string; answeredAt: Date }
export interface ConsentEntry { purpose: string; version: number; action: 'granted' | 'withdrawn'; at: Date }
export interface CommunicationEntry { channel: string; topic: string; enabled: boolean; at: Date }

/** What the writer reads of an existing account to decide. */
export interface AccountSnapshot {
  externalId: string | null;
  email: string;
  emailVerified: boolean;
  name: string | null;
  locale: string | null;
  createdAt: Date;
  /** accounts.password_hash: Parley's own, "$foreign$…", or none. */
  passwordHash: string | null;
  identities: readonly Identity[];
  answers: readonly CurrentAnswer[];
  /** Every history row of the account's answers, whatever their source (null value: deleted). */
  answerHistory: readonly AnswerHistoryEntry[];
  consentLedger: readonly ConsentEntry[];
  communicationLedger: readonly CommunicationEntry[];
}

export interface AccountChanges {
  outcome: 'created' | 'updated' | 'unchanged';
  /** Profile fields to set (all of them for a new account). */
  profile: {
    externalId?: string;
    email?: string;
    emailVerified?: boolean;
    name?: string;
    locale?: string;
  };
  /** A new account's creation time (the record's, else the import's). */
  createdAt?: Date;
  /** The value to store in accounts.password_hash. */
  passwordHash?: string;
  identities: Identity[];
  answers: { history: AnswerHistoryEntry[]; current: CurrentAnswer[] };
  consents: { ledger: ConsentEntry[]; current: ConsentEntry[] };
  communication: { ledger: CommunicationEntry[]; current: CommunicationEntry[] };
}

export type ChangesResult = { ok: true; changes: AccountChanges } | { ok: false; error: string };

const stable = (value: unknown) => JSON.stringify(value);
const answerKey = (e: { questionId: string; value: unknown; at: Date }) => `${e.questionId}\u0000${e.at.getTime()}\u0000${stable(e.value)}`;
const consentKey = (e: ConsentEntry) => `${e.purpose}\u0000${e.version}\u0000${e.action}\u0000${e.at.getTime()}`;
const communicationKey = (e: CommunicationEntry) => `${e.channel}\u0000${e.topic}\u0000${e.enabled}\u0000${e.at.getTime()}`;
const identityKey = (i: Identity) => `${i.provider}\u0000${i.subject}`;

/** The latest time per group of existing entries. */
function latestBy<T>(entries: readonly T[], group: (e: T) => string, at: (e: T) => Date): Map<string, number> {
  const latest = new Map<string, number>();
  for (const e of entries) {
    const key = group(e);
    latest.set(key, Math.max(latest.get(key) ?? -Infinity, at(e).getTime()));
  }
  return latest;
}

/**
 * The entries not yet in the ledger (in time order), and for each group the newest imported
 * entry when it is newer than everything the ledger holds for that group.
 */
function mergeLedger<T extends { at: Date }>(imported: readonly T[], existing: readonly T[], key: (e: T) => string, group: (e: T) => string): { ledger: T[]; current: T[] } {
  const known = new Set(existing.map(key));
  const ledger = dedupe(imported, key).filter((e) => !known.has(key(e))).sort((a, b) => a.at.getTime() - b.at.getTime());
  const before = latestBy(existing, group, (e) => e.at);
  const current = new Map<string, T>();
  for (const e of ledger) {
    const g = group(e);
    if (e.at.getTime() > (before.get(g) ?? -Infinity)) current.set(g, e); // ledger is in time order: the last one wins
  }
  return { ledger, current: [...current.values()] };
}

function dedupe<T>(entries: readonly T[], key: (e: T) => string): T[] {
  return [...new Map(entries.map((e) => [key(e), e])).values()];
}

const asHistory = (a: ImportedAnswer): AnswerHistoryEntry => ({ questionId: a.questionId, value: a.value, purpose: a.purpose, at: a.answeredAt });

function answerChanges(record: ImportRecord, existing: AccountSnapshot | undefined): AccountChanges['answers'] {
  const history = existing?.answerHistory ?? [];
  // An account whose current answers predate history rows (or lost them) still has them.
  const currentAsHistory = (existing?.answers ?? []).map((a) => ({ questionId: a.questionId, value: a.value, purpose: a.purpose, at: a.answeredAt }));
  const merged = mergeLedger(record.answers.map(asHistory), [...history, ...currentAsHistory], answerKey, (e) => e.questionId);
  return {
    history: merged.ledger,
    current: merged.current.map((e) => ({ questionId: e.questionId, value: e.value as AnswerValue, purpose: e.purpose, answeredAt: e.at })),
  };
}

/** Decide what importing the record does to the account it matched (undefined: none matched, create it). */
export function accountChanges(record: ImportRecord, existing: AccountSnapshot | undefined, now: Date): ChangesResult {
  if (existing?.externalId && record.externalId && existing.externalId !== record.externalId) {
    // Matched by email, but the account came from another source under another id: merging the
    // two silently could hand one person's account to another.
    return { ok: false, error: 'email: an account with this email was imported under another external_id' };
  }
  const profile: AccountChanges['profile'] = {};
  if (record.externalId && existing?.externalId !== record.externalId) profile.externalId = record.externalId;
  if (!existing || existing.email !== record.email) profile.email = record.email;
  if (!existing) profile.emailVerified = record.emailVerified;
  else if (record.emailVerified && !existing.emailVerified) profile.emailVerified = true;
  if (record.name !== undefined && existing?.name !== record.name) profile.name = record.name;
  if (record.locale !== undefined && existing?.locale !== record.locale) profile.locale = record.locale;

  let passwordHash: string | undefined;
  if (record.passwordHash !== undefined && record.passwordHash !== existing?.passwordHash) {
    const kind = existing ? parseStoredHash(existing.passwordHash).kind : 'none';
    if (kind !== 'parley') passwordHash = record.passwordHash;
  }

  const linked = new Set((existing?.identities ?? []).map(identityKey));
  const identities = dedupe(record.identities, identityKey).filter((i) => !linked.has(identityKey(i)));

  const changes: AccountChanges = {
    outcome: 'unchanged',
    profile,
    ...(existing ? {} : { createdAt: record.createdAt ?? now }),
    ...(passwordHash !== undefined ? { passwordHash } : {}),
    identities,
    answers: answerChanges(record, existing),
    consents: mergeLedger<ImportedConsent>(record.consents, existing?.consentLedger ?? [], consentKey, (e) => e.purpose),
    communication: mergeLedger<ImportedCommunication>(record.communication, existing?.communicationLedger ?? [], communicationKey, (e) => `${e.channel}\u0000${e.topic}`),
  };
  const anything = Object.keys(profile).length > 0 || passwordHash !== undefined || identities.length > 0
    || changes.answers.history.length > 0 || changes.consents.ledger.length > 0 || changes.communication.ledger.length > 0;
  changes.outcome = !existing ? 'created' : anything ? 'updated' : 'unchanged';
  return { ok: true, changes };
}

/**
 * The account as it is after the writer has written the changes: the contract the writer keeps,
 * and what a test of it compares the database with.
 */
export function applyChanges(existing: AccountSnapshot | undefined, changes: AccountChanges): AccountSnapshot {
  const base: AccountSnapshot = existing ?? {
    externalId: null, email: '', emailVerified: false, name: null, locale: null, createdAt: changes.createdAt!,
    passwordHash: null, identities: [], answers: [], answerHistory: [], consentLedger: [], communicationLedger: [],
  };
  const answers = new Map(base.answers.map((a) => [a.questionId, a]));
  for (const a of changes.answers.current) answers.set(a.questionId, a);
  return {
    externalId: changes.profile.externalId ?? base.externalId,
    email: changes.profile.email ?? base.email,
    emailVerified: changes.profile.emailVerified ?? base.emailVerified,
    name: changes.profile.name ?? base.name,
    locale: changes.profile.locale ?? base.locale,
    createdAt: base.createdAt,
    passwordHash: changes.passwordHash ?? base.passwordHash,
    identities: [...base.identities, ...changes.identities],
    answers: [...answers.values()],
    answerHistory: [...base.answerHistory, ...changes.answers.history],
    consentLedger: [...base.consentLedger, ...changes.consents.ledger],
    communicationLedger: [...base.communicationLedger, ...changes.communication.ledger],
  };
}
