import { randomUUID } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { AccountError } from '../../accounts/errors.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import { errorStatus, formErrors } from '../errors.ts';
import { readForm } from '../body.ts';
import { state, type PageResponder } from '../context.ts';
import { checkCsrf } from '../csrf.ts';
import { settleLocale } from '../locale.ts';
import type { Metrics } from '../metrics.ts';
import type { ProfileScreen } from './profile-screen.ts';
import { localize } from '../../screensets/loader.ts';

// The pages of a sign-in, one route per step of the interaction policy. Each handler is the
// same short sequence: load the interaction, check the form, call the domain, answer.

export interface InteractionRouteDeps {
  config: Config;
  accounts: Accounts;
  interactions: Interactions;
  pages: PageResponder;
  metrics: Metrics;
  profileScreen: ProfileScreen;
}

// After registering with require_verified_email, the browser keeps which account it is waiting
// for, bound to this one interaction. It is set for taken addresses too (with an id that exists
// nowhere), so the response does not reveal whether the address was already registered.
const PENDING_COOKIE = 'parley.pending';

// How the consent screen names a claim asked for by name: related claims share one line.
const CLAIM_LABELS: Record<string, string> = {
  email: 'scope.email', email_verified: 'scope.email',
  name: 'claim.name', given_name: 'claim.name', family_name: 'claim.name', middle_name: 'claim.name', nickname: 'claim.name', preferred_username: 'claim.name',
  locale: 'claim.locale', zoneinfo: 'claim.locale',
  birthdate: 'claim.birthdate',
  gender: 'claim.gender',
};

export function interactionRoutes(deps: InteractionRouteDeps): Router {
  const { config, accounts, interactions, pages, metrics, profileScreen } = deps;
  const secure = new URL(config.issuer).protocol === 'https:';
  const router = new Router({ prefix: '/interaction/:uid' });

  const urls = (uid: string) => ({
    login: `/interaction/${uid}/login`,
    register: `/interaction/${uid}/register`,
    consent: `/interaction/${uid}/consent`,
    abort: `/interaction/${uid}/abort`,
    continue: `/interaction/${uid}/continue`,
    page: `/interaction/${uid}`,
    forgot: `/forgot-password?return=${encodeURIComponent(`/interaction/${uid}`)}`,
  });

  async function load(ctx: Context): Promise<InteractionView> {
    const interaction = await interactions.load(ctx.req, ctx.res);
    if (interaction.uid !== ctx.params.uid) ctx.throw(404);
    // The app's ui_locales stayed on the authorization request; after login the account's own
    // locale counts too (read only when neither the person's choice nor ui_locales decides).
    const { accountId } = interaction;
    await settleLocale(ctx, config, {
      uiLocales: interaction.uiLocales,
      accountLocale: accountId ? async () => (await accounts.findById(accountId))?.locale : undefined,
    });
    return interaction;
  }

  function loginPage(ctx: Context, interaction: InteractionView, extra: { email?: string; error?: string } = {}, status = 200) {
    const u = urls(interaction.uid);
    pages.page(ctx, 'login', {
      csrfToken: pages.csrf(ctx), action: u.login, email: extra.email ?? interaction.loginHint,
      error: extra.error, clientName: interaction.clientName, registerUrl: u.register, forgotUrl: u.forgot,
    }, status);
  }

  /**
   * What the app will receive, in plain words: scopes, then claims asked for by name; the
   * preferences are spelled out per purpose, since the app receives only those of its purposes.
   */
  function consentItems(ctx: Context, interaction: InteractionView): string[] {
    const { locale } = state(ctx);
    const purposes = config.clients.find((c) => c.client_id === interaction.clientId)?.purposes ?? [];
    const preferences = () => purposes.map((p) => pages.t(ctx, 'scope.preferences_for', { purpose: localize(config.purposes[p]!.title, locale, config.locales.default) }));
    const items = [
      ...interaction.missingScopes.filter((s) => s !== 'openid').flatMap((scope) => scope === 'preferences' ? preferences() : [pages.t(ctx, `scope.${scope}`)]),
      ...interaction.missingClaims.flatMap((claim) => claim === 'preferences' ? preferences() : [CLAIM_LABELS[claim] ? pages.t(ctx, CLAIM_LABELS[claim]) : claim]),
    ];
    return [...new Set(items)];
  }

  function redirect(ctx: Context, location: string) {
    ctx.status = 303;
    ctx.redirect(location);
  }

  async function form(ctx: Context): Promise<URLSearchParams> {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    return body;
  }

  /** Finishes login for an account whose email verification this browser was waiting for. */
  async function continuePending(ctx: Context, interaction: InteractionView): Promise<'done' | 'waiting' | 'none'> {
    const pendingId = ctx.cookies.get(PENDING_COOKIE, { signed: true });
    if (!pendingId) return 'none';
    const account = await accounts.findById(pendingId);
    if (!account) return 'waiting';
    if (!account.email_verified_at) return 'waiting';
    ctx.cookies.set(PENDING_COOKIE, null, { path: urls(interaction.uid).page });
    metrics.signIns.inc({ outcome: 'success' });
    // Only a registration sets the pending cookie: this is the account's first sign-in.
    redirect(ctx, await interactions.finishLogin(ctx.req, ctx.res, account.id, { firstSignIn: true }));
    return 'done';
  }

  router.get('/', async (ctx) => {
    const interaction = await load(ctx);
    switch (interaction.prompt) {
      case 'login':
        if (await continuePending(ctx, interaction) === 'done') return;
        return loginPage(ctx, interaction);
      case 'consent':
        // The brand's own apps never show a consent screen, even when asked with prompt=consent.
        if (interaction.firstParty) return redirect(ctx, await interactions.grantConsent(ctx.req, ctx.res));
        return pages.page(ctx, 'consent', {
          csrfToken: pages.csrf(ctx), action: urls(interaction.uid).consent, cancelAction: urls(interaction.uid).abort,
          clientName: interaction.clientName,
          items: consentItems(ctx, interaction),
        });
      case 'profile':
        return profileScreen.show(ctx, interaction);
      default:
        state(ctx).log.error({ prompt: interaction.prompt }, 'no page for this interaction prompt');
        return ctx.throw(500);
    }
  });

  // The hot path of every sign-in: the interaction is read once, by finishLogin, on success.
  router.post('/login', async (ctx) => {
    const body = await form(ctx);
    const email = body.get('email') ?? '';
    try {
      // An address that can be no account's is refused here, before the throttle or the
      // database sees it: saying so reveals nothing about which accounts exist.
      const problem = accounts.emailProblem(email);
      if (problem) throw new AccountError(problem, { field: 'email' });
      const account = await accounts.authenticate({ email, password: body.get('password') ?? '', ip: ctx.ip });
      metrics.signIns.inc({ outcome: 'success' });
      // A language chosen on the sign-in page follows the person onto their account.
      const chosen = state(ctx).chosenLocale;
      if (chosen && chosen !== account.locale) await accounts.setLocale(account.id, chosen);
      redirect(ctx, await interactions.finishLogin(ctx.req, ctx.res, account.id));
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      const interaction = await load(ctx);
      metrics.signIns.inc({ outcome: error.code });
      if (error.code === 'throttled') {
        metrics.throttled.inc();
        ctx.set('Retry-After', String(Math.ceil(error.retryAfterSeconds ?? 1)));
      }
      loginPage(ctx, interaction, { email, error: pages.errorMessage(ctx, error) }, errorStatus(error));
    }
  });

  router.get('/register', async (ctx) => {
    const interaction = await load(ctx);
    pages.page(ctx, 'register', {
      csrfToken: pages.csrf(ctx), action: urls(interaction.uid).register, email: interaction.loginHint, errors: {},
      loginUrl: urls(interaction.uid).page, passwordMinLength: config.accounts.password_min_length,
    });
  });

  router.post('/register', async (ctx) => {
    const interaction = await load(ctx);
    const body = await form(ctx);
    const email = body.get('email') ?? '';
    const name = body.get('name')?.trim() || undefined;
    try {
      const registered = await accounts.register({
        email, password: body.get('password') ?? '', name, locale: state(ctx).locale, interactionUid: interaction.uid,
      });
      if (registered.outcome === 'signed_in') {
        metrics.signIns.inc({ outcome: 'registered' });
        return redirect(ctx, await interactions.finishLogin(ctx.req, ctx.res, registered.account.id, { firstSignIn: true }));
      }
      ctx.cookies.set(PENDING_COOKIE, registered.accountId ?? randomUUID(), {
        signed: true, httpOnly: true, sameSite: 'lax', secure, path: urls(interaction.uid).page,
        maxAge: config.ttl.interaction * 1000,
      });
      pages.page(ctx, 'check_email', { csrfToken: pages.csrf(ctx), email, continueAction: urls(interaction.uid).continue });
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      pages.page(ctx, 'register', {
        csrfToken: pages.csrf(ctx), action: urls(interaction.uid).register, email, name,
        errors: formErrors(pages, ctx, error), loginUrl: urls(interaction.uid).page,
        passwordMinLength: config.accounts.password_min_length,
      }, errorStatus(error));
    }
  });

  router.post('/continue', async (ctx) => {
    const interaction = await load(ctx);
    await form(ctx);
    const outcome = await continuePending(ctx, interaction);
    if (outcome === 'done') return;
    if (outcome === 'none') return loginPage(ctx, interaction);
    pages.page(ctx, 'check_email', {
      csrfToken: pages.csrf(ctx), email: '', continueAction: urls(interaction.uid).continue, notYetVerified: true,
    });
  });

  router.post('/consent', async (ctx) => {
    await load(ctx);
    await form(ctx);
    redirect(ctx, await interactions.grantConsent(ctx.req, ctx.res));
  });

  router.post('/profile', async (ctx) => {
    const interaction = await load(ctx);
    const body = await form(ctx);
    if (interaction.prompt !== 'profile') return redirect(ctx, urls(interaction.uid).page);
    await profileScreen.save(ctx, interaction, body);
  });

  router.post('/profile/skip', async (ctx) => {
    const interaction = await load(ctx);
    await form(ctx);
    if (interaction.prompt !== 'profile') return redirect(ctx, urls(interaction.uid).page);
    await profileScreen.skip(ctx, interaction);
  });

  router.post('/abort', async (ctx) => {
    await load(ctx);
    await form(ctx);
    redirect(ctx, await interactions.abort(ctx.req, ctx.res));
  });

  return router;
}
