import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

// The terms step of a sign-in, as a prompt in oidc-provider's interaction policy: right after
// login, before consent and profiling (the order is set in provider.ts). When the account has not
// accepted the current version of every terms document, the person accepts or declines before
// the app gets its code. Unlike profiling it cannot be skipped, and with prompt=none the app gets
// interaction_required (the check's error; oidc-provider answers prompt=none with the error of the
// first check that asks for a prompt). Every way to sign in ends at the login prompt, so every
// way passes here; registration records the acceptance with the account, so a new account does
// not see this step.

export interface TermsPromptSource {
  /** Whether the account has accepted every current document at its current version. */
  upToDate(accountId: string): Promise<boolean>;
  /** Sign-ins to this client are not held up for the terms (the preference center: data rights do not wait on them). */
  exempt(clientId: string): boolean;
}

export function termsPrompt(source: TermsPromptSource): interactionPolicy.Prompt {
  const check = new interactionPolicy.Check(
    'terms_not_accepted', 'the account has not accepted the current terms', 'interaction_required',
    async (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      const accountId = oidc.session?.accountId;
      if (!accountId || !oidc.client || source.exempt(oidc.client.clientId)) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      // A failure to read the ledger is a failure of the sign-in, not a pass: the step is not optional.
      return (await source.upToDate(accountId)) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    },
  );
  return new interactionPolicy.Prompt({ name: 'terms', requestable: false }, check);
}
