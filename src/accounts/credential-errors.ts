import { DomainError, type MessageParams } from '../errors.ts';

// What can go wrong with a passkey, an authenticator app code, a recovery code or an emailed
// code, as a closed list. Only the HTTP layer turns a code into a status and a message.
export const CREDENTIAL_ERROR_CODES = [
  /** The method is turned off in the configuration (mfa.*.enabled). */
  'method_disabled',
  /** The WebAuthn challenge is unknown, expired, already answered, or was issued to another sign-in or account. */
  'challenge_invalid',
  /** The authenticator's answer did not verify: signature, origin, relying party, user verification or format. */
  'passkey_not_verified',
  /** No such passkey, or not one of this account's. */
  'passkey_unknown',
  /** The signature counter went backwards: the authenticator may have been cloned. */
  'passkey_counter_regressed',
  /** This authenticator's credential is stored already. */
  'passkey_already_registered',
  /** Removing it would leave the account without a way to sign in. */
  'last_sign_in_method',
  'name_invalid',
  'email_invalid',
  'totp_already_enrolled',
  'totp_not_enrolled',
  /** Wrong, malformed, or already used code. */
  'code_invalid',
  /** A right authenticator-app code whose time-step was already used: wait for the next one. */
  'code_replayed',
  'code_expired',
  /** The emailed code had all its tries: ask for a new one. */
  'code_exhausted',
  /** Too many second-factor attempts: retryAfterSeconds says when the next is let through. */
  'throttled',
  /** Too many emailed codes for this address in the last hour. */
  'too_many_requests',
] as const;

export type CredentialErrorCode = (typeof CREDENTIAL_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { credential: CredentialErrorCode }
}

export class CredentialError extends DomainError<'credential'> {
  constructor(code: CredentialErrorCode, options: { retryAfterSeconds?: number; params?: MessageParams } = {}) {
    // The message is the code alone: it may be logged, so it never carries a code or an address.
    super('credential', code, options);
  }
}
