// /account/security, "Ways to sign in": the password (set or change), the authenticator app
// (set up with a QR code made on the server and confirmed by a first code, or removed), recovery
// codes (made anew, shown once), and passkeys (renamed, removed; never the last way to sign in).
// Every change needs a recent sign-in, as changing the email address does, and is told to the
// account holder by mail and to downstream systems by an event (security-notices.ts).
import { Router, type RouterContext } from '@koa/router';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Context } from 'koa';
import { enrolmentOf, leavesAWayIn, signInMethodsOf } from '../../accounts/authentication-methods.ts';
import { CredentialError } from '../../accounts/credential-errors.ts';
import { AccountError } from '../../accounts/errors.ts';
import type { Passkeys } from '../../accounts/passkeys.ts';
import type { RecoveryCodes } from '../../accounts/recovery-codes.ts';
import type { SecurityNotices } from '../../accounts/security-notices.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { Totp } from '../../accounts/totp.ts';
import type { Config } from '../../config/schema.ts';
import { listSessions, signOutSessions, type SessionSelection } from '../../accounts/session-devices.ts';
import type { Transaction } from 'kysely';
import type { Database } from '../../storage/schema.ts';
import type { SessionReader, SignedInUser } from '../../oidc/sessions.ts';
import type { DB } from '../../storage/database.ts';
import { readForm } from '../body.ts';
import { state, type PageResponder } from '../context.ts';
import { checkCsrf } from '../csrf.ts';
import { errorStatus, formErrors } from '../errors.ts';
import { postedCredential } from '../interaction/passkey.ts';
import { svgDataUrl } from '../interaction/second-factor.ts';
import { settleLocale } from '../locale.ts';

export interface SignInMethodsDeps {
  config: Config;
  db: DB;
  accounts: Pick<Accounts, 'findById' | 'setPassword'>;
  sessions: SessionReader;
  pages: PageResponder;
  clock: () => Date;
  totp: Totp;
  recoveryCodes: RecoveryCodes;
  passkeys: Passkeys;
  notices: SecurityNotices;
  /** Ends sessions of the account (the provider's storage): one, or all but this browser's with the grants and tokens. */
  revokeSessions: (trx: Transaction<Database>, accountId: string, selection: SessionSelection) => Promise<number>;
}

const PAGE = '/account/security';
const NOTICES = ['password_set', 'totp_removed', 'passkey_added', 'passkey_renamed', 'passkey_removed', 'signed_out', 'signed_out_others'] as const;
type Notice = (typeof NOTICES)[number];

export function signInMethodsRoutes(deps: SignInMethodsDeps): Router {
  const { config, db, accounts, sessions, pages, clock, totp, recoveryCodes, passkeys, notices, revokeSessions } = deps;
  const router = new Router({ prefix: PAGE });
  router.param('passkeyId', (id, ctx, next) => (/^[A-Za-z0-9_-]{1,1400}$/.test(id) ? next() : ctx.throw(404)));

  const redirect = (ctx: Context, location: string) => {
    ctx.status = 303;
    ctx.redirect(location);
  };
  const recentEnough = (signedIn: SignedInUser) => clock().getTime() / 1000 - signedIn.loginTs <= config.account.recent_sign_in;
  const date = (ctx: Context, at: Date) => new Intl.DateTimeFormat(state(ctx).locale, { dateStyle: 'medium' }).format(at);

  async function signedInUser(ctx: Context): Promise<SignedInUser | undefined> {
    const signedIn = await sessions.current(ctx.req, ctx.res, ctx.secure);
    if (!signedIn) {
      redirect(ctx, `/account/login?return=${encodeURIComponent(PAGE)}`);
      return undefined;
    }
    await settleLocale(ctx, config, { accountLocale: async () => (await accounts.findById(signedIn.accountId))?.locale });
    return signedIn;
  }

  /**
   * A change: the CSRF token first, then the signed-in user, then a recent sign-in (otherwise the
   * page says to sign in again, and nothing changes).
   */
  async function change(ctx: Context): Promise<{ accountId: string; body: URLSearchParams } | undefined> {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    const signedIn = await signedInUser(ctx);
    if (!signedIn) return undefined;
    if (!recentEnough(signedIn)) {
      await page(ctx, signedIn, { error: pages.t(ctx, 'security.reauth_needed') }, 403);
      return undefined;
    }
    return { accountId: signedIn.accountId, body };
  }

  async function page(ctx: Context, signedIn: SignedInUser, extra: { notice?: Notice; error?: string; passwordError?: string } = {}, status = 200) {
    const { accountId } = signedIn;
    const enrolment = await enrolmentOf(db, accountId);
    const list = config.mfa.passkeys.enabled || enrolment.passkeys > 0 ? await passkeys.list(accountId) : [];
    // The same rule the removal itself applies (a linked provider counts as a way in too).
    const methods = await signInMethodsOf(db, accountId);
    const canRemovePasskey = methods !== undefined && leavesAWayIn(methods, { passkey: true });
    const signedInSessions = await listSessions(db, accountId, clock());
    pages.page(ctx, 'account_security', {
      csrfToken: pages.csrf(ctx), backUrl: '/account',
      needsRecentSignIn: !recentEnough(signedIn), reauthUrl: `/account/login?reauth=1&return=${encodeURIComponent(PAGE)}`,
      ...(extra.notice ? { notice: pages.t(ctx, `security.notice.${extra.notice}`) } : {}),
      ...(extra.error ? { error: extra.error } : {}),
      password: { has: enrolment.password, action: `${PAGE}/password`, minLength: config.accounts.password_min_length, ...(extra.passwordError ? { error: extra.passwordError } : {}) },
      totp: config.mfa.totp.enabled || enrolment.totp
        ? { enrolled: enrolment.totp, beginAction: `${PAGE}/totp`, removeAction: `${PAGE}/totp/remove` } : undefined,
      recoveryCodes: enrolment.totp ? { remaining: enrolment.recoveryCodes, action: `${PAGE}/recovery-codes` } : undefined,
      passkeys: config.mfa.passkeys.enabled || list.length > 0 ? {
        ...(config.mfa.passkeys.enabled ? { add: { action: `${PAGE}/passkeys`, optionsAction: `${PAGE}/passkeys/options` } } : {}),
        items: list.map((p, index) => ({
          index,
          name: p.name ?? pages.t(ctx, 'security.passkey_unnamed'),
          created: date(ctx, p.createdAt),
          lastUsed: p.lastUsedAt ? date(ctx, p.lastUsedAt) : pages.t(ctx, 'security.never_used'),
          kind: pages.t(ctx, p.deviceType === 'multiDevice' ? 'security.passkey_synced' : 'security.passkey_device_bound'),
          renameAction: `${PAGE}/passkeys/${encodeURIComponent(p.id)}/rename`,
          removeAction: canRemovePasskey ? `${PAGE}/passkeys/${encodeURIComponent(p.id)}/remove` : undefined,
        })),
      } : undefined,
      sessions: {
        signOutAction: `${PAGE}/sessions/sign-out`,
        signOutOthersAction: signedInSessions.length > 1 ? `${PAGE}/sessions/sign-out-others` : undefined,
        items: signedInSessions.map((session, index) => ({
          index,
          uid: session.uid,
          device: session.browser && session.os ? pages.t(ctx, 'security.sessions.browser_on', { browser: session.browser, os: session.os })
            : session.browser ?? session.os ?? pages.t(ctx, 'security.sessions.unknown_device'),
          place: session.place,
          firstSeen: session.firstSeen ? date(ctx, session.firstSeen) : undefined,
          lastSeen: session.lastSeen ? date(ctx, session.lastSeen) : undefined,
          current: session.uid === signedIn.sessionUid,
        })),
      },
    }, status);
  }

  /** Shows the page again with what refused a change: a credential's message above it. */
  async function refused(ctx: Context, error: unknown) {
    if (!(error instanceof CredentialError)) throw error;
    const signedIn = await sessions.current(ctx.req, ctx.res, ctx.secure);
    if (signedIn) await page(ctx, signedIn, { error: pages.errorMessage(ctx, error) }, errorStatus(error));
  }

  /** A change that needs a recent sign-in, then back to the page with its notice; a refused one is shown there. */
  function changeRoute(done: string, work: (form: { accountId: string; body: URLSearchParams }, ctx: RouterContext) => Promise<unknown>) {
    return async (ctx: RouterContext) => {
      const form = await change(ctx);
      if (!form) return;
      try {
        await work(form, ctx);
      } catch (error) {
        return refused(ctx, error);
      }
      redirect(ctx, `${PAGE}?done=${done}`);
    };
  }

  function qrPage(ctx: Context, enrolment: { qrSvg: string; secret: string } | undefined, error?: CredentialError) {
    pages.page(ctx, 'second_factor_qr', {
      csrfToken: pages.csrf(ctx), action: `${PAGE}/totp/confirm`, restartAction: `${PAGE}/totp`,
      qrImage: enrolment ? svgDataUrl(enrolment.qrSvg) : undefined, secret: enrolment?.secret,
      error: error ? pages.errorMessage(ctx, error) : undefined,
    }, error ? errorStatus(error) : 200);
  }

  router.get('/', async (ctx) => {
    const signedIn = await signedInUser(ctx);
    if (!signedIn) return;
    const done = typeof ctx.query.done === 'string' && (NOTICES as readonly string[]).includes(ctx.query.done) ? ctx.query.done as Notice : undefined;
    await page(ctx, signedIn, done ? { notice: done } : {});
  });

  router.post('/password', async (ctx) => {
    const form = await change(ctx);
    if (!form) return;
    try {
      await accounts.setPassword(form.accountId, form.body.get('new_password') ?? '', (trx, { hadPassword }) =>
        notices.record(trx, form.accountId, hadPassword ? 'password_changed' : 'password_set'));
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      const errors = formErrors(pages, ctx, error);
      const signedIn = (await sessions.current(ctx.req, ctx.res, ctx.secure))!;
      return page(ctx, signedIn, { passwordError: errors.password ?? errors.form }, errorStatus(error));
    }
    redirect(ctx, `${PAGE}?done=password_set`);
  });

  /** A change that names the account to the authenticator (its address), showing what refused it. */
  async function changeNamingAccount(ctx: Context, work: (accountId: string, label: { email: string; name?: string | undefined }) => Promise<void>) {
    const form = await change(ctx);
    if (!form) return;
    const account = await accounts.findById(form.accountId);
    try {
      await work(form.accountId, { email: account?.email ?? form.accountId, name: account?.name ?? undefined });
    } catch (error) {
      await refused(ctx, error);
    }
  }

  router.post('/totp', (ctx) => changeNamingAccount(ctx, async (accountId, { email }) => qrPage(ctx, await totp.begin(accountId, email))));

  router.post('/totp/confirm', async (ctx) => {
    const form = await change(ctx);
    if (!form) return;
    try {
      await totp.confirm(form.accountId, form.body.get('code') ?? '', notices.alongside(form.accountId, 'totp_added'));
    } catch (error) {
      if (error instanceof CredentialError && error.code !== 'method_disabled') return qrPage(ctx, undefined, error);
      return refused(ctx, error);
    }
    // The first code proved the app: this browser's sign-in has both factors now.
    await sessions.addProof(ctx.req, ctx.res, ctx.secure, { method: 'totp', at: clock() });
    pages.page(ctx, 'recovery_codes', { codes: await recoveryCodes.generate(form.accountId), continueUrl: PAGE });
  });

  router.post('/totp/remove', changeRoute('totp_removed', (form) => totp.remove(form.accountId, notices.alongside(form.accountId, 'totp_removed'))));

  router.post('/recovery-codes', async (ctx) => {
    const form = await change(ctx);
    if (!form) return;
    if (!(await totp.isEnrolled(form.accountId))) return refused(ctx, new CredentialError('totp_not_enrolled'));
    const codes = await recoveryCodes.generate(form.accountId, notices.alongside(form.accountId, 'recovery_codes_generated'));
    pages.page(ctx, 'recovery_codes', { codes, continueUrl: PAGE });
  });

  // Adding a passkey: the registration options (JSON, fetched by /assets/passkeys.js with the
  // form's token), then the browser's answer posted as a form. The challenge is bound to the account.
  const registrationBinding = (accountId: string) => `account:${accountId}`;

  router.post('/passkeys/options', (ctx) => changeNamingAccount(ctx, async (accountId, { email, name }) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await passkeys.registrationOptions({ binding: registrationBinding(accountId), user: { id: accountId, name: email, displayName: name } });
  }));

  router.post('/passkeys', changeRoute('passkey_added', (form) => passkeys.register({
    binding: registrationBinding(form.accountId), accountId: form.accountId,
    response: postedCredential<RegistrationResponseJSON>(form.body), name: form.body.get('name') ?? undefined,
  }, notices.alongside(form.accountId, 'passkey_added'))));

  router.post('/passkeys/:passkeyId/rename', changeRoute('passkey_renamed', (form, ctx) =>
    passkeys.rename(form.accountId, ctx.params.passkeyId!, form.body.get('name') ?? '')));

  router.post('/passkeys/:passkeyId/remove', changeRoute('passkey_removed', (form, ctx) =>
    passkeys.remove(form.accountId, ctx.params.passkeyId!, notices.alongside(form.accountId, 'passkey_removed'))));

  // Signing out other sessions protects the account: it needs the form's token and a sign-in,
  // not a recent one.
  async function signedInPost(ctx: Context): Promise<{ signedIn: SignedInUser; body: URLSearchParams } | undefined> {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    const signedIn = await signedInUser(ctx);
    return signedIn ? { signedIn, body } : undefined;
  }

  router.post('/sessions/sign-out', async (ctx) => {
    const form = await signedInPost(ctx);
    if (!form) return;
    const uid = form.body.get('session') ?? '';
    // This browser's own session is ended by signing out (the provider's page), not here.
    if (uid && uid !== form.signedIn.sessionUid) await signOutSessions(db, form.signedIn.accountId, { only: uid }, clock(), revokeSessions);
    redirect(ctx, `${PAGE}?done=signed_out`);
  });

  router.post('/sessions/sign-out-others', async (ctx) => {
    const form = await signedInPost(ctx);
    if (!form) return;
    await signOutSessions(db, form.signedIn.accountId, { allBut: form.signedIn.sessionUid }, clock(), revokeSessions);
    redirect(ctx, `${PAGE}?done=signed_out_others`);
  });

  return router;
}
