// Terms of service, privacy policy and the other documents people accept to have an account
// (config `terms:`). Acceptances go to an append-only ledger, like consents (ledger.ts): the
// document, its version, when, in which language, for which app, and a hash of the title and
// address as shown. A document is accepted when the ledger holds its current version for the
// account; a new version is accepted again at the next sign-in (the terms prompt of the
// interaction policy, src/oidc/terms-prompt.ts). Every way to create an account records the
// acceptance in the transaction that creates it (registrationAgreement).
import { createHash } from 'node:crypto';
import type { Selectable, Transaction } from 'kysely';
import type { Config, TermsDocumentConfig } from '../config/schema.ts';
import { DomainError } from '../errors.ts';
import { recordEvent } from '../events/outbox.ts';
import { localize } from '../screensets/loader.ts';
import { deletedSubject } from './ledger.ts';
import type { DB } from '../storage/database.ts';
import type { Database, TermsAcceptanceSource, TermsAcceptancesTable } from '../storage/schema.ts';

export const TERMS_ERROR_CODES = [
  /** A document shown was not ticked. */
  'not_accepted',
  /** The account the acceptance is for does not exist (any more). */
  'account_missing',
] as const;
export type TermsErrorCode = (typeof TERMS_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { terms: TermsErrorCode }
}

export class TermsError extends DomainError<'terms'> {
  constructor(code: TermsErrorCode) {
    super('terms', code, code === 'not_accepted' ? { field: 'terms' } : {});
  }
}

/** A document as the person reads it: its title and address in their language. */
export interface ShownDocument {
  id: string;
  version: number;
  title: string;
  url: string;
}

/** Who accepts, where and how: the same for every document of one acceptance. */
export interface AcceptanceContext {
  locale: string;
  /** The app the person was signing in to (null outside a sign-in). */
  clientId: string | null;
}

/** One row of the ledger, as /account and the export show it. */
export type Acceptance = Omit<Selectable<TermsAcceptancesTable>, 'id' | 'subject'>;

/** A document in the preference center: its acceptances by the account, newest first. */
export interface TermsOverview {
  title: string;
  url?: string;
  accepted: { version: number; at: Date }[];
  pendingVersion?: number;
}

/** The document as shown in `locale`. */
export function shownDocument(document: TermsDocumentConfig, locale: string, defaultLocale: string): ShownDocument {
  const url = typeof document.url === 'string' ? document.url : localize(document.url, locale, defaultLocale);
  return { id: document.id, version: document.version, title: localize(document.title, locale, defaultLocale), url };
}

/** SHA-256 of the title and the address as shown: proof of what the person agreed to. */
export function shownHash(shown: ShownDocument): string {
  return createHash('sha256').update(`${shown.title}\n${shown.url}`).digest('hex');
}

/** The documents of `documents` that the ticked ids leave out. */
function unticked(documents: readonly TermsDocumentConfig[], ticked: ReadonlySet<string>): TermsDocumentConfig[] {
  return documents.filter((d) => !ticked.has(d.id));
}

/** Appends one ledger row and one terms.accepted event per document, in the caller's transaction. */
async function recordAcceptances(
  trx: Transaction<Database>, config: Config, accountId: string, documents: readonly TermsDocumentConfig[],
  how: AcceptanceContext & { source: TermsAcceptanceSource }, now: Date,
): Promise<void> {
  for (const document of documents) {
    const textHash = shownHash(shownDocument(document, how.locale, config.locales.default));
    await trx.insertInto('terms_acceptances').values({
      subject: accountId, document_id: document.id, document_version: document.version, client_id: how.clientId,
      source: how.source, locale: how.locale, text_hash: textHash, accepted_at: now,
    }).execute();
    await recordEvent(trx, {
      type: 'terms.accepted', accountId,
      payload: {
        account_id: accountId, document_id: document.id, document_version: document.version, client_id: how.clientId,
        source: how.source, locale: how.locale, text_hash: textHash,
      },
    }, now);
  }
}

/**
 * What registering asks the person to agree to, whatever the path (a password, an upstream
 * provider): the problem when a current document was left unticked (shown beside the boxes, and
 * nothing is stored), and how the acceptance is recorded in the transaction that creates the account.
 */
export interface RegistrationAgreement {
  problem: { field: 'terms'; code: 'terms_not_accepted' } | undefined;
  record(trx: Transaction<Database>, accountId: string, now: Date): Promise<void>;
}

/**
 * What the preference center's deletion keeps of an account's acceptances: the rows, as proof,
 * under the pseudonym its consent ledger rows get (pseudonymizeConsents in ledger.ts).
 */
export async function pseudonymizeTermsAcceptances(trx: Transaction<Database>, accountId: string, secret: string): Promise<void> {
  const pseudonym = deletedSubject(accountId, secret);
  await trx.updateTable('terms_acceptances').set({ subject: pseudonym }).where('subject', '=', accountId).execute();
}

/** The account's acceptances, oldest first. */
export function termsAcceptances(db: DB, accountId: string): Promise<Acceptance[]> {
  return db.selectFrom('terms_acceptances')
    .select(['document_id', 'document_version', 'client_id', 'source', 'locale', 'text_hash', 'accepted_at'])
    .where('subject', '=', accountId).orderBy('id').execute();
}

export interface TermsDeps {
  db: DB;
  config: Config;
  clock: () => Date;
}

export function createTerms(deps: TermsDeps) {
  const { db, config, clock } = deps;
  const documents = config.terms;

  /** The documents whose current version the account has not accepted, in configuration order. */
  async function pending(executor: DB | Transaction<Database>, accountId: string): Promise<TermsDocumentConfig[]> {
    // Without documents nothing is read: a deployment without terms pays nothing at sign-in.
    if (documents.length === 0) return [];
    const rows = await executor.selectFrom('terms_acceptances')
      .select(['document_id', (eb) => eb.fn.max('document_version').as('version')])
      .where('subject', '=', accountId).where('document_id', 'in', documents.map((d) => d.id))
      .groupBy('document_id').execute();
    const accepted = new Map(rows.map((r) => [r.document_id, Number(r.version)]));
    return documents.filter((d) => (accepted.get(d.id) ?? 0) < d.version);
  }

  return {
    /** Whether there is anything to accept at all. */
    get any(): boolean { return documents.length > 0; },

    /** Every current document, as shown in `locale`. */
    shown(locale: string): ShownDocument[] {
      return documents.map((d) => shownDocument(d, locale, config.locales.default));
    },

    /** The documents the account has still to accept at their current version, as shown in `locale`. */
    async pendingShown(accountId: string, locale: string): Promise<ShownDocument[]> {
      return (await pending(db, accountId)).map((d) => shownDocument(d, locale, config.locales.default));
    },

    /**
     * Each current document with the account's acceptances of it (newest first) and, when its
     * current version is not accepted yet, that version; then documents no longer configured that
     * the account accepted, under their id.
     */
    async overview(accountId: string, locale: string): Promise<TermsOverview[]> {
      const rows = (await termsAcceptances(db, accountId)).reverse();
      const acceptedOf = (id: string) => rows.filter((r) => r.document_id === id).map((r) => ({ version: r.document_version, at: r.accepted_at }));
      const current = documents.map((d): TermsOverview => {
        const { title, url } = shownDocument(d, locale, config.locales.default);
        const accepted = acceptedOf(d.id);
        const upToDate = accepted.some((a) => a.version >= d.version);
        return { title, url, accepted, ...(upToDate ? {} : { pendingVersion: d.version }) };
      });
      const retired = [...new Set(rows.map((r) => r.document_id))].filter((id) => !documents.some((d) => d.id === id))
        .map((id): TermsOverview => ({ title: id, accepted: acceptedOf(id) }));
      return [...current, ...retired];
    },

    /** Whether the account has accepted every current document at its current version. */
    async upToDate(accountId: string): Promise<boolean> {
      return (await pending(db, accountId)).length === 0;
    },

    /** For registration: every current document must be ticked; the acceptance is recorded with the account. */
    registrationAgreement(ticked: ReadonlySet<string>, how: AcceptanceContext): RegistrationAgreement {
      return {
        problem: unticked(documents, ticked).length === 0 ? undefined : { field: 'terms', code: 'terms_not_accepted' },
        record: (trx, accountId, now) => recordAcceptances(trx, config, accountId, documents, { ...how, source: 'registration' }, now),
      };
    },

    /**
     * Records the acceptance of every document the account still has to accept, at a sign-in.
     * Each of them must be ticked; otherwise nothing is recorded (TermsError not_accepted).
     */
    async accept(accountId: string, ticked: ReadonlySet<string>, how: AcceptanceContext): Promise<void> {
      const now = clock();
      await db.transaction().execute(async (trx) => {
        const account = await trx.selectFrom('accounts').select('id').where('id', '=', accountId).forShare().executeTakeFirst();
        if (!account) throw new TermsError('account_missing');
        const due = await pending(trx, accountId);
        if (unticked(due, ticked).length > 0) throw new TermsError('not_accepted');
        await recordAcceptances(trx, config, accountId, due, { ...how, source: 'sign_in' }, now);
      });
    },
  };
}

export type Terms = ReturnType<typeof createTerms>;
