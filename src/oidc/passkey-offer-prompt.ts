import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { PROOFS_RESULT, storedProofs } from './mfa-prompt.ts';
import { PROFILE_RESULT } from './profile-prompt.ts';

// "Sign in faster next time?": the last step of a sign-in in which the person typed their
// password, offering to add a passkey. Never with prompt=none (nobody is there to answer), never
// in a sign-in that showed a question screen (one extra step is enough), never when this sign-in
// did not use the password (an existing session, a passkey), and at most once per
// profiling.min_interval (the source decides, and remembers when it was shown).

/** The result key the offer's page sets when it is answered (added or not now). */
export const PASSKEY_OFFER_RESULT = 'parley_passkey_offer';

export interface PasskeyOfferSource {
  due(accountId: string): Promise<boolean>;
}

export function passkeyOfferPrompt(source: PasskeyOfferSource): interactionPolicy.Prompt {
  const check = new interactionPolicy.Check('passkey_offer', 'a passkey may be offered', async (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    const result = oidc.result as Record<string, unknown> & { login?: { accountId?: string } } | undefined;
    const accountId = oidc.session?.accountId;
    if (!accountId || oidc.promptPending('none') || !result || result[PASSKEY_OFFER_RESULT] || result[PROFILE_RESULT]) {
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }
    const proofs = result.login?.accountId === accountId ? storedProofs.decode(result[PROOFS_RESULT]) ?? [] : [];
    if (!proofs.some((p) => p.method === 'password') || proofs.some((p) => p.method === 'passkey')) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return (await source.due(accountId)) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  });
  return new interactionPolicy.Prompt({ name: 'passkey_offer', requestable: false }, check);
}
