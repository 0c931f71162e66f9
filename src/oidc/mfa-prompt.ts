import { errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { z } from 'zod';
import type { Proof } from '../accounts/authentication-methods.ts';
import type { MfaDecision } from '../accounts/mfa-policy.ts';

// The second-factor step of a sign-in, as a prompt in oidc-provider's interaction policy: right
// after login and before terms, consent and profiling, so nobody who has proven only half of who
// they are accepts terms or answers questions. It asks decideMfa (src/accounts/mfa-policy.ts)
// after every step, with the proofs of this sign-in: those the last step recorded in the
// interaction result, or else those of the session (its amr, all as old as its login).

/** The result key where the steps of a sign-in keep what it has proven, with when. */
export const PROOFS_RESULT = 'parley_proofs';

const storedProof = z.union([
  z.object({ method: z.enum(['password', 'email_code', 'totp', 'recovery_code']), at: z.number() }),
  z.object({ method: z.literal('passkey'), at: z.number(), deviceBound: z.boolean() }),
  z.object({ method: z.literal('federated'), at: z.number(), upstreamMfa: z.boolean() }),
]);
type StoredProof = z.infer<typeof storedProof>;

/** Proofs as the interaction result and the prompt's details store them (times in epoch milliseconds). */
export const storedProofs = {
  encode: (proofs: readonly Proof[]): StoredProof[] => proofs.map((p) => ({ ...p, at: p.at.getTime() })),
  /** The proofs, or undefined when the value is none (absent, or damaged). */
  decode(value: unknown): Proof[] | undefined {
    const parsed = z.array(storedProof).safeParse(value);
    return parsed.success ? parsed.data.map((p) => ({ ...p, at: new Date(p.at) })) : undefined;
  },
};

/**
 * The proofs a session stands for: its amr (what the last sign-in recorded), each at the time of
 * its login. A second factor was proven after the login it followed, so this errs on the old side.
 */
export function proofsOfSession(amr: readonly string[] | undefined, loginTs: number): Proof[] {
  const at = new Date(loginTs * 1000);
  const values = new Set(amr ?? []);
  const proofs: Proof[] = [];
  if (values.has('pwd')) proofs.push({ method: 'password', at });
  if (values.has('email')) proofs.push({ method: 'email_code', at });
  if (values.has('fed')) proofs.push({ method: 'federated', at, upstreamMfa: values.has('mfa') && !['otp', 'hwk', 'swk'].some((v) => values.has(v)) });
  if (values.has('otp')) proofs.push({ method: 'totp', at });
  if (values.has('hwk')) proofs.push({ method: 'passkey', at, deviceBound: true });
  if (values.has('swk')) proofs.push({ method: 'passkey', at, deviceBound: false });
  return proofs;
}

const storedDetails = z.object({
  outcome: z.enum(['second_factor', 'enrol']),
  methods: z.array(z.enum(['totp', 'recovery_code', 'passkey'])),
  required: z.string().optional(),
  /** What the sign-in has proven so far, and the login time the result keeps. */
  proofs: z.array(storedProof),
  loginTs: z.number(),
  requestedAcr: z.array(z.string()),
});

/** What the second-factor page needs: what to ask for, and what the sign-in has so far. */
export interface MfaPromptDetails {
  outcome: 'second_factor' | 'enrol';
  methods: ('totp' | 'recovery_code' | 'passkey')[];
  proofs: Proof[];
  loginTs: number;
  requestedAcr: string[];
}

export const mfaPromptDetails = {
  decode(details: unknown): MfaPromptDetails | undefined {
    const parsed = storedDetails.safeParse(details);
    if (!parsed.success) return undefined;
    return { ...parsed.data, proofs: storedProofs.decode(parsed.data.proofs)! };
  },
};

export interface MfaSignIn {
  accountId: string;
  clientId: string;
  /** acr_values, or the values of an acr asked for in the claims parameter. */
  requestedAcr: string[];
  acrEssential: boolean;
  maxAge: number | undefined;
  proofs: Proof[];
}

export interface MfaPromptSource {
  decide(signIn: MfaSignIn): Promise<MfaDecision>;
}

interface AcrClaimRequest { essential?: boolean; value?: string; values?: string[] }

/** The acr values a request asks for (acr_values, or the claims parameter), and whether they are essential. */
export function requestedAcrOf(oidc: KoaContextWithOIDC['oidc']): { values: string[]; essential: boolean } {
  const claim = (oidc.claims as { id_token?: { acr?: AcrClaimRequest | null } } | undefined)?.id_token?.acr ?? undefined;
  const fromParam = typeof oidc.params?.acr_values === 'string' ? oidc.params.acr_values.split(' ').filter(Boolean) : [];
  const fromClaim = claim ? [...(claim.values ?? []), ...(claim.value ? [claim.value] : [])] : [];
  return { values: fromClaim.length > 0 ? fromClaim : fromParam, essential: claim?.essential === true };
}

export function mfaPrompt(source: MfaPromptSource): interactionPolicy.Prompt {
  const decided = new WeakMap<KoaContextWithOIDC, z.infer<typeof storedDetails>>();

  const check = new interactionPolicy.Check(
    'second_factor_required', 'a second factor is required', 'interaction_required',
    async (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      const accountId = oidc.session?.accountId;
      if (!accountId || !oidc.client) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const result = oidc.result as Record<string, unknown> & { login?: { accountId?: string } } | undefined;
      const loginTs = oidc.session.loginTs ?? 0;
      const proofs = (result?.login?.accountId === accountId ? storedProofs.decode(result[PROOFS_RESULT]) : undefined)
        ?? proofsOfSession(oidc.session.amr as string[] | undefined, loginTs);
      const requested = requestedAcrOf(oidc);
      const maxAge = oidc.params?.max_age === undefined ? undefined : Number(oidc.params.max_age);
      const decision = await source.decide({
        accountId, clientId: oidc.client.clientId, requestedAcr: requested.values, acrEssential: requested.essential,
        maxAge: Number.isFinite(maxAge) ? maxAge : undefined, proofs,
      });
      switch (decision.outcome) {
        case 'none':
        // The login prompt comes first: it asks for a sign-in when there is none within max_age.
        case 'sign_in':
          return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        case 'refuse':
          throw new errors.UnmetAuthenticationRequirements('the requested authentication level cannot be reached with this account');
        default:
          decided.set(ctx, {
            outcome: decision.outcome, methods: decision.methods, ...(decision.outcome === 'second_factor' ? { required: decision.required } : {}),
            proofs: storedProofs.encode(proofs), loginTs, requestedAcr: requested.values,
          });
          return interactionPolicy.Check.REQUEST_PROMPT;
      }
    },
    (ctx: KoaContextWithOIDC) => decided.get(ctx) ?? {},
  );
  return new interactionPolicy.Prompt({ name: 'mfa', requestable: false }, check);
}
