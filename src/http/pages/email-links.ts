import { Router } from '@koa/router';
import type { Context } from 'koa';
import { AccountError } from '../../accounts/errors.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import { errorStatus, formErrors } from '../errors.ts';
import { readForm } from '../body.ts';
import { state, type PageResponder } from '../context.ts';
import { checkCsrf } from '../csrf.ts';

// Pages reached from emailed links or from the sign-in page: verify an address, ask for a
// password reset, set a new password. None of them reveals whether an address has an account.

export function accountRoutes(deps: { config: Config; accounts: Accounts; pages: PageResponder }): Router {
  const { config, accounts, pages } = deps;
  const router = new Router();

  /** Only same-site paths may be returned to; anything else falls back to nothing. */
  const safeReturn = (value: string | null | undefined): string | undefined =>
    value && /^\/interaction\/[A-Za-z0-9_-]+$/.test(value) ? value : undefined;

  const tokenOf = (ctx: Context) => (typeof ctx.query.token === 'string' ? ctx.query.token : '');

  // Verifying is idempotent in effect and harmless if a mail scanner follows the link first.
  router.get('/verify-email', async (ctx) => {
    try {
      const { interactionUid } = await accounts.verifyEmail(tokenOf(ctx));
      // The link works once: switching the language of this page goes on where the link leads.
      state(ctx).returnTo = interactionUid ? `/interaction/${interactionUid}` : '/account';
      pages.page(ctx, 'verify_email', {
        ok: true, message: pages.t(ctx, 'verify.ok'),
        continueUrl: interactionUid ? `/interaction/${interactionUid}` : undefined,
      });
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      pages.page(ctx, 'verify_email', { ok: false, message: pages.errorMessage(ctx, error) }, errorStatus(error));
    }
  });

  const forgotAction = (ctx: Context) => {
    const back = safeReturn(ctx.query.return as string | undefined);
    return `/forgot-password${back ? `?return=${encodeURIComponent(back)}` : ''}`;
  };

  router.get('/forgot-password', async (ctx) => {
    pages.page(ctx, 'forgot_password', { csrfToken: pages.csrf(ctx), action: forgotAction(ctx), sent: false });
  });

  router.post('/forgot-password', async (ctx) => {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    const email = body.get('email') ?? '';
    // An address that can be no account's is the user's typo to fix; it reveals nothing.
    const problem = accounts.emailProblem(email);
    if (problem) {
      const refusal = { module: 'account', code: problem } as const;
      return pages.page(ctx, 'forgot_password', {
        csrfToken: pages.csrf(ctx), action: forgotAction(ctx), email, sent: false, error: pages.errorMessage(ctx, refusal),
      }, errorStatus(refusal));
    }
    await accounts.requestPasswordReset(email, state(ctx).locale, ctx.ip);
    pages.page(ctx, 'forgot_password', { csrfToken: pages.csrf(ctx), action: '/forgot-password', email, sent: true });
  });

  router.get('/reset-password', async (ctx) => {
    const token = tokenOf(ctx);
    const base = { csrfToken: pages.csrf(ctx), action: '/reset-password', token, errors: {}, done: false, passwordMinLength: config.accounts.password_min_length };
    try {
      await accounts.checkResetToken(token);
      pages.page(ctx, 'reset_password', { ...base, invalidToken: false });
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      pages.page(ctx, 'reset_password', {
        ...base, invalidToken: true, errors: { form: pages.errorMessage(ctx, error) },
      }, errorStatus(error));
    }
  });

  router.post('/reset-password', async (ctx) => {
    const body = await readForm(ctx);
    checkCsrf(ctx, body.get('csrf'));
    const token = body.get('token') ?? '';
    const base = { csrfToken: pages.csrf(ctx), action: '/reset-password', token, passwordMinLength: config.accounts.password_min_length };
    // Back to the form while the link still works; once it is used, on to signing in.
    state(ctx).returnTo = `/reset-password?token=${encodeURIComponent(token)}`;
    try {
      await accounts.resetPassword(token, body.get('password') ?? '');
      state(ctx).returnTo = '/account';
      pages.page(ctx, 'reset_password', { ...base, errors: {}, done: true, invalidToken: false });
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      const tokenProblem = error.code === 'token_invalid' || error.code === 'token_expired';
      pages.page(ctx, 'reset_password', {
        ...base, errors: formErrors(pages, ctx, error), done: false, invalidToken: tokenProblem,
      }, errorStatus(error));
    }
  });

  return router;
}
