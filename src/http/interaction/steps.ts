// The shape of every sign-in route: a short list of small steps, each with one concern, run in
// order (as oidc-provider builds its endpoints from a list of small middlewares). A guard checks
// one thing and calls next() to go on, or answers and stops; the last step answers. Steps hand
// on what they learned in the SignInRequest they share, and nothing else.
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Proof } from '../../accounts/authentication-methods.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import { readForm as readFormBody } from '../body.ts';
import { state } from '../context.ts';
import { checkCsrf as checkCsrfToken } from '../csrf.ts';
import { settleLocale } from '../locale.ts';
import type { Metrics } from '../metrics.ts';

export type Next = () => Promise<void>;
export type Step = (ctx: Context, signIn: SignInRequest, next: Next) => Promise<void>;

/** `METHOD /path` under /interaction/:uid, as the access log names the route. */
export type SignInRoute = `${'GET' | 'POST'} /${string}`;

/** Who proved who they are in this request: set by a step that authenticates, read by finishLogin. */
export interface Authenticated {
  accountId: string;
  /** How the sign-in is counted in parley_signins_total. */
  outcome: 'success' | 'registered';
  /** The account's first sign-in, right after registering (screen-sets triggered after_registration). */
  firstSignIn?: boolean;
  /** The language saved on the account, when the step read it. */
  accountLocale?: string | null;
  /** What the step proved, and when: the sign-in's amr and acr, and what the second-factor step builds on. */
  proofs: Proof[];
}

/** What the steps of one request have learned, for the steps after them. */
export class SignInRequest {
  #interaction: InteractionView | undefined;
  #form: URLSearchParams | undefined;
  authenticated: Authenticated | undefined;

  /** The interaction of the URL (loadInteraction). */
  get interaction(): InteractionView { return this.#interaction ?? missing('loadInteraction'); }
  set interaction(interaction: InteractionView) { this.#interaction = interaction; }

  /** The form posted, within its size limit (readForm). */
  get form(): URLSearchParams { return this.#form ?? missing('readForm'); }
  set form(form: URLSearchParams) { this.#form = form; }
}

function missing(step: string): never {
  throw new Error(`${step} must come before this step in the route's list`);
}

/** Runs steps in order with the request's SignInRequest: each goes on to the next by calling next(). */
export function sequence(steps: readonly Step[]): Step {
  return (ctx, signIn, next) => {
    const from = async (i: number): Promise<void> => {
      const step = steps[i];
      return step ? step(ctx, signIn, () => from(i + 1)) : next();
    };
    return from(0);
  };
}

/** The routes of a table, each running its steps for a fresh SignInRequest. */
export function signInRouter(routes: Readonly<Record<SignInRoute, readonly Step[]>>): Router {
  const router = new Router({ prefix: '/interaction/:uid' });
  for (const [route, steps] of Object.entries(routes)) {
    const [method, path] = route.split(' ') as ['GET' | 'POST', string];
    const run = sequence(steps);
    const handler = (ctx: Context) => run(ctx, new SignInRequest(), async () => {});
    if (method === 'GET') router.get(path, handler);
    else router.post(path, handler);
  }
  return router;
}

export const interactionUrls = (uid: string) => ({
  page: `/interaction/${uid}`,
  login: `/interaction/${uid}/login`,
  register: `/interaction/${uid}/register`,
  continue: `/interaction/${uid}/continue`,
  consent: `/interaction/${uid}/consent`,
  abort: `/interaction/${uid}/abort`,
  profile: `/interaction/${uid}/profile`,
  profileSkip: `/interaction/${uid}/profile/skip`,
  terms: `/interaction/${uid}/terms`,
  upstream: (provider: string) => `/interaction/${uid}/upstream/${encodeURIComponent(provider)}`,
  upstreamRegister: `/interaction/${uid}/upstream/register`,
  upstreamLink: `/interaction/${uid}/upstream/link`,
  upstreamCode: `/interaction/${uid}/upstream/code`,
  termsDecline: `/interaction/${uid}/terms/decline`,
  emailCode: `/interaction/${uid}/email-code`,
  emailCodeVerify: `/interaction/${uid}/email-code/verify`,
  passkey: `/interaction/${uid}/passkey`,
  passkeyOptions: `/interaction/${uid}/passkey/options`,
  passkeyRegister: `/interaction/${uid}/passkey/register`,
  passkeyRegisterOptions: `/interaction/${uid}/passkey/register/options`,
  passkeyOfferSkip: `/interaction/${uid}/passkey/offer/skip`,
  passkeyAccount: `/interaction/${uid}/passkey/account`,
  passkeyAccountOptions: `/interaction/${uid}/passkey/account/options`,
  mfaTotp: `/interaction/${uid}/mfa/totp`,
  mfaRecovery: `/interaction/${uid}/mfa/recovery`,
  mfaEnrol: `/interaction/${uid}/mfa/enrol`,
  mfaEnrolConfirm: `/interaction/${uid}/mfa/enrol/confirm`,
  forgot: `/forgot-password?return=${encodeURIComponent(`/interaction/${uid}`)}`,
});

/** After a form, the browser goes on with a GET (303), whatever it posted. */
export function seeOther(ctx: Context, location: string): void {
  ctx.status = 303;
  ctx.redirect(location);
}

/** The guards and answers every sign-in path shares, whatever proves who the user is. */
export function commonSteps(deps: {
  config: Config;
  accounts: Pick<Accounts, 'findById' | 'setLocale'>;
  interactions: Interactions;
  metrics: Metrics;
}) {
  const { config, accounts, interactions, metrics } = deps;

  /** Reads this browser's interaction; a URL naming another one is not found. */
  const loadInteraction: Step = async (ctx, signIn, next) => {
    const interaction = await interactions.load(ctx.req, ctx.res);
    if (interaction.uid !== ctx.params.uid) ctx.throw(404);
    signIn.interaction = interaction;
    await next();
  };

  /**
   * The app's ui_locales stayed on the authorization request; after login the account's own
   * locale counts too (read only when neither the person's choice nor ui_locales decides).
   */
  const pickPageLocale: Step = async (ctx, { interaction }, next) => {
    const { accountId } = interaction;
    await settleLocale(ctx, config, {
      uiLocales: interaction.uiLocales,
      accountLocale: accountId ? async () => (await accounts.findById(accountId))?.locale : undefined,
    });
    await next();
  };

  /** The posted form, refused whole (413) beyond the size limit. */
  const readForm: Step = async (ctx, signIn, next) => {
    signIn.form = await readFormBody(ctx);
    await next();
  };

  /** The form came from our own page (double-submit token). */
  const checkCsrf: Step = async (ctx, { form }, next) => {
    checkCsrfToken(ctx, form.get('csrf'));
    await next();
  };

  /**
   * The step belongs to the prompt the interaction is at; a form of another step (an old tab, a
   * crafted post) sends the browser to the interaction's page, which shows the step it is at.
   */
  const requirePrompt = (prompt: string): Step => async (ctx, { interaction }, next) => {
    if (interaction.prompt !== prompt) return seeOther(ctx, interactionUrls(interaction.uid).page);
    await next();
  };

  /** Shows the page of the prompt the interaction is at, from a table of prompt → steps. */
  const pageOfPrompt = (pages: Readonly<Record<string, readonly Step[]>>): Step => {
    const byPrompt = new Map(Object.entries(pages).map(([prompt, steps]) => [prompt, sequence(steps)]));
    return async (ctx, signIn, next) => {
      const page = byPrompt.get(signIn.interaction.prompt);
      if (page) return page(ctx, signIn, next);
      state(ctx).log.error({ prompt: signIn.interaction.prompt }, 'no page for this interaction prompt');
      ctx.throw(500);
    };
  };

  /** A language chosen on the sign-in page follows the person onto the account they signed in to. */
  const keepChosenLocale: Step = async (ctx, { authenticated }, next) => {
    const chosen = state(ctx).chosenLocale;
    if (authenticated && chosen && chosen !== authenticated.accountLocale) await accounts.setLocale(authenticated.accountId, chosen);
    await next();
  };

  /** Completes the login prompt for the account a step before authenticated; the sign-in goes on. */
  const finishLogin: Step = async (ctx, { interaction, authenticated }) => {
    if (!authenticated) throw new Error('finishLogin must come after a step that authenticates');
    metrics.signIns.inc({ outcome: authenticated.outcome });
    seeOther(ctx, await interactions.finishLogin(interaction, authenticated.accountId, {
      proofs: authenticated.proofs, ...(authenticated.firstSignIn ? { firstSignIn: true } : {}),
    }));
  };

  /** The user declined: the app receives access_denied. */
  const decline: Step = async (ctx, { interaction }) => seeOther(ctx, await interactions.abort(interaction));

  return { loadInteraction, pickPageLocale, readForm, checkCsrf, requirePrompt, pageOfPrompt, keepChosenLocale, finishLogin, decline };
}
