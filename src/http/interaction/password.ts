// Signing in with an email address and a password, and registering one: the steps of the login
// prompt's own pages.
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import { AccountError } from '../../accounts/errors.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import type { Terms } from '../../consent/terms.ts';
import type { InteractionView } from '../../oidc/interactions.ts';
import { errorStatus, formErrors } from '../errors.ts';
import { state, type PageResponder } from '../context.ts';
import type { Metrics } from '../metrics.ts';
import { interactionUrls, type Step } from './steps.ts';
import type { RegistrationRequirements } from './registration.ts';
import { termsBoxes, tickedTerms } from './terms.ts';
import type { UpstreamButtonView } from '../../views/pages.ts';
import { passkeyForm } from './passkey.ts';
import { CredentialError } from '../../accounts/credential-errors.ts';
import type { Proof } from '../../accounts/authentication-methods.ts';
import type { RegisterInput } from '../../accounts/service.ts';
import type { SignInRequest } from './steps.ts';

export interface PasswordStepDeps {
  config: Config;
  accounts: Accounts;
  pages: PageResponder;
  metrics: Metrics;
  /** The documents registering needs accepted. */
  terms: Terms;
  /** What registering asks besides the account (terms, date of birth), on every path. */
  registration: RegistrationRequirements;
  /** Completes the login prompt for the account a step authenticated (commonSteps().finishLogin). */
  finishLogin: Step;
  /** The "Continue with …" buttons of the sign-in and registration pages. */
  upstreamButtons: (ctx: Context, interaction: InteractionView) => UpstreamButtonView[];
  clock: () => Date;
}

// After registering with require_verified_email, the browser keeps which account it is waiting
// for, bound to this one interaction. It is set for taken addresses too (with an id that exists
// nowhere), so the response does not reveal whether the address was already registered.
// With a passkey registration it also keeps that the passkey was the proof ("<id>.passkey.hwk"
// or ".swk"), so that the sign-in the link completes says so in amr, not "pwd".
const PENDING_COOKIE = 'parley.pending';

/** The pending cookie's value: the account waited on, and the proof of its registration. */
function pendingValue(accountId: string, proofs: readonly Proof[]): string {
  const passkey = proofs.find((p) => p.method === 'passkey');
  return passkey ? `${accountId}.passkey.${passkey.deviceBound ? 'hwk' : 'swk'}` : accountId;
}

function readPending(value: string | undefined, at: Date): { accountId: string; proofs: Proof[] } | undefined {
  if (!value) return undefined;
  const [accountId = '', method, kind] = value.split('.');
  return { accountId, proofs: method === 'passkey' ? [{ method: 'passkey', at, deviceBound: kind === 'hwk' }] : [{ method: 'password', at }] };
}


export function passwordSteps(deps: PasswordStepDeps) {
  const { config, accounts, pages, metrics, terms, registration, finishLogin, upstreamButtons, clock } = deps;
  /** Each of these paths proves the password: typed now, or at the registration it completes. */
  const passwordProof = () => [{ method: 'password' as const, at: clock() }];
  const minimumAge = config.registration.minimum_age;
  const secure = config.secureCookies;

  /** How an account error reads on a sign-in page: the one place these steps map errors. */
  function failure(ctx: Context, error: AccountError) {
    return {
      status: errorStatus(error),
      message: () => pages.errorMessage(ctx, error),
      fields: () => formErrors(pages, ctx, error),
    };
  }

  function loginPage(ctx: Context, interaction: InteractionView, extra: { email?: string; error?: string } = {}, status = 200) {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'login', {
      csrfToken: pages.csrf(ctx), action: urls.login, email: extra.email ?? interaction.loginHint,
      error: extra.error, clientName: interaction.clientName, registerUrl: urls.register, forgotUrl: urls.forgot,
      upstream: upstreamButtons(ctx, interaction),
      ...(config.mfa.passkeys.enabled ? { passkey: passkeyForm(interaction.uid) } : {}),
      ...(config.mfa.email_codes.enabled ? { emailCodeAction: urls.emailCode } : {}),
    }, status);
  }

  function registerPage(
    ctx: Context, interaction: InteractionView,
    extra: {
      email?: string | undefined; name?: string | undefined; birthdate?: string | undefined; errors: ReturnType<typeof formErrors>; ticked?: Set<string>;
    }, status = 200,
  ) {
    const urls = interactionUrls(interaction.uid);
    const { ticked, ...shown } = extra;
    pages.page(ctx, 'register', {
      csrfToken: pages.csrf(ctx), action: urls.register, ...shown, loginUrl: urls.page,
      passwordMinLength: config.accounts.password_min_length, askBirthdate: minimumAge > 0, upstream: upstreamButtons(ctx, interaction),
      ...(config.mfa.passkeys.enabled ? { passkey: { action: urls.passkeyAccount, optionsAction: urls.passkeyAccountOptions } } : {}),
      ...(terms.any ? { terms: termsBoxes(terms.shown(state(ctx).locale), ticked) } : {}),
    }, status);
  }

  function checkEmailPage(ctx: Context, interaction: InteractionView, email: string, notYetVerified?: true) {
    pages.page(ctx, 'check_email', {
      csrfToken: pages.csrf(ctx), email, continueAction: interactionUrls(interaction.uid).continue, ...(notYetVerified ? { notYetVerified } : {}),
    });
  }

  const showLogin: Step = async (ctx, { interaction }) => loginPage(ctx, interaction);

  /**
   * A failed sign-in shows the login form again with one message: wrong password and unknown
   * address alike, throttling with how long to wait.
   */
  const answerLoginFailure: Step = async (ctx, signIn, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      metrics.signIns.inc({ outcome: error.code });
      if (error.code === 'throttled') {
        metrics.throttled.inc();
        ctx.set('Retry-After', String(Math.ceil(error.retryAfterSeconds ?? 1)));
      }
      const { status, message } = failure(ctx, error);
      loginPage(ctx, signIn.interaction, { email: signIn.form.get('email') ?? '', error: message() }, status);
    }
  };

  /**
   * An address that can be no account's is refused here, before the throttle or the database sees
   * it: saying so reveals nothing about which accounts exist.
   */
  const requirePossibleEmail: Step = async (_ctx, { form }, next) => {
    const problem = accounts.emailProblem(form.get('email') ?? '');
    if (problem) throw new AccountError(problem, { field: 'email' });
    await next();
  };

  const checkPassword: Step = async (ctx, signIn, next) => {
    const { form } = signIn;
    const account = await accounts.authenticate({ email: form.get('email') ?? '', password: form.get('password') ?? '', ip: ctx.ip });
    signIn.authenticated = { accountId: account.id, outcome: 'success', accountLocale: account.locale, proofs: passwordProof() };
    await next();
  };

  const showRegister: Step = async (ctx, { interaction }) => registerPage(ctx, interaction, { email: interaction.loginHint, errors: {} });

  /** A refused registration shows the form again with each message beside its field (a refused passkey, above the form). */
  const answerRegisterFailure: Step = async (ctx, { interaction, form }, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof AccountError) && !(error instanceof CredentialError)) throw error;
      const { status, fields } = error instanceof AccountError ? failure(ctx, error)
        : { status: errorStatus(error), fields: () => ({ form: pages.errorMessage(ctx, error) }) };
      registerPage(ctx, interaction, {
        email: form.get('email') ?? '', name: form.get('name')?.trim() || undefined, errors: fields(), ticked: tickedTerms(form),
        ...(minimumAge > 0 ? { birthdate: form.get('birthdate') ?? '' } : {}),
      }, status);
    }
  };

  /**
   * Creates the account. Signed in at once, the sign-in goes on; when the address must be
   * verified first, this browser is told to check its email and waits on the account.
   */
  const registerAccount: Step = (ctx, signIn, next) =>
    register(ctx, signIn, next, { password: signIn.form.get('password') ?? '' }, passwordProof());

  /**
   * Registers with the registration form's fields and what proves the person (a password, or a
   * passkey with its account id and its storing in `extras`), and answers alike for a taken
   * address whatever the proof: the next step signs the new account in, or "check your email".
   */
  async function register(
    ctx: Context, signIn: SignInRequest, next: Next,
    proof: Pick<RegisterInput, 'password' | 'id'> & { extras?: RegisterInput['extras'] }, proofs: Proof[],
  ): Promise<void> {
    const { interaction, form } = signIn;
    const email = form.get('email') ?? '';
    const registered = await accounts.register({
      email, password: proof.password, id: proof.id, name: form.get('name')?.trim() || undefined,
      locale: state(ctx).locale, interactionUid: interaction.uid,
      extras: [...registration.extras(ctx, interaction, form), ...proof.extras ?? []],
    });
    if (registered.outcome === 'signed_in') {
      signIn.authenticated = { accountId: registered.account.id, outcome: 'registered', firstSignIn: true, proofs };
      return next();
    }
    ctx.cookies.set(PENDING_COOKIE, pendingValue(registered.accountId ?? randomUUID(), proofs), {
      signed: true, httpOnly: true, sameSite: 'lax', secure, path: interactionUrls(interaction.uid).page,
      maxAge: config.ttl.interaction * 1000,
    });
    checkEmailPage(ctx, interaction, email);
  };

  /**
   * The account this browser registered and waits on (require_verified_email), once its address
   * is verified, is signed in; otherwise the next step answers.
   */
  const finishVerifiedRegistration: Step = async (ctx, signIn, next) => {
    const pending = readPending(ctx.cookies.get(PENDING_COOKIE, { signed: true }), clock());
    const account = pending ? await accounts.findById(pending.accountId) : undefined;
    if (!pending || !account?.email_verified_at) return next();
    ctx.cookies.set(PENDING_COOKIE, null, { path: interactionUrls(signIn.interaction.uid).page });
    // Only a registration sets the pending cookie: this is the account's first sign-in.
    signIn.authenticated = { accountId: account.id, outcome: 'success', firstSignIn: true, proofs: pending.proofs };
    await finishLogin(ctx, signIn, next);
  };

  /** Still waiting on the emailed link: says so; with nothing to wait on, the login form. */
  const showStillWaiting: Step = async (ctx, { interaction }) => {
    if (!ctx.cookies.get(PENDING_COOKIE, { signed: true })) return loginPage(ctx, interaction);
    checkEmailPage(ctx, interaction, '', true);
  };

  /** The sign-in page again, with what refused a passkey. */
  const showLoginFailure = (ctx: Context, interaction: InteractionView, error: CredentialError) =>
    loginPage(ctx, interaction, { error: pages.errorMessage(ctx, error) }, errorStatus(error));

  return {
    loginPage, showLogin, showLoginFailure, answerLoginFailure, requirePossibleEmail, checkPassword,
    showRegister, answerRegisterFailure, registerAccount, register, finishVerifiedRegistration, showStillWaiting,
  };
}

export type PasswordSteps = ReturnType<typeof passwordSteps>;
