import { normalizeEmail } from '../accounts/email.ts';

// What to do with a person who comes back from an upstream provider: sign in, create an account,
// ask them to prove something first, link, or refuse. A pure function of what is known, so the
// rules can be read in one place and checked on every combination (the property tests).
//
// The rules are written against account pre-hijacking (Sudhodanan & Paverd, "Pre-hijacked
// accounts: An Empirical Study of Security Failures in User Account Creation on the Web", USENIX
// Security 2022): an attacker who knows only the victim's address prepares an account with it
// before the victim arrives, and keeps a way in once the victim starts using it. Every such attack
// needs an account, or a link, made on an address nobody proved. So:
//
// 1. An identity already linked signs in to its account; nothing else matters (not the email).
// 2. An address counts only when proven: by a provider trusted to say email_verified (and saying
//    it), or by a one-time code Parley sent to it and the person typed back in this flow. An
//    unproven address is never matched against accounts, never creates one: the person is asked
//    to prove it first (verify_email), so an account's existence is told only to the address's owner.
// 3. A proven address with no account creates one (if the provider may create accounts).
// 4. A proven address whose account exists is never linked silently. If that account's address
//    was verified, the person proves the account is theirs: sign in to it (password, a provider
//    already linked) or a code sent to its address. If it never was, a password or a session
//    proves nothing (whoever made the account set them): only a code to the address does, and
//    then the account is reclaimed — every way to sign in and second factor set up before,
//    every session and every pending email change is removed — before the identity is linked.
// 5. Linking from a signed-in session (/account "Ways to sign in") needs a recent sign-in and an
//    account whose address is verified; an identity linked to another account is not moved.

/** The parts of an UpstreamIdentity the rules look at. */
export interface LinkingIdentity {
  provider: string;
  subject: string;
  email?: string;
  /** Already false unless the provider is trusted for it (UpstreamIdentity.emailVerified). */
  emailVerified: boolean;
}

/** An existing Parley account, as the rules need to see it. */
export interface LinkingAccount {
  id: string;
  /** Normalized. */
  email: string;
  /** Whether anyone ever proved this address on this account (email_verified_at is set). */
  emailVerified: boolean;
  hasPassword: boolean;
  /** Ids of the providers already linked to it. */
  linkedProviders: string[];
}

export interface LinkingInput {
  identity: LinkingIdentity;
  provider: {
    id: string;
    /** trust_email_verified: checked again here, whatever the identity says. */
    trustEmailVerified: boolean;
    /** sign_up: whether this provider may create accounts. */
    signUp: boolean;
  };
  /** The account this (provider, subject) is linked to, if any. */
  linkedAccountId?: string;
  /**
   * The account holding `linkableAddress(input)`, if there is that address and an account has it.
   * Never looked up for an address that is not proven.
   */
  accountWithEmail?: LinkingAccount;
  /** Linking from a signed-in session (/account "Ways to sign in"). */
  session?: {
    account: LinkingAccount;
    /** Signed in within account.recent_sign_in. */
    recentlyAuthenticated: boolean;
  };
  /** What the person proved in this flow so far, each step after an earlier decision asked for it. */
  proofs?: {
    /** An address a one-time code was sent to and typed back. */
    address?: string;
    /** The id of an account they just signed in to (its password, or a provider already linked to it). */
    account?: string;
  };
}

/** A way to prove an existing account is yours. */
export type OwnershipProof = 'password' | 'email_code' | `provider:${string}`;

export const REFUSAL_REASONS = ['sign_up_disabled', 'linked_to_another_account', 'account_email_unverified'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type LinkingDecision =
  /** Sign in to this account: the identity is linked to it. Nothing to write but "last used". */
  | { kind: 'sign_in'; accountId: string }
  /** Create an account with this proven address and link the identity to it. */
  | { kind: 'create_account'; email: string; emailProvenBy: 'provider' | 'code' }
  /**
   * Send a one-time code to an address the person gives (prefilled with the provider's, if any),
   * then decide again with proofs.address. `reason` says why the provider's own was not enough.
   */
  | { kind: 'verify_email'; suggestedEmail?: string; reason: 'missing' | 'not_verified' | 'not_trusted' }
  /** An account has this address: the person must show it is theirs by one of `methods`, then decide again with proofs. */
  | { kind: 'prove_ownership'; accountId: string; methods: OwnershipProof[] }
  /**
   * Link the identity to this account and sign in. `reclaim`: nobody had proven the account's
   * address before this person did; remove every way to sign in and second factor it had, end
   * all its sessions and cancel its pending email changes first, in the same transaction.
   */
  | { kind: 'link'; accountId: string; reclaim: boolean }
  | { kind: 'refuse'; reason: RefusalReason };

/**
 * The address this sign-in may use, if it is proven: one typed back from a code in this flow,
 * else the provider's own if the provider is trusted and said it is verified. The caller looks up
 * `accountWithEmail` by this address, and by nothing else.
 */
export function linkableAddress(input: Pick<LinkingInput, 'identity' | 'provider' | 'proofs'>): string | undefined {
  if (input.proofs?.address !== undefined) return normalizeEmail(input.proofs.address);
  const { identity, provider } = input;
  if (identity.email !== undefined && identity.emailVerified && provider.trustEmailVerified) return normalizeEmail(identity.email);
  return undefined;
}

/** The ways the person may prove that `account` is theirs. */
function ownershipProofs(account: LinkingAccount): OwnershipProof[] {
  // An address nobody proved says nothing about who set the password or linked a provider.
  if (!account.emailVerified) return ['email_code'];
  return [
    ...(account.hasPassword ? ['password' as const] : []),
    'email_code',
    ...account.linkedProviders.map((id): OwnershipProof => `provider:${id}`),
  ];
}

export function decideLinking(input: LinkingInput): LinkingDecision {
  const { identity, provider, linkedAccountId, session, proofs } = input;
  if (identity.provider !== provider.id) throw new TypeError('the identity is not from this provider');

  if (session) {
    const { account } = session;
    if (linkedAccountId !== undefined) {
      return linkedAccountId === account.id ? { kind: 'sign_in', accountId: account.id } : { kind: 'refuse', reason: 'linked_to_another_account' };
    }
    // Trojan identifier: no way in is added to an account whose address nobody proved.
    if (!account.emailVerified) return { kind: 'refuse', reason: 'account_email_unverified' };
    if (!session.recentlyAuthenticated && proofs?.account !== account.id) {
      return { kind: 'prove_ownership', accountId: account.id, methods: ownershipProofs(account) };
    }
    return { kind: 'link', accountId: account.id, reclaim: false };
  }

  if (linkedAccountId !== undefined) return { kind: 'sign_in', accountId: linkedAccountId };

  const address = linkableAddress(input);
  if (address === undefined) {
    const reason = identity.email === undefined ? 'missing' : provider.trustEmailVerified ? 'not_verified' : 'not_trusted';
    return { kind: 'verify_email', ...(identity.email !== undefined ? { suggestedEmail: normalizeEmail(identity.email) } : {}), reason };
  }
  const provenByCode = proofs?.address !== undefined;

  const account = input.accountWithEmail;
  if (account === undefined) {
    if (!provider.signUp) return { kind: 'refuse', reason: 'sign_up_disabled' };
    return { kind: 'create_account', email: address, emailProvenBy: provenByCode ? 'code' : 'provider' };
  }
  if (account.email !== address) throw new TypeError('accountWithEmail must be the account holding linkableAddress(input)');

  if (account.emailVerified) {
    // A code typed back from the account's own verified address, or a sign-in to the account.
    if (provenByCode || proofs?.account === account.id) return { kind: 'link', accountId: account.id, reclaim: false };
    return { kind: 'prove_ownership', accountId: account.id, methods: ownershipProofs(account) };
  }
  // Classic-federated merge, unexpired session, unexpired email change: the account was made on
  // this address without proving it, possibly by someone else. Only the address decides.
  if (provenByCode) return { kind: 'link', accountId: account.id, reclaim: true };
  return { kind: 'prove_ownership', accountId: account.id, methods: ownershipProofs(account) };
}
