// The preference center at /account: the signed-in user's answers, consents, communication
// preferences, connected apps, export and account deletion. The user is signed in with the
// provider's own session (through the built-in "parley-account" client), every form is CSRF
// protected, and every action is keyed by the session's account: no URL can name another user.
import { randomBytes, createHash } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config/schema.ts';
import { consentStatus, consentText } from '../../consent/ledger.ts';
import type { PreferenceCenter } from '../../consent/preference-center.ts';
import type { Terms } from '../../consent/terms.ts';
import { ACCOUNT_CLIENT_ID } from '../../config/derived.ts';
import type { SessionReader, SignedInUser } from '../../oidc/sessions.ts';
import { localize } from '../../screensets/loader.ts';
import type { AccountConsentView } from '../../views/pages.ts';
import { AccountError } from '../../accounts/errors.ts';
import type { Accounts } from '../../accounts/service.ts';
import { errorStatus, fieldMessages, formErrors } from '../errors.ts';
import type { FieldErrors } from '../../errors.ts';
import type { AnswerErrorCode } from '../../screensets/engine.ts';
import { readForm } from '../body.ts';
import { state, type PageResponder } from '../context.ts';
import { checkCsrf } from '../csrf.ts';
import { settleLocale } from '../locale.ts';
import { answerFieldName, formatAnswer, questionViews } from '../question-view.ts';

export interface PreferenceCenterDeps {
  config: Config;
  accounts: Pick<Accounts, 'findById' | 'requestEmailChange' | 'confirmEmailChange'>;
  center: PreferenceCenter;
  sessions: SessionReader;
  pages: PageResponder;
  clock: () => Date;
  /** What the person accepted of the terms documents, shown at the foot of the page. */
  terms: Pick<Terms, 'overview'>;
}

const FLOW_COOKIE = 'parley.account_flow';
const NOTICES = ['answer_saved', 'answer_deleted', 'consent_granted', 'consent_withdrawn', 'communication_saved', 'app_revoked'] as const;

export function preferenceCenterRoutes(deps: PreferenceCenterDeps): Router {
  const { config, center, sessions, pages, clock, accounts } = deps;
  const { baseUrl: base, secureCookies: secure } = config;
  const clientName = (clientId: string) => config.clientsById.get(clientId)?.name ?? clientId;
  const router = new Router({ prefix: '/account' });
  // Ids in paths are question ids, purposes and client ids: anything else names nothing here.
  router.param('questionId', (id, ctx, next) => (/^[a-z][a-z0-9_]{0,63}$/.test(id) ? next() : ctx.throw(404)));
  router.param('purpose', (id, ctx, next) => (Object.hasOwn(config.purposes, id) ? next() : ctx.throw(404)));
  router.param('clientId', (id, ctx, next) => (/^[A-Za-z0-9._~-]{1,128}$/.test(id) ? next() : ctx.throw(404)));

  const date = (ctx: Context, at: Date) => new Intl.DateTimeFormat(state(ctx).locale, { dateStyle: 'medium' }).format(at);
  const redirect = (ctx: Context, location: string) => {
    ctx.status = 303;
    ctx.redirect(location);
  };

  /** The pages of a signed-in user are in the language saved on their account, unless they chose another here. */
  const speakTheirLanguage = (ctx: Context, signedIn: SignedInUser) =>
    settleLocale(ctx, config, { accountLocale: async () => (await accounts.findById(signedIn.accountId))?.locale });

  /** The signed-in user, or a redirect to sign in (then back to `returnTo`). */
  async function user(ctx: Context, returnTo = '/account'): Promise<SignedInUser | undefined> {
    const signedIn = await sessions.current(ctx.req, ctx.res, ctx.secure);
    if (!signedIn) redirect(ctx, `/account/login?return=${encodeURIComponent(returnTo)}`);
    else await speakTheirLanguage(ctx, signedIn);
    return signedIn;
  }

  /** A form post of the signed-in user, CSRF-checked before anything else is read. */
  async function post(ctx: Context): Promise<{ user: SignedInUser; body: URLSearchParams } | undefined> {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    const signedIn = await sessions.current(ctx.req, ctx.res, ctx.secure);
    if (!signedIn) {
      redirect(ctx, '/account/login');
      return undefined;
    }
    await speakTheirLanguage(ctx, signedIn);
    return { user: signedIn, body };
  }

  // The pages that change the account itself (its address, its deletion) show and check its
  // current address; an account deleted meanwhile (in another tab) is sent to sign in.
  async function addressOf(ctx: Context, signedIn: SignedInUser): Promise<string | undefined> {
    const account = await accounts.findById(signedIn.accountId);
    if (!account) redirect(ctx, '/account/login');
    return account?.email;
  }

  function accountPage(path: string, render: (ctx: Context, signedIn: SignedInUser, email: string) => void) {
    router.get(path, async (ctx) => {
      const signedIn = await user(ctx, `/account${path}`);
      const email = signedIn && await addressOf(ctx, signedIn);
      if (signedIn && email !== undefined) render(ctx, signedIn, email);
    });
  }

  async function accountPost(ctx: Context): Promise<{ user: SignedInUser; body: URLSearchParams; email: string } | undefined> {
    const form = await post(ctx);
    const email = form && await addressOf(ctx, form.user);
    return form && email !== undefined ? { ...form, email } : undefined;
  }

  const recentEnough = (signedIn: SignedInUser) => clock().getTime() / 1000 - signedIn.loginTs <= config.account.recent_sign_in;
  // Back to a Parley page after signing in: the preference center, or the operators' statistics.
  const safeReturn = (value: unknown) => (typeof value === 'string' && /^\/(account|stats)(\/[A-Za-z0-9_/-]*)?$/.test(value) ? value : '/account');

  // Signing in to the preference center is an ordinary authorization request of the built-in
  // client. Its session is what the pages read; the code itself is not needed and simply expires.
  router.get('/login', (ctx) => {
    const flow = { state: randomBytes(16).toString('base64url'), verifier: randomBytes(32).toString('base64url'), return: safeReturn(ctx.query.return) };
    ctx.cookies.set(FLOW_COOKIE, Buffer.from(JSON.stringify(flow)).toString('base64url'), {
      signed: true, httpOnly: true, sameSite: 'lax', secure, path: '/account', maxAge: config.ttl.interaction * 1000,
    });
    const url = new URL(`${base}/auth`);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: `${base}/account/callback`,
      state: flow.state, code_challenge: createHash('sha256').update(flow.verifier).digest('base64url'), code_challenge_method: 'S256',
      ui_locales: state(ctx).locale,
      // Deleting the account asks for a password entered within the last few minutes.
      ...(ctx.query.reauth === '1' ? { max_age: String(config.account.recent_sign_in), prompt: 'login' } : {}),
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', (ctx) => {
    const raw = ctx.cookies.get(FLOW_COOKIE, { signed: true });
    ctx.cookies.set(FLOW_COOKIE, null, { path: '/account' });
    let flow: { state: string; return: string } | undefined;
    try {
      flow = raw ? JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { state: string; return: string } : undefined;
    } catch {
      flow = undefined;
    }
    if (!flow || ctx.query.state !== flow.state || typeof ctx.query.code !== 'string') return redirect(ctx, '/account/login');
    redirect(ctx, safeReturn(flow.return));
  });

  router.get('/logout', (ctx) => {
    const url = new URL(`${base}/session/end`);
    url.search = new URLSearchParams({ client_id: ACCOUNT_CLIENT_ID, post_logout_redirect_uri: `${base}/account`, ui_locales: state(ctx).locale }).toString();
    ctx.redirect(url.href);
  });

  router.get('/', async (ctx) => {
    const signedIn = await user(ctx);
    if (!signedIn) return;
    const overview = await center.overview(signedIn.accountId);
    if (!overview) return redirect(ctx, '/account/login');
    const { locale } = state(ctx);
    const t = (key: string, vars?: Record<string, string | number>) => pages.t(ctx, key, vars);
    const defaultLocale = config.locales.default;
    const done = typeof ctx.query.done === 'string' && (NOTICES as readonly string[]).includes(ctx.query.done) ? ctx.query.done : undefined;

    const consents: AccountConsentView[] = Object.entries(config.purposes).map(([purpose, definition]) => {
      const current = overview.consents.get(purpose);
      const text = consentText(definition, locale, defaultLocale);
      const changeable = definition.legal_basis === 'consent';
      const status = consentStatus(definition, current);
      // A purpose on another legal basis is shown as in force; it has no buttons.
      const stateName: AccountConsentView['state'] = status === 'not_required' ? 'granted' : status;
      return {
        purpose, title: text.title, description: text.description, legalBasis: t(`legal_basis.${definition.legal_basis}`),
        changeable, state: stateName, version: definition.version,
        ...(current ? { changedAt: date(ctx, current.at) } : {}),
        action: `/account/consents/${purpose}`,
        answerCount: overview.answers.filter((a) => a.purpose === purpose).length,
      };
    });

    pages.page(ctx, 'account', {
      csrfToken: pages.csrf(ctx),
      email: overview.account.email,
      ...(overview.account.name ? { name: overview.account.name } : {}),
      ...(done ? { notice: t(`account.notice.${done}`) } : {}),
      answers: overview.answers.map((answer) => ({
        questionId: answer.questionId,
        // The question as it was asked, in the words and language the user read then.
        label: answer.label,
        value: formatAnswer(answer.question, answer.value, { locale, defaultLocale, t }),
        purposeTitle: config.purposes[answer.purpose] ? localize(config.purposes[answer.purpose]!.title, locale, defaultLocale) : answer.purpose,
        ...(answer.clientId ? { appName: clientName(answer.clientId) } : {}),
        answeredAt: date(ctx, answer.updatedAt),
        ...(answer.question ? { editUrl: `/account/answers/${answer.questionId}/edit` } : {}),
        deleteAction: `/account/answers/${answer.questionId}/delete`,
      })),
      consents,
      terms: (await deps.terms.overview(signedIn.accountId, locale)).map((document) => ({
        ...document, accepted: document.accepted.map((a) => ({ version: a.version, date: date(ctx, a.at) })),
      })),
      communication: {
        action: '/account/communication',
        channels: config.communication.channels.map((id) => ({ id, label: t(`channel.${id}`) })),
        topics: Object.entries(config.communication.topics).map(([id, topic]) => ({
          id, title: localize(topic.title, locale, defaultLocale),
          toggles: config.communication.channels.map((channel) => ({
            channel, value: `${channel}:${id}`, checked: overview.communication.get(`${channel}:${id}`) ?? false,
          })),
        })),
      },
      apps: overview.apps.filter((app) => app.clientId !== ACCOUNT_CLIENT_ID).map((app) => {
        const client = config.clientsById.get(app.clientId);
        const receives = app.scopes.filter((s) => s !== 'openid' && s !== 'preferences').map((s) => t(`scope.${s}`));
        if (app.scopes.includes('preferences')) {
          for (const purpose of client?.purposes ?? []) {
            const definition = config.purposes[purpose];
            if (definition) receives.push(localize(definition.title, locale, defaultLocale));
          }
        }
        return { clientId: app.clientId, name: clientName(app.clientId), receives, revokeAction: `/account/apps/${app.clientId}/revoke` };
      }),
      exportUrl: '/account/export',
      deleteUrl: '/account/delete',
      emailUrl: '/account/email',
      signOutUrl: '/account/logout',
    });
  });

  async function editPage(ctx: Context, signedIn: SignedInUser, questionId: string, submitted?: string[], errors?: FieldErrors<AnswerErrorCode>) {
    const answer = await center.answer(signedIn.accountId, questionId);
    if (!answer?.question) return ctx.throw(404);
    const { locale } = state(ctx);
    const defaultLocale = config.locales.default;
    const [view] = questionViews([{ question: answer.question, currentAnswer: answer.value }], {
      locale, defaultLocale, now: clock(), t: (key, vars) => pages.t(ctx, key, vars),
      ...(submitted ? { submitted: new Map([[questionId, submitted]]) } : {}),
      ...(errors ? { errors: fieldMessages(pages, ctx, 'answer', errors) } : {}),
    });
    const purpose = config.purposes[answer.purpose];
    pages.page(ctx, 'account_edit_answer', {
      csrfToken: pages.csrf(ctx), action: `/account/answers/${questionId}`, cancelUrl: '/account#answers',
      purposeTitle: purpose ? localize(purpose.title, locale, defaultLocale) : answer.purpose,
      question: { ...view!, reasked: false, hideDecline: true },
      ...(errors ? { error: pages.t(ctx, 'profile.form_error') } : {}),
    }, errors ? 400 : 200);
  }

  router.get('/answers/:questionId/edit', async (ctx) => {
    const signedIn = await user(ctx, `/account/answers/${ctx.params.questionId}/edit`);
    if (signedIn) await editPage(ctx, signedIn, ctx.params.questionId!);
  });

  router.post('/answers/:questionId', async (ctx) => {
    const form = await post(ctx);
    if (!form) return;
    const questionId = ctx.params.questionId!;
    const raw = form.body.getAll(answerFieldName(questionId));
    const result = await center.updateAnswer({ accountId: form.user.accountId, questionId, raw, locale: state(ctx).locale });
    if (!result.ok && result.reason === 'not_found') return ctx.throw(404);
    if (!result.ok) {
      state(ctx).returnTo = `/account/answers/${questionId}/edit`;
      return editPage(ctx, form.user, questionId, raw, new Map([[questionId, result.rejection]]));
    }
    redirect(ctx, '/account?done=answer_saved#answers');
  });

  router.post('/answers/:questionId/delete', async (ctx) => {
    const form = await post(ctx);
    if (!form) return;
    await center.deleteAnswer(form.user.accountId, ctx.params.questionId!, state(ctx).locale);
    redirect(ctx, '/account?done=answer_deleted#answers');
  });

  router.post('/consents/:purpose', async (ctx) => {
    const form = await post(ctx);
    if (!form) return;
    const action = form.body.get('action');
    if (action !== 'grant' && action !== 'withdraw') return ctx.throw(400);
    const changed = await center.setConsent({
      accountId: form.user.accountId, purpose: ctx.params.purpose!, action: action === 'grant' ? 'granted' : 'withdrawn',
      deleteAnswers: form.body.get('delete_answers') === 'yes', locale: state(ctx).locale,
    });
    if (!changed) return ctx.throw(404);
    redirect(ctx, `/account?done=${action === 'grant' ? 'consent_granted' : 'consent_withdrawn'}#consents`);
  });

  router.post('/communication', async (ctx) => {
    const form = await post(ctx);
    if (!form) return;
    await center.setCommunication(form.user.accountId, new Set(form.body.getAll('comm')));
    redirect(ctx, '/account?done=communication_saved#communication');
  });

  router.post('/apps/:clientId/revoke', async (ctx) => {
    const form = await post(ctx);
    if (!form) return;
    await center.revokeApp(form.user.accountId, ctx.params.clientId!);
    redirect(ctx, '/account?done=app_revoked#apps');
  });

  router.get('/export', async (ctx) => {
    const signedIn = await user(ctx);
    if (!signedIn) return;
    const data = await center.exportData(signedIn.accountId);
    if (!data) return redirect(ctx, '/account/login');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Disposition', `attachment; filename="parley-data-${clock().toISOString().slice(0, 10)}.json"`);
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(data, null, 2);
  });

  function emailPage(ctx: Context, signedIn: SignedInUser, email: string, extra: { newEmail?: string; error?: string; sent?: boolean } = {}, status = 200) {
    pages.page(ctx, 'account_email', {
      csrfToken: pages.csrf(ctx), action: '/account/email', cancelUrl: '/account', email,
      needsRecentSignIn: !recentEnough(signedIn), reauthUrl: '/account/login?reauth=1&return=%2Faccount%2Femail',
      sent: extra.sent ?? false,
      ...(extra.newEmail !== undefined ? { newEmail: extra.newEmail } : {}),
      ...(extra.error ? { error: extra.error } : {}),
    }, status);
  }

  accountPage('/email', emailPage);

  // Like deleting the account, changing its address needs a password entered a moment ago.
  router.post('/email', async (ctx) => {
    const form = await accountPost(ctx);
    if (!form) return;
    const { email } = form;
    if (!recentEnough(form.user)) return emailPage(ctx, form.user, email);
    const newEmail = form.body.get('new_email')?.trim() ?? '';
    if (newEmail.toLowerCase() === email) return emailPage(ctx, form.user, email, { newEmail, error: pages.t(ctx, 'account.email.same') }, 400);
    try {
      await accounts.requestEmailChange(form.user.accountId, newEmail, state(ctx).locale);
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      const errors = formErrors(pages, ctx, error);
      return emailPage(ctx, form.user, email, { newEmail, error: errors.email ?? errors.form }, errorStatus(error));
    }
    emailPage(ctx, form.user, email, { sent: true });
  });

  // Opened from the mail, possibly in another browser: the token alone proves the new address.
  router.get('/email/confirm', async (ctx) => {
    try {
      await accounts.confirmEmailChange(typeof ctx.query.token === 'string' ? ctx.query.token : '');
      // The link works once: switching the language of this page goes on to the account instead.
      state(ctx).returnTo = '/account';
      pages.page(ctx, 'verify_email', { ok: true, message: pages.t(ctx, 'account.email.changed'), continueUrl: '/account' });
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      pages.page(ctx, 'verify_email', { ok: false, message: pages.errorMessage(ctx, error) }, errorStatus(error));
    }
  });

  function deletePage(ctx: Context, signedIn: SignedInUser, email: string, error?: string) {
    pages.page(ctx, 'account_delete', {
      csrfToken: pages.csrf(ctx), action: '/account/delete', cancelUrl: '/account', email,
      needsRecentSignIn: !recentEnough(signedIn), reauthUrl: '/account/login?reauth=1&return=%2Faccount%2Fdelete',
      ...(error ? { error } : {}),
    }, error ? 400 : 200);
  }

  accountPage('/delete', (ctx, signedIn, email) => deletePage(ctx, signedIn, email));

  router.post('/delete', async (ctx) => {
    const form = await accountPost(ctx);
    if (!form) return;
    if (!recentEnough(form.user)) return deletePage(ctx, form.user, form.email);
    if (form.body.get('confirm') !== 'yes') return deletePage(ctx, form.user, form.email, pages.t(ctx, 'account.error.confirm_required'));
    await center.deleteAccount(form.user.accountId);
    pages.page(ctx, 'message', { title: pages.t(ctx, 'title.account_delete'), message: pages.t(ctx, 'account.deleted') });
  });

  return router;
}
