import type { Router } from '@koa/router';
import type { Accounts } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import type { Terms } from '../../consent/terms.ts';
import type { Interactions } from '../../oidc/interactions.ts';
import type { PageResponder } from '../context.ts';
import type { Metrics } from '../metrics.ts';
import { consentSteps } from './consent.ts';
import { passwordSteps } from './password.ts';
import type { ProfileScreen } from './profile-screen.ts';
import { commonSteps, signInRouter, type Step } from './steps.ts';
import { registrationRequirements } from './registration.ts';
import { secondFactorSteps, type SecondFactorServices } from './second-factor.ts';
import { passkeySteps } from './passkey.ts';
import { emailCodeSteps } from './email-code.ts';
import { termsSteps } from './terms.ts';
import { upstreamButtons, upstreamSteps, type Upstreams } from './upstream.ts';

// The pages of a sign-in under /interaction/:uid, one route per step of the interaction policy,
// each a list of small steps (steps.ts): load this URL's interaction, pick the page's language,
// read the form and check its token, check the interaction is at this step's prompt, then the
// step's own work and its answer. A new way to sign in is a new row here and its steps in a file
// of its own, ending in finishLogin with what it proved, so that every way goes on through the
// same prompts (second factor, terms, consent, profile); a new way to register asks what registration.ts asks (terms, age) the same way.

export interface InteractionRouteDeps {
  config: Config;
  accounts: Accounts;
  interactions: Interactions;
  pages: PageResponder;
  metrics: Metrics;
  profileScreen: ProfileScreen;
  terms: Terms;
  /** Authenticator-app and recovery codes, for the second-factor step. */
  credentials: SecondFactorServices;
  clock: () => Date;
  /** The upstream identity providers ("Continue with …"): none configured, an empty map. */
  upstreams: Upstreams;
}

export function interactionRoutes(deps: InteractionRouteDeps): Router {
  const { loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt, pageOfPrompt, keepChosenLocale, finishLogin, decline } = commonSteps(deps);
  const registration = registrationRequirements(deps);
  const password = passwordSteps({ ...deps, registration, finishLogin, upstreamButtons: upstreamButtons(deps.config, deps.upstreams.clients) });
  const upstream = upstreamSteps({ ...deps, registration, finishLogin, loginPage: password.loginPage });
  const consent = consentSteps(deps);
  const terms = termsSteps(deps);
  const mfa = secondFactorSteps(deps);
  const emailCode = emailCodeSteps({
    ...deps, emailCodes: deps.credentials.emailCodes, mail: deps.credentials.mail, showLoginFailure: password.showLoginFailure,
  });
  const passkey = passkeySteps({
    ...deps, passkeys: deps.credentials.passkeys, offers: deps.credentials.passkeyOffers, onPasskeyAdded: deps.credentials.onPasskeyAdded,
    register: password.register, registration,
    showFailure: (ctx, interaction, error) => (interaction.prompt === 'mfa' ? mfa.showFailure(ctx, interaction, error) : password.showLoginFailure(ctx, interaction, error)),
  });
  const profile = deps.profileScreen;

  // What the interaction's page shows at each prompt of the policy.
  const promptPages: Record<string, readonly Step[]> = {
    login: [password.finishVerifiedRegistration, upstream.goToRequestedProvider, password.showLogin],
    mfa: [mfa.show],
    terms: [terms.show],
    consent: [consent.grantFirstParty, consent.showConsent],
    profile: [profile.show],
    passkey_offer: [passkey.showOffer],
  };

  return signInRouter({
    'GET /': [loadInteraction, pickPageLocale, pageOfPrompt(promptPages)],
    'POST /login': [
      loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'),
      password.answerLoginFailure, password.requirePossibleEmail, password.checkPassword, keepChosenLocale, finishLogin,
    ],
    'GET /register': [loadInteraction, pickPageLocale, requirePrompt('login'), registration.refuseUnderAge, password.showRegister],
    'POST /register': [
      loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'),
      registration.refuseUnderAge, password.answerRegisterFailure, password.registerAccount, finishLogin,
    ],
    'POST /continue': [
      loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'),
      password.finishVerifiedRegistration, password.showStillWaiting,
    ],
    'GET /upstream/:id': [loadInteraction, pickPageLocale, requirePrompt('login'), upstream.start],
    'GET /upstream/:id/callback': [loadInteraction, pickPageLocale, requirePrompt('login'), upstream.complete],
    'POST /upstream/register': [
      loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'),
      upstream.forgetIfTurnedAway, registration.refuseUnderAge, upstream.register,
    ],
    'POST /upstream/link': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'), upstream.linkWithPassword],
    'POST /upstream/code': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'), upstream.emailCode],
    'POST /email-code': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'), emailCode.send],
    'POST /email-code/verify': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'), emailCode.verify, keepChosenLocale, finishLogin],
    'POST /passkey/options': [loadInteraction, readForm, checkCsrf, passkey.requirePasskeyPrompt, passkey.options],
    'POST /passkey': [
      loadInteraction, pickPageLocale, readForm, checkCsrf, passkey.requirePasskeyPrompt, passkey.answerFailure, passkey.verify, keepChosenLocale, finishLogin,
    ],
    'POST /passkey/register/options': [loadInteraction, readForm, checkCsrf, passkey.requireRegistrationPrompt, passkey.registrationOptions],
    'POST /passkey/register': [loadInteraction, pickPageLocale, readForm, checkCsrf, passkey.requireRegistrationPrompt, passkey.register],
    'POST /passkey/account/options': [loadInteraction, readForm, checkCsrf, requirePrompt('login'), passkey.newAccountOptions],
    'POST /passkey/account': [
      loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('login'),
      registration.refuseUnderAge, password.answerRegisterFailure, passkey.registerAccount, finishLogin,
    ],
    'POST /passkey/offer/skip': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('passkey_offer'), passkey.skipOffer],
    'POST /mfa/totp': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('mfa'), mfa.answerFailure('totp'), mfa.checkTotp],
    'POST /mfa/recovery': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('mfa'), mfa.answerFailure('recovery'), mfa.checkRecoveryCode],
    'POST /mfa/enrol': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('mfa'), mfa.beginEnrolment],
    'POST /mfa/enrol/confirm': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('mfa'), mfa.confirmEnrolment],
    'POST /terms': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('terms'), terms.accept],
    'POST /terms/decline': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('terms'), terms.decline],
    'POST /consent': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('consent'), consent.grantConsent],
    'POST /profile': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('profile'), profile.save],
    'POST /profile/skip': [loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt('profile'), profile.skip],
    'POST /abort': [loadInteraction, pickPageLocale, readForm, checkCsrf, decline],
  });
}
