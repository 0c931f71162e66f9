import type { MfaPolicy } from '../config/schema.ts';
import { ACR, acrLevel, acrRank, currentProofs, isAcrValue, satisfies, type AcrValue, type Proof } from './authentication-methods.ts';

// Whether a sign-in may go on, or needs a second factor first: a pure function of the policy
// (global and the client's), what the request asks for (acr_values, max_age), what the user has
// set up, and what this sign-in has proven so far. The interaction policy asks it after every
// step, as oidc-provider's prompts are re-checked, so a step that proves a factor ends the question.

export type SecondFactorMethod = 'totp' | 'recovery_code' | 'passkey';
export type EnrolmentMethod = 'totp' | 'passkey';

export interface MfaPolicyInput {
  /** mfa.policy */
  policy: MfaPolicy;
  /** The client's `mfa:`, which replaces mfa.policy for sign-ins to it. */
  clientPolicy?: MfaPolicy | undefined;
  /** acr_values of the request, in the client's order of preference; unknown values are ignored. */
  requestedAcr?: readonly string[] | undefined;
  /**
   * The request marked acr essential (the claims parameter). acr_values alone is voluntary
   * (OpenID Connect Core §3.1.2.1): when it cannot be met, the sign-in goes on and the ID token's
   * acr says what was reached; when essential, it is refused.
   */
  acrEssential?: boolean | undefined;
  /** max_age of the request, in seconds: older proofs do not count. */
  maxAge?: number | undefined;
  now: Date;
  /** What the account has set up (enrolmentOf). */
  enrolment: { passkeys: number; totp: boolean; recoveryCodes: number };
  /** Which methods the configuration has turned on (mfa.passkeys.enabled, mfa.totp.enabled). */
  enabled: { passkeys: boolean; totp: boolean };
  /** What this sign-in has proven. */
  proofs: readonly Proof[];
}

export type MfaDecision =
  /** Nothing more is needed. */
  | { outcome: 'none' }
  /** Nothing within max_age starts a sign-in: the login step comes first. */
  | { outcome: 'sign_in' }
  /** One of these, proven now, reaches `required`. */
  | { outcome: 'second_factor'; required: AcrValue; methods: SecondFactorMethod[] }
  /** The user has no second factor yet and must set one up (its first use proves it). */
  | { outcome: 'enrol'; methods: EnrolmentMethod[] }
  /** `required` cannot be reached with what the user has: the request ends with an error. */
  | { outcome: 'refuse'; required: AcrValue };

const stronger = (a: AcrValue | undefined, b: AcrValue | undefined) =>
  a === undefined ? b : b === undefined ? a : acrRank(a) >= acrRank(b) ? a : b;

export function decideMfa(input: MfaPolicyInput): MfaDecision {
  const { enrolment, enabled } = input;
  const policy = input.clientPolicy ?? input.policy;
  const proofs = currentProofs(input.proofs, input.now, input.maxAge);
  if (acrLevel(proofs) === undefined) return { outcome: 'sign_in' };

  // optional: only a user who set up an authenticator app is asked (a passkey alone is a way to
  // sign in, not a promise to use it every time).
  const policyNeeds = policy === 'required' || (policy === 'optional' && enrolment.totp && enabled.totp) ? ACR.multiFactor : undefined;
  // Any of the requested values will do, so the weakest is what is needed.
  const requested = (input.requestedAcr ?? []).filter(isAcrValue).sort((a, b) => acrRank(a) - acrRank(b));
  const acrNeeds = requested[0];

  const passkeyUsable = enabled.passkeys && enrolment.passkeys > 0;
  const totpUsable = enabled.totp && enrolment.totp;

  function attempt(required: AcrValue): MfaDecision | undefined {
    if (satisfies(proofs, required)) return { outcome: 'none' };
    if (required === ACR.phishingResistant) {
      return passkeyUsable ? { outcome: 'second_factor', required, methods: ['passkey'] } : undefined;
    }
    if (totpUsable || passkeyUsable) {
      const methods: SecondFactorMethod[] = [];
      if (totpUsable) methods.push('totp');
      if (passkeyUsable) methods.push('passkey');
      // Recovery codes stand in for a lost authenticator; alone they are no second factor to keep using.
      if (enrolment.recoveryCodes > 0) methods.push('recovery_code');
      return { outcome: 'second_factor', required, methods };
    }
    // Setting up a factor during the sign-in is offered where the policy asks for second
    // factors at all; under off, only an app's acr_values asks, and enrolment is not forced.
    const enrol: EnrolmentMethod[] = [];
    if (policy !== 'off' && enabled.totp) enrol.push('totp');
    if (policy !== 'off' && enabled.passkeys) enrol.push('passkey');
    return enrol.length > 0 ? { outcome: 'enrol', methods: enrol } : undefined;
  }

  const required = stronger(policyNeeds, acrNeeds);
  if (required === undefined) return { outcome: 'none' };
  const decision = attempt(required);
  if (decision) return decision;
  // A voluntary acr_values that cannot be met falls back to what the policy alone asks.
  if (!input.acrEssential && required !== policyNeeds) {
    if (policyNeeds === undefined) return { outcome: 'none' };
    return attempt(policyNeeds) ?? { outcome: 'refuse', required: policyNeeds };
  }
  return { outcome: 'refuse', required };
}
