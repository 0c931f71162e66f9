import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, type default as Provider } from 'oidc-provider';
import type { Config } from '../config/schema.ts';
import { DomainError } from '../errors.ts';
import { FIRST_SIGN_IN, PROFILE_RESULT, type ProfilePromptDetails } from './profile-prompt.ts';
import { claimsOfScopes } from './provider.ts';

// The HTTP layer drives sign-in pages through this small surface instead of reaching into
// oidc-provider: what the current interaction asks for, and the few ways to answer it.

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
  /** Scopes the app asks for that the user has not granted yet (consent prompt). */
  missingScopes: string[];
  /**
   * Claims the app asks for by name (the claims parameter) that the user has not granted yet,
   * leaving out those a scope in `missingScopes` already carries.
   */
  missingClaims: string[];
  /** The signed-in account, when the interaction has one (every prompt after login). */
  accountId: string | undefined;
  /** The questions chosen for this sign-in (profile prompt). */
  profile: ProfilePromptDetails | undefined;
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

type Req = IncomingMessage;
type Res = ServerResponse;

export function createInteractions(provider: Provider, config: Config) {
  const clients = new Map(config.clients.map((c) => [c.client_id, c]));

  async function details(req: Req, res: Res) {
    try {
      return await provider.interactionDetails(req, res);
    } catch (error) {
      if (error instanceof errors.SessionNotFound) throw new InteractionExpiredError(error);
      throw error;
    }
  }

  async function result(req: Req, res: Res, outcome: Parameters<Provider['interactionResult']>[2], mergeWithLastSubmission = true): Promise<string> {
    try {
      return await provider.interactionResult(req, res, outcome, { mergeWithLastSubmission });
    } catch (error) {
      if (error instanceof errors.SessionNotFound) throw new InteractionExpiredError(error);
      throw error;
    }
  }

  return {
    async load(req: Req, res: Res): Promise<InteractionView> {
      const interaction = await details(req, res);
      const clientId = String(interaction.params.client_id);
      const client = clients.get(clientId);
      const promptDetails = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] } & Partial<ProfilePromptDetails>;
      const missingScopes = promptDetails.missingOIDCScope ?? [];
      const carried = claimsOfScopes(missingScopes);
      return {
        uid: interaction.uid,
        prompt: interaction.prompt.name,
        reasons: interaction.prompt.reasons,
        clientId,
        clientName: client?.name ?? clientId,
        firstParty: client?.first_party ?? false,
        uiLocales: typeof interaction.params.ui_locales === 'string' ? interaction.params.ui_locales : undefined,
        loginHint: typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : undefined,
        missingScopes,
        missingClaims: (promptDetails.missingOIDCClaims ?? []).filter((claim) => !carried.has(claim)),
        accountId: interaction.session?.accountId,
        profile: interaction.prompt.name === 'profile' && promptDetails.setId && promptDetails.sessionKey
          ? {
            setId: promptDetails.setId, setVersion: promptDetails.setVersion ?? 1,
            questionIds: promptDetails.questionIds ?? [], sessionKey: promptDetails.sessionKey,
          }
          : undefined,
      };
    },

    /**
     * Completes the login prompt; returns where to send the browser next. `firstSignIn` marks the
     * sign-in that follows registration (screen-sets triggered after_registration).
     */
    finishLogin(req: Req, res: Res, accountId: string, options: { firstSignIn?: boolean } = {}): Promise<string> {
      return result(req, res, {
        // The time of the password, fixed now: later steps (consent, questions) merge this result
        // back, and without `ts` the provider would take the time of the last step as the login's.
        login: { accountId, amr: ['pwd'], remember: true, ts: Math.floor(Date.now() / 1000) },
        ...(options.firstSignIn ? { [FIRST_SIGN_IN]: true } : {}),
      }, false);
    },

    /** Completes the profile prompt, whatever the user chose; returns where to send the browser next. */
    finishProfile(req: Req, res: Res): Promise<string> {
      return result(req, res, { [PROFILE_RESULT]: { done: true } });
    },

    /** Grants what the app asked for in this interaction; returns where to send the browser next. */
    async grantConsent(req: Req, res: Res): Promise<string> {
      const interaction = await details(req, res);
      const accountId = interaction.session?.accountId;
      if (!accountId) throw new InteractionExpiredError();
      const clientId = String(interaction.params.client_id);
      const grant = (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined)
        ?? new provider.Grant({ accountId, clientId });
      const requested = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (requested.missingOIDCScope?.length) grant.addOIDCScope(requested.missingOIDCScope.join(' '));
      if (requested.missingOIDCClaims?.length) grant.addOIDCClaims(requested.missingOIDCClaims);
      const grantId = await grant.save();
      return result(req, res, { consent: { grantId } });
    },

    /** The user declined: the app receives access_denied. */
    abort(req: Req, res: Res): Promise<string> {
      return result(req, res, { error: 'access_denied', error_description: 'The user declined the request' });
    },
  };
}

export type Interactions = ReturnType<typeof createInteractions>;
