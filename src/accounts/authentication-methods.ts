import type { Transaction } from 'kysely';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { purgeExpiredEmailCodes } from './email-codes.ts';
import { purgeExpiredChallenges } from './passkeys.ts';

// How a user proved who they are, and what an app is told about it: the `amr` values of RFC 8176
// and an `acr` level. The functions on proofs are pure; the interaction keeps the proofs of the
// sign-in and the ID token carries what they add up to.

/**
 * Runs in the transaction that stores a change, before it commits, so that the change, its event
 * and its security mail (outbox) are written together or not at all.
 */
export type Alongside<T = void> = (trx: Transaction<Database>, outcome: T) => Promise<void>;

export type AuthenticationMethod = 'password' | 'email_code' | 'federated' | 'passkey' | 'totp' | 'recovery_code';

/** One method a sign-in has proven, and when. */
export type Proof =
  | { method: 'password' | 'email_code' | 'totp' | 'recovery_code'; at: Date }
  /**
   * Every passkey use requires user verification (a fingerprint, a face, a PIN), so a passkey
   * proof is two factors: the device, and what unlocks it. deviceBound: the key cannot leave its
   * authenticator (not a synced passkey).
   */
  | { method: 'passkey'; at: Date; deviceBound: boolean }
  /** upstreamMfa: the upstream provider says it used more than one factor. */
  | { method: 'federated'; at: Date; upstreamMfa: boolean };

/** Methods that start a sign-in without a passkey. */
const FIRST_FACTORS: ReadonlySet<AuthenticationMethod> = new Set(['password', 'email_code', 'federated']);
/**
 * Codes that count as the second factor after one of those. An emailed code is not one: the
 * mailbox is also where a password is reset, and NIST SP 800-63B §5.1.3.1 rules email out as a
 * proof of possession. A passkey is more than a second factor (see acrLevel).
 */
const CODE_FACTORS: ReadonlySet<AuthenticationMethod> = new Set(['totp', 'recovery_code']);

/**
 * The `acr` values Parley issues and accepts in acr_values, weakest first. A stronger level
 * satisfies a request for a weaker one. `phr` is "phishing-resistant" from OpenID's EAP ACR Values.
 */
export const ACR = {
  oneFactor: 'urn:parley:acr:1fa',
  multiFactor: 'urn:parley:acr:mfa',
  phishingResistant: 'phr',
} as const;
export type AcrValue = (typeof ACR)[keyof typeof ACR];
/** For discovery (acr_values_supported), weakest first. */
export const ACR_VALUES_SUPPORTED: readonly AcrValue[] = [ACR.oneFactor, ACR.multiFactor, ACR.phishingResistant];

export const acrRank = (value: AcrValue) => ACR_VALUES_SUPPORTED.indexOf(value);
export const isAcrValue = (value: string): value is AcrValue => (ACR_VALUES_SUPPORTED as readonly string[]).includes(value);

/** The proofs that still count when the request allows them to be at most maxAge seconds old (OIDC max_age). */
export function currentProofs(proofs: readonly Proof[], now: Date, maxAge?: number): Proof[] {
  if (maxAge === undefined) return [...proofs];
  return proofs.filter((proof) => now.getTime() - proof.at.getTime() <= maxAge * 1000);
}

/**
 * The strongest level the proofs reach, or undefined when they do not start a sign-in.
 * - phishing-resistant: a passkey (verified user, so two factors on its own);
 * - multi-factor: a first factor and an authenticator-app or recovery code, or an upstream
 *   provider that used several factors;
 * - one factor: a password, an emailed code, an upstream provider.
 */
export function acrLevel(proofs: readonly Proof[]): AcrValue | undefined {
  if (proofs.some((p) => p.method === 'passkey')) return ACR.phishingResistant;
  const firstFactor = proofs.some((p) => FIRST_FACTORS.has(p.method));
  const upstreamMfa = proofs.some((p) => p.method === 'federated' && p.upstreamMfa);
  if (upstreamMfa || (firstFactor && proofs.some((p) => CODE_FACTORS.has(p.method)))) return ACR.multiFactor;
  return firstFactor ? ACR.oneFactor : undefined;
}

/** Whether the proofs satisfy the level (a stronger level satisfies a weaker one). */
export function satisfies(proofs: readonly Proof[], required: AcrValue): boolean {
  const level = acrLevel(proofs);
  return level !== undefined && acrRank(level) >= acrRank(required);
}

/**
 * The `acr` for the ID token: the first of the requested values (acr_values, in the client's
 * order of preference) that the proofs satisfy; otherwise the strongest level they reach.
 */
export function acrFor(proofs: readonly Proof[], requested: readonly string[] = []): AcrValue | undefined {
  const met = requested.filter(isAcrValue).find((value) => satisfies(proofs, value));
  return met ?? acrLevel(proofs);
}

// RFC 8176 §2 values, in the order the ID token lists them. `fed` (an upstream provider) and
// `email` (a code sent by email) are not in the RFC's registry; OpenID Connect Core §2 lets
// parties agree on further values, and an emailed code is deliberately not `otp`, which apps
// read as an authenticator app or token.
const AMR_ORDER = ['pwd', 'email', 'fed', 'otp', 'hwk', 'swk', 'user', 'mfa'] as const;
export type AmrValue = (typeof AMR_ORDER)[number];

/** The `amr` claim for the proofs of a sign-in. */
export function amrFor(proofs: readonly Proof[]): AmrValue[] {
  const values = new Set<AmrValue>();
  for (const proof of proofs) {
    switch (proof.method) {
      case 'password': values.add('pwd'); break;
      case 'email_code': values.add('email'); break;
      case 'federated': values.add('fed'); if (proof.upstreamMfa) values.add('mfa'); break;
      case 'totp': case 'recovery_code': values.add('otp'); break;
      case 'passkey': values.add(proof.deviceBound ? 'hwk' : 'swk'); values.add('user'); break;
    }
  }
  const level = acrLevel(proofs);
  if (level !== undefined && acrRank(level) >= acrRank(ACR.multiFactor)) values.add('mfa');
  return AMR_ORDER.filter((value) => values.has(value));
}

/** What an account has set up, for the MFA policy and the "ways to sign in" page. */
export interface Enrolment {
  password: boolean;
  passkeys: number;
  totp: boolean;
  recoveryCodes: number;
}

export async function enrolmentOf(db: DB, accountId: string): Promise<Enrolment> {
  const row = await db.selectFrom('accounts')
    .select((eb) => [
      eb('password_hash', 'is not', null).as('password'),
      eb.selectFrom('webauthn_credentials').select(eb.fn.countAll<string>().as('n')).whereRef('account_id', '=', 'accounts.id').as('passkeys'),
      eb.exists(eb.selectFrom('totp_secrets').select('account_id').whereRef('account_id', '=', 'accounts.id').where('confirmed_at', 'is not', null)).as('totp'),
      eb.selectFrom('recovery_codes').select(eb.fn.countAll<string>().as('n')).whereRef('account_id', '=', 'accounts.id').where('used_at', 'is', null).as('recovery_codes'),
    ])
    .where('id', '=', accountId)
    .executeTakeFirst();
  if (!row) return { password: false, passkeys: 0, totp: false, recoveryCodes: 0 };
  return { password: Boolean(row.password), passkeys: Number(row.passkeys ?? 0), totp: Boolean(row.totp), recoveryCodes: Number(row.recovery_codes ?? 0) };
}

/** The ways an account can sign in: its password, its passkeys, the upstream providers linked to it. */
export interface SignInMethods {
  password: boolean;
  passkeys: number;
  /** The providers of its linked identities. */
  providers: string[];
}

/** Which ways to sign in the account has; undefined if it is gone. */
export async function signInMethodsOf(db: DB | Transaction<Database>, accountId: string, options: { lock?: boolean } = {}): Promise<SignInMethods | undefined> {
  const read = db.selectFrom('accounts').select((eb) => eb('password_hash', 'is not', null).as('password')).where('id', '=', accountId);
  const account = await (options.lock ? read.forUpdate() : read).executeTakeFirst();
  if (!account) return undefined;
  const passkeys = await db.selectFrom('webauthn_credentials').select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId).executeTakeFirstOrThrow();
  const identities = await db.selectFrom('identities').select('provider').where('account_id', '=', accountId).execute();
  return { password: Boolean(account.password), passkeys: Number(passkeys.n), providers: identities.map((i) => i.provider) };
}

/**
 * Locks the account's row for the rest of the transaction and tells which ways to sign in it has,
 * so that two parallel removals cannot each leave the other as the last one and then both go.
 */
export function lockSignInMethods(trx: Transaction<Database>, accountId: string): Promise<SignInMethods | undefined> {
  return signInMethodsOf(trx, accountId, { lock: true });
}

/** The one rule for removing a way to sign in: something must be left to sign in with. */
export function leavesAWayIn(methods: SignInMethods, removing: { passkey: true } | { provider: string }): boolean {
  const passkeys = methods.passkeys - ('passkey' in removing ? 1 : 0);
  const providers = methods.providers.filter((p) => !('provider' in removing) || p !== removing.provider);
  return methods.password || passkeys > 0 || providers.length > 0;
}

/** Deletes what sign-ins leave behind and no longer need: answered or expired challenges, spent codes (throttles: purgeStaleThrottles). */
export async function purgeSignInLeftovers(db: DB, now: Date): Promise<number> {
  return (await purgeExpiredChallenges(db, now)) + (await purgeExpiredEmailCodes(db, now));
}
