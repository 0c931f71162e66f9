import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, type default as Provider } from 'oidc-provider';
import { amrFor, type Proof } from '../accounts/authentication-methods.ts';
import type { Config } from '../config/schema.ts';
import { DomainError } from '../errors.ts';
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
        declined: interaction.result !== undefined && 'error' in interaction.result,
      };
      loaded.set(view, interaction);
      return view;
    },

    /**
     * Completes the login prompt; returns where to send the browser next. `firstSignIn` marks the
     * sign-in that follows registration (screen-sets triggered after_registration). `proofs`: how
     * the person proved who they are (a password when not given).
     */
    finishLogin(interaction: InteractionView, accountId: string, options: { firstSignIn?: boolean; proofs?: readonly Proof[] } = {}): Promise<string> {
      return result(interaction, {
        // The time of the proof, fixed now: later steps (consent, questions) merge this result
        // back, and without `ts` the provider would take the time of the last step as the login's.
        login: { accountId, amr: options.proofs ? amrFor(options.proofs) : ['pwd'], remember: true, ts: Math.floor(clock().getTime() / 1000) },
        ...(options.firstSignIn ? { [FIRST_SIGN_IN]: true } : {}),
      }, false);
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
