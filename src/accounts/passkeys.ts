import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type PublicKeyCredentialCreationOptionsJSON, type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Selectable, Transaction } from 'kysely';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import type { Database, WebAuthnChallengePurpose, WebAuthnCredentialsTable } from '../storage/schema.ts';
import { leavesAWayIn, lockSignInMethods, type Alongside } from './authentication-methods.ts';
import { CredentialError } from './credential-errors.ts';

// Passkeys (WebAuthn Level 3) through @simplewebauthn/server: discoverable credentials (the
// browser offers them without a username), user verification always required, attestation
// "none" (we trust the user's choice of authenticator, not its make). Each challenge is stored,
// bound to the sign-in or session it was handed to and to its account, and used up by the one
// statement that finds it: an answer cannot be replayed, and of two parallel answers one wins.

export interface RelyingParty {
  /** The domain passkeys belong to (WebAuthn RP ID). */
  id: string;
  name: string;
  /** The origins whose pages may use them. */
  origins: string[];
}

/** The relying party from mfa.passkeys, defaulting to the issuer's host and origin. */
export function relyingParty(config: Pick<Config, 'issuer' | 'mfa'>): RelyingParty {
  const issuer = new URL(config.issuer);
  const { rp_id: id, rp_name: name, origins } = config.mfa.passkeys;
  return {
    id: id || issuer.hostname,
    name,
    origins: origins.length > 0 ? origins.map((origin) => new URL(origin).origin) : [issuer.origin],
  };
}

/** A stored passkey as the account page shows it. */
export interface Passkey {
  id: string;
  accountId: string;
  name: string | null;
  /** singleDevice: bound to one authenticator (amr hwk); multiDevice: synced between a user's devices (amr swk). */
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  transports: string[];
  aaguid: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface PasskeyUser {
  /** The account id, which is also the WebAuthn user handle; for a registration with a passkey alone, the id the account will get. */
  id: string;
  /** Shown by the browser's passkey picker: the email address. */
  name: string;
  displayName?: string | undefined;
}

export interface PasskeySignIn {
  accountId: string;
  /** User verification is required of every passkey use: this proves two factors. */
  passkey: Passkey;
}

export interface Passkeys {
  readonly relyingParty: RelyingParty;
  /** Options for navigator.credentials.create(), with a challenge bound to `binding` and the user. */
  registrationOptions(input: { binding: string; user: PasskeyUser }): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /**
   * Verifies the authenticator's answer and stores the passkey for `accountId`. `alongside`
   * runs in the storing transaction BEFORE the passkey row is written: a registration with a
   * passkey alone creates its account there; the event and the security mail go there too.
   */
  register(
    input: { binding: string; accountId: string; response: RegistrationResponseJSON; name?: string | undefined },
    alongside?: Alongside<Passkey>,
  ): Promise<Passkey>;
  /**
   * Options for a passkey that will be a NEW account's only way to sign in: the account id (the
   * user handle) is chosen here and kept with the challenge, never taken from the browser.
   */
  newAccountOptions(input: { binding: string; user: Omit<PasskeyUser, 'id'> }): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /**
   * Verifies the answer to newAccountOptions: the account id its challenge was issued for, the
   * passkey, and `store`, which writes it inside the transaction that creates the account.
   */
  verifyNewAccount(input: { binding: string; response: RegistrationResponseJSON }): Promise<NewAccountPasskey>;
  /**
   * Options for navigator.credentials.get(). Without an account: any of the user's discoverable
   * passkeys (sign-in by passkey, autofill). With one: only that account's passkeys (a second
   * factor, a step-up), and only that account's passkeys will be accepted.
   */
  authenticationOptions(input: { binding: string; accountId?: string | undefined }): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /** Verifies an assertion, moves the signature counter on, and returns whose passkey it was. */
  authenticate(
    input: { binding: string; accountId?: string | undefined; response: AuthenticationResponseJSON },
    alongside?: Alongside<PasskeySignIn>,
  ): Promise<PasskeySignIn>;
  list(accountId: string): Promise<Passkey[]>;
  rename(accountId: string, passkeyId: string, name: string): Promise<Passkey>;
  /** Removes a passkey, never the account's last way to sign in (last_sign_in_method). */
  remove(accountId: string, passkeyId: string, alongside?: Alongside<Passkey>): Promise<void>;
}

export interface NewAccountPasskey {
  accountId: string;
  passkey: Passkey;
  store(trx: Transaction<Database>): Promise<void>;
}

export interface PasskeysDeps {
  db: DB;
  config: Config;
  clock: () => Date;
  logger: Logger;
}

const NAME_MAX = 64;
/** consumeChallenge for a new account: the challenge names the account id it was issued for. */
const ANY_ACCOUNT = Symbol('any account');
/**
 * COSE algorithms accepted for new passkeys: EdDSA, ES256, RS256 (RFC 9053), the ones
 * authenticators use. Named here rather than left to the library, whose default probes the
 * runtime for post-quantum ML-DSA through an experimental Node API.
 */
const PUBLIC_KEY_ALGORITHMS = [-8, -7, -257];
const CREDENTIAL_ID_FORMAT = /^[A-Za-z0-9_-]{16,1366}$/;

type CredentialRow = Selectable<WebAuthnCredentialsTable>;

const toPasskey = (row: CredentialRow): Passkey => ({
  id: row.id,
  accountId: row.account_id,
  name: row.name,
  deviceType: row.backup_eligible ? 'multiDevice' : 'singleDevice',
  backedUp: row.backed_up,
  transports: row.transports,
  aaguid: row.aaguid,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

/** A user-given name: trimmed, 1 to 64 characters, no control characters. */
function cleanName(name: string): string {
  const trimmed = name.normalize('NFC').trim();
  if (trimmed === '' || [...trimmed].length > NAME_MAX || /\p{Cc}/u.test(trimmed)) throw new CredentialError('name_invalid', { params: { max: NAME_MAX } });
  return trimmed;
}

/** The challenge the browser signed, read from clientDataJSON before anything is verified (verification needs the stored challenge). */
function signedChallenge(response: { response?: { clientDataJSON?: unknown } } | undefined): string {
  const encoded = response?.response?.clientDataJSON;
  if (typeof encoded !== 'string' || encoded.length > 8192) throw new CredentialError('passkey_not_verified');
  try {
    const { challenge } = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as { challenge?: unknown };
    if (typeof challenge === 'string' && /^[A-Za-z0-9_-]{16,256}$/.test(challenge)) return challenge;
  } catch { /* not JSON: refused below */ }
  throw new CredentialError('passkey_not_verified');
}

export function createPasskeys(deps: PasskeysDeps): Passkeys {
  const { db, config, clock, logger } = deps;
  const rp = relyingParty(config);
  const ttl = config.mfa.passkeys.challenge_ttl;

  function ensureEnabled(): void {
    if (!config.mfa.passkeys.enabled) throw new CredentialError('method_disabled');
  }

  async function storeChallenge(challenge: string, purpose: WebAuthnChallengePurpose, binding: string, accountId: string | null): Promise<void> {
    const now = clock();
    await db.insertInto('webauthn_challenges').values({
      challenge, purpose, binding, account_id: accountId, expires_at: new Date(now.getTime() + ttl * 1000), created_at: now,
    }).execute();
  }

  /**
   * Uses the challenge up, whatever comes next: one DELETE finds it (unexpired, for this purpose,
   * this binding and this account) and removes it, so of two answers to it at most one gets here.
   */
  async function consumeChallenge(challenge: string, purpose: WebAuthnChallengePurpose, binding: string, accountId: string | null | typeof ANY_ACCOUNT): Promise<string | null> {
    const consumed = await db.deleteFrom('webauthn_challenges')
      .where('challenge', '=', challenge)
      .where('purpose', '=', purpose)
      .where('binding', '=', binding)
      .$if(accountId !== ANY_ACCOUNT, (query) => query.where('account_id', 'is not distinct from', accountId as string | null))
      .where('expires_at', '>', clock())
      .returning('account_id')
      .executeTakeFirst();
    if (!consumed) throw new CredentialError('challenge_invalid');
    return consumed.account_id;
  }

  /** The library's verdict, or passkey_not_verified; its reason goes to the log (it names no secret). */
  async function verifiedOrRefused<T extends { verified: boolean }>(accountId: string, kind: 'registration' | 'assertion', verification: Promise<T>): Promise<T> {
    const verified = await verification.catch((error: unknown) => {
      logger.info({ account_id: accountId, reason: (error as Error).message }, `passkey ${kind} not verified`);
      return undefined;
    });
    if (!verified?.verified) throw new CredentialError('passkey_not_verified');
    return verified;
  }

  /** Verifies a registration answer: the passkey, and the statement that stores it in a given transaction. */
  async function verifiedRegistration(accountId: string, challenge: string, response: RegistrationResponseJSON, chosenName: string | null) {
    const verified = await verifiedOrRefused(accountId, 'registration', verifyRegistrationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserVerification: true,
      supportedAlgorithmIDs: PUBLIC_KEY_ALGORITHMS,
    }));
    if (!verified.registrationInfo) throw new CredentialError('passkey_not_verified');
    const { credential, credentialDeviceType, credentialBackedUp, aaguid } = verified.registrationInfo;
    const row: CredentialRow = {
      id: credential.id,
      account_id: accountId,
      public_key: credential.publicKey,
      counter: credential.counter,
      transports: credential.transports ?? [],
      backup_eligible: credentialDeviceType === 'multiDevice',
      backed_up: credentialBackedUp,
      // The all-zero AAGUID says nothing about the model.
      aaguid: /^[0-]+$/.test(aaguid) ? null : aaguid,
      name: chosenName,
      created_at: clock(),
      last_used_at: null,
    };
    const store = async (trx: Transaction<Database>) => {
      const inserted = await trx.insertInto('webauthn_credentials')
        .values({ ...row, public_key: Buffer.from(row.public_key), transports: JSON.stringify(row.transports) })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new CredentialError('passkey_already_registered');
    };
    return { passkey: toPasskey(row), store };
  }

  const credentialsOf = (accountId: string) =>
    db.selectFrom('webauthn_credentials').selectAll().where('account_id', '=', accountId).orderBy('created_at').execute();

  const passkeys: Passkeys = {
    relyingParty: rp,

    async registrationOptions({ binding, user }) {
      ensureEnabled();
      // The account id is the user handle: no personal data in it, and within WebAuthn's 64 bytes.
      if (Buffer.byteLength(user.id, 'utf8') > 64) throw new TypeError('a WebAuthn user handle is at most 64 bytes');
      const existing = await credentialsOf(user.id);
      const options = await generateRegistrationOptions({
        rpName: rp.name,
        rpID: rp.id,
        userID: new Uint8Array(Buffer.from(user.id, 'utf8')),
        userName: user.name,
        userDisplayName: user.displayName ?? user.name,
        timeout: ttl * 1000,
        attestationType: 'none',
        // The same authenticator twice would only be a duplicate.
        excludeCredentials: existing.map((c) => ({ id: c.id, transports: c.transports })),
        authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
        supportedAlgorithmIDs: PUBLIC_KEY_ALGORITHMS,
      });
      await storeChallenge(options.challenge, 'registration', binding, user.id);
      return options;
    },

    async register({ binding, accountId, response, name }, alongside) {
      ensureEnabled();
      const chosenName = name === undefined || name.trim() === '' ? null : cleanName(name);
      const challenge = signedChallenge(response);
      await consumeChallenge(challenge, 'registration', binding, accountId);
      const verified = await verifiedRegistration(accountId, challenge, response, chosenName);
      await db.transaction().execute(async (trx) => {
        await alongside?.(trx, verified.passkey);
        await verified.store(trx);
      });
      logger.info({ account_id: accountId, device_type: verified.passkey.deviceType }, 'passkey registered');
      return verified.passkey;
    },

    async newAccountOptions({ binding, user }) {
      ensureEnabled();
      return passkeys.registrationOptions({ binding, user: { ...user, id: randomUUID() } });
    },

    async verifyNewAccount({ binding, response }) {
      ensureEnabled();
      const challenge = signedChallenge(response);
      const accountId = await consumeChallenge(challenge, 'registration', binding, ANY_ACCOUNT);
      if (accountId === null) throw new CredentialError('challenge_invalid');
      return { accountId, ...await verifiedRegistration(accountId, challenge, response, null) };
    },

    async authenticationOptions({ binding, accountId }) {
      ensureEnabled();
      const allowed = accountId === undefined ? [] : await credentialsOf(accountId);
      const options = await generateAuthenticationOptions({
        rpID: rp.id,
        timeout: ttl * 1000,
        userVerification: 'required',
        allowCredentials: allowed.map((c) => ({ id: c.id, transports: c.transports })),
      });
      await storeChallenge(options.challenge, 'authentication', binding, accountId ?? null);
      return options;
    },

    async authenticate({ binding, accountId, response }, alongside) {
      ensureEnabled();
      const challenge = signedChallenge(response);
      await consumeChallenge(challenge, 'authentication', binding, accountId ?? null);
      const id = typeof response.id === 'string' && CREDENTIAL_ID_FORMAT.test(response.id) ? response.id : undefined;
      const stored = id === undefined ? undefined
        : await db.selectFrom('webauthn_credentials').selectAll().where('id', '=', id).executeTakeFirst();
      // A passkey of another account answers as one that does not exist.
      if (!stored || (accountId !== undefined && stored.account_id !== accountId)) throw new CredentialError('passkey_unknown');
      // A discoverable credential names its user (WebAuthn §7.2 step 6): it must be the owner.
      const userHandle = response.response.userHandle;
      if (accountId === undefined || userHandle !== undefined) {
        if (typeof userHandle !== 'string' || Buffer.from(userHandle, 'base64url').toString('utf8') !== stored.account_id) {
          throw new CredentialError('passkey_not_verified');
        }
      }

      const verified = await verifiedOrRefused(stored.account_id, 'assertion', verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        // The counter is compared below, after the signature is known to be good, so that a
        // counter going backwards can be told apart from a forgery and logged as a possible clone.
        credential: { id: stored.id, publicKey: new Uint8Array(stored.public_key), counter: 0, transports: stored.transports },
        requireUserVerification: true,
      }));
      const { newCounter, credentialBackedUp } = verified.authenticationInfo;

      const now = clock();
      const signIn = await db.transaction().execute(async (trx) => {
        // WebAuthn §6.1.1: an authenticator that keeps no counter always reports 0, and that is
        // fine; one that keeps a counter must report more than last time. The same or less means
        // two copies of its key are in use. Compared in the update itself, so that of two
        // assertions with the same counter only one moves it on.
        const updated = await trx.updateTable('webauthn_credentials')
          .set({ counter: newCounter, backed_up: credentialBackedUp, last_used_at: now })
          .where('id', '=', stored.id)
          .where((eb) => eb.or([eb('counter', '<', newCounter), eb.and([eb('counter', '=', 0), eb(eb.val(newCounter), '=', 0)])]))
          .returningAll()
          .executeTakeFirst();
        if (!updated) return undefined;
        const outcome = { accountId: updated.account_id, passkey: toPasskey(updated) };
        await alongside?.(trx, outcome);
        return outcome;
      });
      if (!signIn) {
        logger.warn({ account_id: stored.account_id, credential_id: stored.id, stored_counter: stored.counter, reported_counter: newCounter },
          'passkey signature counter went backwards: the authenticator may be cloned');
        throw new CredentialError('passkey_counter_regressed');
      }
      return signIn;
    },

    async list(accountId) {
      return (await credentialsOf(accountId)).map(toPasskey);
    },

    async rename(accountId, passkeyId, name) {
      const renamed = await db.updateTable('webauthn_credentials').set({ name: cleanName(name) })
        .where('id', '=', passkeyId).where('account_id', '=', accountId)
        .returningAll().executeTakeFirst();
      if (!renamed) throw new CredentialError('passkey_unknown');
      return toPasskey(renamed);
    },

    async remove(accountId, passkeyId, alongside) {
      await db.transaction().execute(async (trx) => {
        const methods = await lockSignInMethods(trx, accountId);
        const removed = await trx.deleteFrom('webauthn_credentials')
          .where('id', '=', passkeyId).where('account_id', '=', accountId)
          .returningAll().executeTakeFirst();
        if (!methods || !removed) throw new CredentialError('passkey_unknown');
        if (!leavesAWayIn(methods, { passkey: true })) throw new CredentialError('last_sign_in_method');
        await alongside?.(trx, toPasskey(removed));
      });
    },
  };
  return passkeys;
}

/** Deletes challenges past their time: they can no longer be answered. */
export async function purgeExpiredChallenges(db: DB, now: Date): Promise<number> {
  const deleted = await db.deleteFrom('webauthn_challenges').where('expires_at', '<', now).executeTakeFirst();
  return Number(deleted.numDeletedRows);
}
