// Signing in with a passkey, and a passkey as the second factor: the steps behind the passkey
// form of the sign-in page and of the second-factor page (partials/passkey_form.hbs, driven by
// /assets/passkeys.js). The options are fetched with the form's CSRF token and their challenge is
// bound to this interaction (and, at the second factor, to its account); the browser's answer is
// posted as a form and ends like any other way to sign in: in finishLogin, or in the second factor.
import type { Context } from 'koa';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { Proof } from '../../accounts/authentication-methods.ts';
import { CredentialError } from '../../accounts/credential-errors.ts';
import type { Passkeys } from '../../accounts/passkeys.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import { interactionUrls, seeOther, type Step } from './steps.ts';

export interface PasskeyStepDeps {
  passkeys: Passkeys;
  interactions: Interactions;
  clock: () => Date;
  /** Shows the sign-in page (login prompt) or the second-factor page (mfa prompt) with what refused the passkey. */
  showFailure: (ctx: Context, interaction: InteractionView, error: CredentialError) => Promise<void> | void;
}

/** The sign-in page's and the second-factor page's passkey form. */
export const passkeyForm = (uid: string) => ({
  action: interactionUrls(uid).passkey, optionsAction: interactionUrls(uid).passkeyOptions,
});

/** The browser's answer as posted: JSON, or nothing the library would take. */
export function postedCredential<T = AuthenticationResponseJSON>(form: URLSearchParams): T {
  try {
    const parsed: unknown = JSON.parse(form.get('response') ?? '');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as T;
  } catch { /* refused below */ }
  throw new CredentialError('passkey_not_verified');
}

export function passkeySteps(deps: PasskeyStepDeps) {
  const { passkeys, interactions, clock, showFailure } = deps;
  const binding = (interaction: InteractionView) => `interaction:${interaction.uid}`;
  /** At the second factor only the signed-in account's passkeys will do; at login, anyone's. */
  const accountFor = (interaction: InteractionView) => (interaction.prompt === 'mfa' ? interaction.accountId : undefined);

  /** A passkey is asked for at the login and second-factor prompts only. */
  const requirePasskeyPrompt: Step = async (ctx, { interaction }, next) => {
    if (interaction.prompt !== 'login' && interaction.prompt !== 'mfa') return seeOther(ctx, interactionUrls(interaction.uid).page);
    await next();
  };

  const options: Step = async (ctx, { interaction }) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await passkeys.authenticationOptions({ binding: binding(interaction), accountId: accountFor(interaction) });
  };

  const answerFailure: Step = async (ctx, { interaction }, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      await showFailure(ctx, interaction, error);
    }
  };

  /** Checks the answer; at login the account it names is signed in, at the second factor it is the proof. */
  const verify: Step = async (ctx, signIn, next) => {
    const { interaction, form } = signIn;
    const signedIn = await passkeys.authenticate({ binding: binding(interaction), accountId: accountFor(interaction), response: postedCredential(form) });
    const proof: Proof = { method: 'passkey', at: clock(), deviceBound: signedIn.passkey.deviceType === 'singleDevice' };
    if (interaction.prompt === 'mfa') return seeOther(ctx, await interactions.finishSecondFactor(interaction, proof));
    signIn.authenticated = { accountId: signedIn.accountId, outcome: 'success', proofs: [proof] };
    await next();
  };

  return { requirePasskeyPrompt, options, answerFailure, verify };
}
