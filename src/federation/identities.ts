import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import { normalizeEmail } from '../accounts/email.ts';
import { leavesAWayIn, lockSignInMethods, signInMethodsOf } from '../accounts/authentication-methods.ts';
import { AccountError, AccountValidationError, type AccountErrorCode, type AccountField } from '../accounts/errors.ts';
import { nameProblem } from '../accounts/names.ts';
import type { RegistrationExtra } from '../accounts/service.ts';
import { recordEvent } from '../events/outbox.ts';
import type { DB } from '../storage/database.ts';
import type { Account, Database } from '../storage/schema.ts';
import { DomainError } from '../errors.ts';
import { decideLinking, linkableAddress, type LinkingAccount, type LinkingDecision, type LinkingInput } from './linking.ts';
import type { UpstreamIdentity } from './upstream.ts';

// Linked identities: the database side of linking.ts. It reads what the rules need (the identity's
// account, the account holding a proven address), and writes what they decide: an account made
// from an identity, a link, a reclaimed account, an unlink. Each write, its events and whatever it
// removes share one transaction.

export const IDENTITY_ERROR_CODES = [
  /** Removing it would leave the account no way to sign in. */
  'last_sign_in_method',
  /** No such linked identity on this account. */
  'not_linked',
  // linking.ts's refusals.
  'sign_up_disabled',
  'linked_to_another_account',
  'account_email_unverified',
  /** Proving ownership by signing in, to another account than the one with the address. */
  'wrong_account',
  /**
   * The provider proved no address, or only a one-time code to the address would prove the
   * account is theirs: not offered on these pages yet, so the sign-in stops here.
   */
  'email_unproven',
] as const;
export type IdentityErrorCode = (typeof IDENTITY_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { identity: IdentityErrorCode }
}

export class IdentityError extends DomainError<'identity'> {
  constructor(code: IdentityErrorCode) {
    super('identity', code);
  }
}

/** Where a link was made, for the identity.linked event. */
export type LinkSource = 'registration' | 'sign_in' | 'account';

export interface LinkedIdentity {
  provider: string;
  email: string | null;
  linkedAt: Date;
  lastUsedAt: Date | null;
  /** Unlinking it leaves a way to sign in (the rule unlink() applies). */
  unlinkable: boolean;
}

export interface IdentitiesDeps {
  db: DB;
  clock: () => Date;
  logger: Logger;
  /** Ends every session and grant of an account in the caller's transaction (a reclaim). */
  revokeSessions: (trx: Transaction<Database>, accountId: string) => Promise<void>;
}

export function createIdentities(deps: IdentitiesDeps) {
  const { db, clock, logger } = deps;

  async function linkingAccount(where: { email: string } | { id: string }): Promise<LinkingAccount | undefined> {
    const query = db.selectFrom('accounts').select(['id', 'email', 'email_verified_at', 'password_hash']);
    const account = await ('email' in where ? query.where('email', '=', where.email) : query.where('id', '=', where.id)).executeTakeFirst();
    if (!account) return undefined;
    const linked = await db.selectFrom('identities').select('provider').where('account_id', '=', account.id).execute();
    return {
      id: account.id, email: account.email, emailVerified: account.email_verified_at !== null,
      hasPassword: account.password_hash !== null, linkedProviders: [...new Set(linked.map((r) => r.provider))],
    };
  }

  async function insertIdentity(trx: Transaction<Database>, accountId: string, identity: UpstreamIdentity, source: LinkSource, now: Date) {
    await trx.insertInto('identities').values({
      provider: identity.provider, subject: identity.subject, account_id: accountId,
      email: identity.email ?? null, email_verified: identity.emailVerifiedClaimed, linked_at: now, last_used_at: now,
    }).execute();
    await recordEvent(trx, { type: 'identity.linked', accountId, payload: { account_id: accountId, provider: identity.provider, source } }, now);
  }

  return {
    /**
     * What to do with this identity (linking.ts), with the lookups the rules need: its linked
     * account, and the account holding the proven address, if any (never for an unproven one).
     */
    async decide(identity: UpstreamIdentity, provider: LinkingInput['provider'], extra: Pick<LinkingInput, 'proofs' | 'session'> = {}): Promise<LinkingDecision> {
      const linked = await db.selectFrom('identities').select('account_id')
        .where('provider', '=', identity.provider).where('subject', '=', identity.subject).executeTakeFirst();
      const input: LinkingInput = { identity, provider, ...extra, ...(linked ? { linkedAccountId: linked.account_id } : {}) };
      const address = linked ? undefined : linkableAddress(input);
      const accountWithEmail = address === undefined ? undefined : await linkingAccount({ email: address });
      return decideLinking({ ...input, ...(accountWithEmail ? { accountWithEmail } : {}) });
    },

    /** The account of a linked identity signs in: what the provider says now is kept with it. */
    async signedIn(accountId: string, identity: UpstreamIdentity): Promise<Account | undefined> {
      await db.updateTable('identities')
        .set({ last_used_at: clock(), email: identity.email ?? null, email_verified: identity.emailVerifiedClaimed })
        .where('provider', '=', identity.provider).where('subject', '=', identity.subject).where('account_id', '=', accountId)
        .execute();
      return db.selectFrom('accounts').selectAll().where('id', '=', accountId).executeTakeFirst();
    },

    /**
     * A new account for a proven address (linking's create_account), with the identity linked and
     * whatever registering asks (`extras`: terms, date of birth), in one transaction. The address
     * is verified: the decision is only made for a proven one. A name the provider sent that is
     * not a valid name is left out rather than refused.
     */
    async register(input: {
      identity: UpstreamIdentity; email: string; name?: string | undefined; locale: string; extras?: readonly RegistrationExtra[];
    }): Promise<Account> {
      const problems: Partial<Record<AccountField, AccountErrorCode>> = {};
      for (const { problem } of input.extras ?? []) if (problem) problems[problem.field] ??= problem.code;
      if (Object.keys(problems).length > 0) throw new AccountValidationError(problems);
      const typed = input.name?.trim();
      const name = typed && !nameProblem(typed) ? typed : null;
      const email = normalizeEmail(input.email);
      const now = clock();
      const id = randomUUID();
      const account = await db.transaction().execute(async (trx) => {
        const created = await trx.insertInto('accounts').values({
          id, email, name, locale: input.locale, password_hash: null, email_verified_at: now, created_at: now, updated_at: now,
        }).onConflict((oc) => oc.column('email').doNothing()).returningAll().executeTakeFirst();
        // Registered in between by someone else: the next decision asks to prove ownership.
        if (!created) throw new AccountError('email_taken', { field: 'email' });
        await recordEvent(trx, { type: 'account.created', accountId: id, payload: { account_id: id, email_verified: true } }, now);
        for (const extra of input.extras ?? []) await extra.record(trx, id, now);
        await insertIdentity(trx, id, input.identity, 'registration', now);
        return created;
      });
      logger.info({ account_id: id, provider: input.identity.provider }, 'account created with an upstream identity');
      return account;
    },

    /**
     * Links the identity to an existing account (linking's `link`). `reclaim`: nobody had proven
     * the account's address before this person did, so whatever anyone set up on it before —
     * password, passkeys, authenticator app, recovery codes, other linked identities, sessions,
     * pending email changes and links — is removed first, and the address becomes verified.
     */
    async link(input: { accountId: string; identity: UpstreamIdentity; reclaim: boolean; source: LinkSource }): Promise<void> {
      const { accountId, identity, reclaim, source } = input;
      const now = clock();
      await db.transaction().execute(async (trx) => {
        if (reclaim) {
          await trx.updateTable('accounts').set({ password_hash: null, email_verified_at: now, updated_at: now }).where('id', '=', accountId).execute();
          await trx.deleteFrom('webauthn_credentials').where('account_id', '=', accountId).execute();
          await trx.deleteFrom('totp_secrets').where('account_id', '=', accountId).execute();
          await trx.deleteFrom('recovery_codes').where('account_id', '=', accountId).execute();
          await trx.deleteFrom('email_tokens').where('account_id', '=', accountId).execute();
          const others = await trx.deleteFrom('identities').where('account_id', '=', accountId).returning('provider').execute();
          for (const other of others) {
            await recordEvent(trx, { type: 'identity.unlinked', accountId, payload: { account_id: accountId, provider: other.provider, source: 'reclaim' } }, now);
          }
          await deps.revokeSessions(trx, accountId);
        }
        await insertIdentity(trx, accountId, identity, source, now);
      });
      logger.info({ account_id: accountId, provider: identity.provider, reclaim }, 'upstream identity linked');
    },

    /** Unlinks a provider from the account, never its last way to sign in. */
    async unlink(accountId: string, provider: string): Promise<void> {
      const now = clock();
      await db.transaction().execute(async (trx) => {
        const methods = await lockSignInMethods(trx, accountId);
        if (!methods || !methods.providers.includes(provider)) throw new IdentityError('not_linked');
        if (!leavesAWayIn(methods, { provider })) throw new IdentityError('last_sign_in_method');
        await trx.deleteFrom('identities').where('account_id', '=', accountId).where('provider', '=', provider).execute();
        await recordEvent(trx, { type: 'identity.unlinked', accountId, payload: { account_id: accountId, provider, source: 'account' } }, now);
      });
      logger.info({ account_id: accountId, provider }, 'upstream identity unlinked');
    },

    async identitiesOf(accountId: string): Promise<LinkedIdentity[]> {
      const rows = await db.selectFrom('identities').select(['provider', 'email', 'linked_at', 'last_used_at'])
        .where('account_id', '=', accountId).orderBy('linked_at').execute();
      const methods = rows.length > 0 ? await signInMethodsOf(db, accountId) : undefined;
      return rows.map((r) => ({
        provider: r.provider, email: r.email, linkedAt: r.linked_at, lastUsedAt: r.last_used_at,
        unlinkable: methods !== undefined && leavesAWayIn(methods, { provider: r.provider }),
      }));
    },

    linkingAccount,
  };
}

export type Identities = ReturnType<typeof createIdentities>;
