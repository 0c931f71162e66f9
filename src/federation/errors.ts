import { DomainError } from '../errors.ts';

// What can go wrong with an upstream identity provider, as a closed list of codes. The person is
// shown a message per code (the HTTP layer's table); operators get the details in the logs.

export const UPSTREAM_ERROR_CODES = [
  /** The person declined, or cancelled at the provider. */
  'access_denied',
  /** The callback's state is missing or is not this browser's: replayed, forged, or from another tab. */
  'state_mismatch',
  /** The sign-in at the provider took longer than a transaction may live. */
  'expired',
  /** The ID token failed validation: signature, issuer, audience, nonce, expiry or tenant. */
  'invalid_id_token',
  /** Microsoft: the token's tenant is not among allowed_tenants. */
  'tenant_not_allowed',
  /** The provider answered something that is not a valid answer (no code, a refused code, no user id …). */
  'invalid_response',
  /** The provider could not be reached, or said it is unavailable. */
  'upstream_unavailable',
  /** The provider did not answer within the configured timeout. */
  'timeout',
  /** The provider refused Parley's own credentials or settings: only an operator can fix it. */
  'misconfigured',
] as const;

export type UpstreamErrorCode = (typeof UPSTREAM_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { upstream: UpstreamErrorCode }
}

/** Where in the exchange it went wrong. */
export type UpstreamStage = 'transaction' | 'discovery' | 'callback' | 'token' | 'userinfo' | 'emails';

/** For operators' logs. Never tokens, codes, secrets or the person's claims. */
export interface UpstreamErrorDetails {
  provider: string;
  stage: UpstreamStage;
  /** What was wrong, in words (a library message or Parley's own). */
  reason: string;
  /** The OAuth error code the provider sent, if any (e.g. invalid_grant). */
  upstreamError?: string;
  upstreamErrorDescription?: string;
  /** The HTTP status of the provider's answer, if that was the problem. */
  status?: number;
}

export class UpstreamError extends DomainError<'upstream'> {
  declare readonly details: UpstreamErrorDetails;

  constructor(code: UpstreamErrorCode, details: UpstreamErrorDetails) {
    // The message is the code and the stage only: it may end up in a log line of its own.
    super('upstream', code, { details, message: `${code} (${details.provider}, ${details.stage})` });
  }
}
