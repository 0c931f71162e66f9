import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, type default as Provider } from 'oidc-provider';
import type { Config } from '../config/schema.ts';
import { DomainError } from '../errors.ts';
import { acrFor, amrFor, type Proof } from '../accounts/authentication-methods.ts';
import { PASSKEY_OFFER_RESULT } from './passkey-offer-prompt.ts';
import { mfaPromptDetails, PROOFS_RESULT, storedProofs, type MfaPromptDetails } from './mfa-prompt.ts';
import { FIRST_SIGN_IN, PROFILE_RESULT, profilePromptDetails, type ProfilePromptDetails } from './profile-prompt.ts';
import { claimsOfScopes } from './claims.ts';

// The HTTP layer drives sign-in pages through this small surface instead of reaching into
// oidc-provider: what the current interaction asks for, and the few ways to answer it. A request
// reads its interaction once (load) and answers that same interaction: the answer is written
// without reading it again.

export interface InteractionView {
  uid: string;
  /** The prompt to satisfy: "login", "consent", or one Parley adds to the policy. */
  prompt: string;
  /** The policy checks that asked for this prompt (e.g. "no_session", "op_scopes_missing"). */
  reasons: string[];
  clientId: string;
  clientName: string;
  firstParty: boolean;
  uiLocales: string | undefined;
  loginHint: string | undefined;
  /** The upstream provider the app asked to go straight to (`idp`), if any. */
  idp: string | undefined;
  /** Scopes the app asks for that the user has not granted yet (consent prompt). */
  missingScopes: string[];
  /**
   * Claims the app asks for by name (the claims parameter) that the user has not granted yet,
   * leaving out those a scope in `missingScopes` already carries.
   */
  missingClaims: string[];
  /** The signed-in account, when the interaction has one (every prompt after login). */
  accountId: string | undefined;
  /** The questions chosen for this sign-in and the session they count against (profile prompt). */
  profile: ProfilePromptDetails | undefined;
  /** What the second-factor step asks for, and what the sign-in has proven so far (mfa prompt). */
  mfa: MfaPromptDetails | undefined;
  /** The acr values the app asked for (acr_values), in its order of preference. */
  requestedAcr: string[];
  /** The user declined (the terms, or the app's request): the interaction only leads back to the app now. */
  declined: boolean;
}

export const INTERACTION_ERROR_CODES = ['session_expired'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { interaction: (typeof INTERACTION_ERROR_CODES)[number] }
}

/** The interaction is gone: expired, already finished, or its cookie is missing. */
export class InteractionExpiredError extends DomainError<'interaction'> {
  constructor(cause?: unknown) {
    super('interaction', 'session_expired', { message: 'the sign-in interaction has expired or was already completed', cause });
  }
}

/** The result key the terms step sets once the documents are accepted. */
const TERMS_RESULT = 'terms';

/** The login result for proofs: amr and acr as the ID token will carry them, and the proofs themselves. */
function loginResult(accountId: string, proofs: readonly Proof[], ts: number, requestedAcr: readonly string[]) {
  return {
    login: { accountId, amr: amrFor(proofs), acr: acrFor(proofs, requestedAcr), remember: true, ts },
    [PROOFS_RESULT]: storedProofs.encode(proofs),
  };
}

type Req = IncomingMessage;
type Res = ServerResponse;
type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;
type InteractionResult = Parameters<Provider['interactionResult']>[2];

/** What the consent prompt asks for (oidc-provider's consent prompt details). */
interface ConsentDetails { missingOIDCScope?: string[]; missingOIDCClaims?: string[] }

export function createInteractions(provider: Provider, config: Config, clock: () => Date) {
  // Each view load() returned, with the interaction it was read from, for the answer to write.
  const loaded = new WeakMap<InteractionView, Interaction>();

  function interactionOf(view: InteractionView): Interaction {
    const interaction = loaded.get(view);
    if (!interaction) throw new TypeError('an interaction is answered with the view load() returned for it');
    return interaction;
  }

  /**
   * Records the outcome of a step on the interaction this request read, as the provider's
   * interactionResult does after reading it again; returns where to send the browser next.
   */
  async function result(view: InteractionView, outcome: InteractionResult, mergeWithLastSubmission = true): Promise<string> {
    const interaction = interactionOf(view);
    // It may have run out while the step worked (a password check, a database write).
    if (interaction.isExpired) throw new InteractionExpiredError();
    interaction.result = mergeWithLastSubmission && !('error' in outcome) ? { ...interaction.lastSubmission, ...outcome } : outcome;
    await interaction.persist();
    return interaction.returnTo;
  }

  return {
    /** The interaction of this browser (its interaction cookie), as the pages need it. */
    async load(req: Req, res: Res): Promise<InteractionView> {
      let interaction: Interaction;
      try {
        interaction = await provider.interactionDetails(req, res);
      } catch (error) {
        if (error instanceof errors.SessionNotFound) throw new InteractionExpiredError(error);
        throw error;
      }
      const clientId = String(interaction.params.client_id);
      const client = config.clientsById.get(clientId);
      const promptDetails = interaction.prompt.details as ConsentDetails;
      const missingScopes = promptDetails.missingOIDCScope ?? [];
      const carried = claimsOfScopes(missingScopes);
      const view: InteractionView = {
        uid: interaction.uid,
        prompt: interaction.prompt.name,
        reasons: interaction.prompt.reasons,
        clientId,
        clientName: client?.name ?? clientId,
        firstParty: client?.first_party ?? false,
        uiLocales: typeof interaction.params.ui_locales === 'string' ? interaction.params.ui_locales : undefined,
        loginHint: typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : undefined,
        idp: typeof interaction.params.idp === 'string' ? interaction.params.idp : undefined,
        missingScopes,
        missingClaims: (promptDetails.missingOIDCClaims ?? []).filter((claim) => !carried.has(claim)),
        accountId: interaction.session?.accountId,
        profile: interaction.prompt.name === 'profile' ? profilePromptDetails.decode(interaction.prompt.details) : undefined,
        mfa: interaction.prompt.name === 'mfa' ? mfaPromptDetails.decode(interaction.prompt.details) : undefined,
        requestedAcr: typeof interaction.params.acr_values === 'string' ? interaction.params.acr_values.split(' ').filter(Boolean) : [],
        declined: interaction.result !== undefined && 'error' in interaction.result,
      };
      loaded.set(view, interaction);
      return view;
    },

    /**
     * Completes the login prompt with what the user proved; returns where to send the browser
     * next. `firstSignIn` marks the sign-in that follows registration (screen-sets triggered
     * after_registration). The proofs go into the result for the second-factor prompt, and their
     * amr and acr to the session and so to the ID token.
     */
    finishLogin(interaction: InteractionView, accountId: string, options: { proofs: readonly Proof[]; firstSignIn?: boolean }): Promise<string> {
      const { proofs } = options;
      // The time of the first factor, fixed now: later steps (second factor, consent, questions)
      // merge this result back, and without `ts` the provider would take the time of the last
      // step as the login's.
      const ts = Math.floor(Math.min(...proofs.map((p) => p.at.getTime()), clock().getTime()) / 1000);
      return result(interaction, {
        ...loginResult(accountId, proofs, ts, interaction.requestedAcr),
        ...(options.firstSignIn ? { [FIRST_SIGN_IN]: true } : {}),
      }, false);
    },

    /**
     * Adds a second factor to the sign-in of the mfa prompt (its proofs so far are in the
     * prompt's details); the login keeps its time. Returns where to send the browser next.
     */
    finishSecondFactor(interaction: InteractionView, proof: Proof): Promise<string> {
      const { mfa, accountId } = interaction;
      if (!mfa || !accountId) throw new Error('a second factor is added at the mfa prompt');
      return result(interaction, loginResult(accountId, [...mfa.proofs, proof], mfa.loginTs, mfa.requestedAcr));
    },

    /** Completes the passkey offer, whether a passkey was added or not now; returns where to send the browser next. */
    finishPasskeyOffer(interaction: InteractionView): Promise<string> {
      return result(interaction, { [PASSKEY_OFFER_RESULT]: { done: true } });
    },

    /** Completes the profile prompt, whatever the user chose; returns where to send the browser next. */
    finishProfile(interaction: InteractionView): Promise<string> {
      return result(interaction, { [PROFILE_RESULT]: { done: true } });
    },

    /** Where the browser goes on from this interaction (back to the app, once it is answered). */
    returnTo(view: InteractionView): string {
      return interactionOf(view).returnTo;
    },

    /** Completes the terms prompt (the acceptance is in the ledger); returns where to send the browser next. */
    finishTerms(interaction: InteractionView): Promise<string> {
      return result(interaction, { [TERMS_RESULT]: { accepted: true } });
    },

    /**
     * The user declined the terms: their session ends (they are signed out), and the app is told
     * access_denied when the browser goes back to it. Returns that way back.
     */
    async declineTerms(view: InteractionView): Promise<string> {
      const interaction = interactionOf(view);
      const sessionId = interaction.session?.cookie;
      // The way back resumes without a session: it must not ask for the one that is ending.
      if (interaction.session) delete (interaction.session as { uid?: string }).uid;
      const returnTo = await result(view, { error: 'access_denied', error_description: 'The user declined the terms' });
      const session = sessionId ? await provider.Session.find(sessionId) : undefined;
      await session?.destroy();
      return returnTo;
    },

    /** Grants what the app asked for in this interaction; returns where to send the browser next. */
    async grantConsent(view: InteractionView): Promise<string> {
      const interaction = interactionOf(view);
      const accountId = interaction.session?.accountId;
      if (!accountId) throw new InteractionExpiredError();
      const clientId = String(interaction.params.client_id);
      const grant = (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined)
        ?? new provider.Grant({ accountId, clientId });
      const requested = interaction.prompt.details as ConsentDetails;
      if (requested.missingOIDCScope?.length) grant.addOIDCScope(requested.missingOIDCScope.join(' '));
      if (requested.missingOIDCClaims?.length) grant.addOIDCClaims(requested.missingOIDCClaims);
      const grantId = await grant.save();
      return result(view, { consent: { grantId } });
    },

    /** The user declined: the app receives access_denied. */
    abort(interaction: InteractionView): Promise<string> {
      return result(interaction, { error: 'access_denied', error_description: 'The user declined the request' });
    },
  };
}

export type Interactions = ReturnType<typeof createInteractions>;
