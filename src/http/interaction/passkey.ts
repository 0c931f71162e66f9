// Signing in with a passkey, and a passkey as the second factor: the steps behind the passkey
// form of the sign-in page and of the second-factor page (partials/passkey_form.hbs, driven by
// /assets/passkeys.js). The options are fetched with the form's CSRF token and their challenge is
// bound to this interaction (and, at the second factor, to its account); the browser's answer is
// posted as a form and ends like any other way to sign in: in finishLogin, or in the second factor.
import type { Context } from 'koa';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { Proof } from '../../accounts/authentication-methods.ts';
import { CredentialError } from '../../accounts/credential-errors.ts';
import type { PasskeyOffers } from '../../accounts/passkey-offers.ts';
import type { Passkeys } from '../../accounts/passkeys.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { PageResponder } from '../context.ts';
import { errorStatus } from '../errors.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import { interactionUrls, seeOther, type Step } from './steps.ts';
import type { PasswordSteps } from './password.ts';
import type { RegistrationRequirements } from './registration.ts';

export interface PasskeyStepDeps {
  passkeys: Passkeys;
  offers: PasskeyOffers;
  onPasskeyAdded?: ((accountId: string) => Parameters<Passkeys['register']>[1]) | undefined;
  accounts: Pick<Accounts, 'findById' | 'emailProblem' | 'normalizeEmail'>;
  /** Registers with the registration form's fields and a proof (passwordSteps().register). */
  register?: PasswordSteps['register'];
  /** What registering asks besides the account (terms, date of birth). */
  registration?: Pick<RegistrationRequirements, 'missingBeforeCredential'>;
  pages: PageResponder;
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
  const { passkeys, offers, accounts, pages, interactions, clock, showFailure } = deps;
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

  // "Sign in faster next time?" (the passkey_offer prompt): make a passkey, or not now.
  function offerPage(ctx: Context, interaction: InteractionView, error?: CredentialError) {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'passkey_offer', {
      csrfToken: pages.csrf(ctx), clientName: interaction.clientName,
      passkey: { action: urls.passkeyRegister, optionsAction: urls.passkeyRegisterOptions },
      skipAction: urls.passkeyOfferSkip, error: error ? pages.errorMessage(ctx, error) : undefined,
    }, error ? errorStatus(error) : 200);
  }

  /** Shows the offer, and remembers it was shown: not again within profiling.min_interval. */
  const showOffer: Step = async (ctx, { interaction }) => {
    await offers.shown(accountOf(interaction));
    offerPage(ctx, interaction);
  };

  const registrationOptions: Step = async (ctx, { interaction }) => {
    const accountId = accountOf(interaction);
    const account = await accounts.findById(accountId);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await passkeys.registrationOptions({
      binding: binding(interaction), user: { id: accountId, name: account?.email ?? accountId, displayName: account?.name ?? undefined },
    });
  };

  /**
   * A passkey is made during a sign-in at the offer, and where a second factor must be set up
   * first (the mfa prompt's enrolment): there, made with the user verified, it is the proof.
   */
  const requireRegistrationPrompt: Step = async (ctx, { interaction }, next) => {
    const enrolling = interaction.prompt === 'mfa' && interaction.mfa?.outcome === 'enrol' && interaction.mfa.methods.includes('passkey');
    if (interaction.prompt !== 'passkey_offer' && !enrolling) return seeOther(ctx, interactionUrls(interaction.uid).page);
    await next();
  };

  const register: Step = async (ctx, { interaction, form }) => {
    const accountId = accountOf(interaction);
    let added;
    try {
      added = await passkeys.register({
        binding: binding(interaction), accountId, response: postedCredential<RegistrationResponseJSON>(form), name: form.get('name') ?? undefined,
      }, deps.onPasskeyAdded?.(accountId));
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      return interaction.prompt === 'mfa' ? showFailure(ctx, interaction, error) : offerPage(ctx, interaction, error);
    }
    if (interaction.prompt === 'mfa') {
      return seeOther(ctx, await interactions.finishSecondFactor(interaction, { method: 'passkey', at: clock(), deviceBound: added.deviceType === 'singleDevice' }));
    }
    seeOther(ctx, await interactions.finishPasskeyOffer(interaction));
  };

  const skipOffer: Step = async (ctx, { interaction }) => seeOther(ctx, await interactions.finishPasskeyOffer(interaction));

  // Registering with a passkey and no password. The challenge is bound to this sign-in under a
  // binding of its own (a challenge handed out for an existing account's passkey does not do),
  // and it keeps the account id, chosen by the server, that the passkey's user handle names.
  const newAccountBinding = (interaction: InteractionView) => `new-account:interaction:${interaction.uid}`;

  /** Options for the registration page's passkey way; an address that can be no account's gets none. */
  const newAccountOptions: Step = async (ctx, { interaction, form }) => {
    ctx.set('Cache-Control', 'no-store');
    const email = form.get('email') ?? '';
    if (accounts.emailProblem(email)) {
      ctx.status = 400;
      ctx.body = { error: 'email_invalid' };
      return;
    }
    // No passkey for a form the post would refuse: it would stay on the device, unusable. (Our
    // script checks the form's required fields before it asks; this is for any other client.)
    const missing = deps.registration?.missingBeforeCredential(ctx, interaction, form) ?? [];
    if (missing.length > 0) {
      ctx.status = 400;
      ctx.body = { error: 'form_incomplete', fields: missing };
      return;
    }
    ctx.body = await passkeys.newAccountOptions({
      binding: newAccountBinding(interaction), user: { name: accounts.normalizeEmail(email), displayName: form.get('name')?.trim() || undefined },
    });
  };

  /** Verifies the new passkey, then registers: the account, the passkey, terms and age in one transaction. */
  const registerAccount: Step = async (ctx, signIn, next) => {
    if (!deps.register) throw new Error('passkey registration needs the registration steps');
    const made = await passkeys.verifyNewAccount({ binding: newAccountBinding(signIn.interaction), response: postedCredential<RegistrationResponseJSON>(signIn.form) });
    const proof: Proof = { method: 'passkey', at: clock(), deviceBound: made.passkey.deviceType === 'singleDevice' };
    await deps.register(ctx, signIn, next, { password: null, id: made.accountId, extras: [{ record: (trx) => made.store(trx) }] }, [proof]);
  };

  return { newAccountOptions, registerAccount, requirePasskeyPrompt, options, answerFailure, verify, showOffer, requireRegistrationPrompt, registrationOptions, register, skipOffer };
}

/** The passkey offer comes after login: its interaction always has an account. */
function accountOf(interaction: InteractionView): string {
  if (!interaction.accountId) throw new Error('the passkey offer has no account');
  return interaction.accountId;
}
