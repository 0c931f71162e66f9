import type { IncomingMessage } from 'node:http';
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

// The progressive-profiling step of a sign-in, as a prompt in oidc-provider's interaction policy:
// after login and consent, before the app gets its code. To the app it is invisible: the
// authorization request is answered as any other, only a little later.

/** What the prompt hands to the question screen (stored in the interaction's prompt details). */
export interface ProfilePromptDetails {
  setId: string;
  setVersion: number;
  questionIds: string[];
  sessionKey: string;
}

export interface ProfileSignIn {
  accountId: string;
  clientId: string;
  sessionKey: string;
  trigger: 'after_registration' | 'after_login';
  promptNone: boolean;
  uiLocales: string | undefined;
  acceptLanguage: string | undefined;
}

export interface ProfilePromptSource {
  /** The screen to show now, or null. `request` is the HTTP request the check runs in (its language choice lives there). */
  pendingScreen(signIn: ProfileSignIn, request: IncomingMessage): Promise<{ setId: string; setVersion: number; questionIds: string[] } | null>;
  /** Told when deciding failed; the sign-in goes on without questions. */
  onError(error: unknown): void;
}

/** What the login step records in the interaction result so that this prompt knows the sign-in is the first. */
export const FIRST_SIGN_IN = 'parley_first_sign_in';

/** The result key the question screen sets when it is done (answered, skipped or declined). */
export const PROFILE_RESULT = 'profile';

export function profilePrompt(source: ProfilePromptSource): interactionPolicy.Prompt {
  const decided = new WeakMap<KoaContextWithOIDC, ProfilePromptDetails>();

  const check = new interactionPolicy.Check('profile_questions_due', 'a profiling screen is due', async (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    const result = oidc.result as Record<string, unknown> | undefined;
    // Never asks where nobody can answer, and only once per authorization request.
    if (oidc.promptPending('none') || result?.[PROFILE_RESULT] || !oidc.session?.accountId || !oidc.client) {
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }
    const sessionKey = `${oidc.session.uid}.${oidc.session.loginTs ?? 0}`;
    try {
      const screen = await source.pendingScreen({
        accountId: oidc.session.accountId,
        clientId: oidc.client.clientId,
        sessionKey,
        trigger: result?.[FIRST_SIGN_IN] === true ? 'after_registration' : 'after_login',
        promptNone: false,
        uiLocales: typeof oidc.params?.ui_locales === 'string' ? oidc.params.ui_locales : undefined,
        acceptLanguage: ctx.get('accept-language') || undefined,
      }, ctx.req);
      if (!screen) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      decided.set(ctx, { ...screen, sessionKey });
      return interactionPolicy.Check.REQUEST_PROMPT;
    } catch (error) {
      // Profiling never blocks a sign-in.
      source.onError(error);
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }
  }, (ctx: KoaContextWithOIDC) => ({ ...decided.get(ctx) }));

  return new interactionPolicy.Prompt({ name: 'profile', requestable: false }, check);
}
