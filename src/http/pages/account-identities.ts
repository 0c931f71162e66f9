// /account "Linked providers": the upstream identities that sign in to the account. Linking
// another goes through the provider like a sign-in, bound to this browser (a signed cookie naming
// the server-side transaction) instead of a sign-in interaction, and needs a recent sign-in and an
// account whose address was verified (linking.ts rule 5). Unlinking is refused for the last way
// to sign in (no password, no passkey, no other identity).
import { randomBytes } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config/schema.ts';
import { UpstreamError } from '../../federation/errors.ts';
import { IdentityError } from '../../federation/identities.ts';
import type { SessionReader, SignedInUser } from '../../oidc/sessions.ts';
import { localize } from '../../screensets/loader.ts';
import type { AccountIdentitiesView } from '../../views/pages.ts';
import { AccountError } from '../../accounts/errors.ts';
import { readForm } from '../body.ts';
import { state, type PageResponder } from '../context.ts';
import { errorStatus, formErrors } from '../errors.ts';
import { checkCsrf } from '../csrf.ts';
import type { Upstreams } from '../interaction/upstream.ts';

/** Transactions of /account links are kept under this prefix, where a sign-in keeps its interaction's uid. */
export const ACCOUNT_LINK_PREFIX = 'account:';
const LINK_COOKIE = 'parley.account_link';
const PATH = '/account/identities';

export function accountIdentityRoutes(deps: { config: Config; sessions: SessionReader; clock: () => Date; upstreams: Upstreams; pages: PageResponder }) {
  const { config, sessions, clock, upstreams, pages } = deps;
  const { clients, signIns, identities } = upstreams;
  const router = new Router({ prefix: PATH });
  router.param('provider', (id, ctx, next) => (clients.has(id) ? next() : ctx.throw(404)));
  const nameOf = (ctx: Context, provider: string) => {
    const client = clients.get(provider);
    return client ? localize(client.settings.name, state(ctx).locale, config.locales.default) : provider;
  };
  const seeOther = (ctx: Context, location: string) => {
    ctx.status = 303;
    ctx.redirect(location);
  };
  const recentEnough = (signedIn: SignedInUser) => clock().getTime() / 1000 - signedIn.loginTs <= config.account.recent_sign_in;
  const reauth = (returnTo: string) => `/account/login?reauth=1&return=${encodeURIComponent(returnTo)}`;

  async function signedIn(ctx: Context, returnTo: string): Promise<SignedInUser | undefined> {
    const user = await sessions.current(ctx.req, ctx.res, ctx.secure);
    if (!user) seeOther(ctx, `/account/login?return=${encodeURIComponent(returnTo)}`);
    return user;
  }

  /** The section of the /account page. */
  async function section(ctx: Context, accountId: string): Promise<AccountIdentitiesView | undefined> {
    if (clients.size === 0) return undefined;
    const linked = await identities.identitiesOf(accountId);
    const account = await identities.linkingAccount({ id: accountId });
    const date = (at: Date) => new Intl.DateTimeFormat(state(ctx).locale, { dateStyle: 'medium' }).format(at);
    return {
      linked: linked.map((identity) => ({
        provider: identity.provider, name: nameOf(ctx, identity.provider), ...(identity.email ? { email: identity.email } : {}),
        linkedOn: date(identity.linkedAt),
        // The last way in has no button (the unlink route refuses it anyway, for a forged form).
        ...(identity.unlinkable ? { unlinkAction: `${PATH}/${encodeURIComponent(identity.provider)}/unlink` } : {}),
      })),
      available: [...clients.keys()].filter((id) => !linked.some((l) => l.provider === id))
        .map((id) => ({ provider: id, name: nameOf(ctx, id), linkUrl: `${PATH}/${encodeURIComponent(id)}/link` })),
      ...(account && !account.hasPassword ? { setPasswordUrl: `${PATH}/password` } : {}),
    };
  }

  function passwordPage(ctx: Context, user: SignedInUser, email: string, error?: string, status = 200) {
    pages.page(ctx, 'account_password', {
      csrfToken: pages.csrf(ctx), action: `${PATH}/password`, cancelUrl: '/account#identities', email,
      passwordMinLength: config.accounts.password_min_length, needsRecentSignIn: !recentEnough(user), reauthUrl: reauth(`${PATH}/password`),
      ...(error ? { error } : {}),
    }, status);
  }

  // A first password for an account made with a provider, after a recent sign-in.
  router.get('/password', async (ctx) => {
    const user = await signedIn(ctx, `${PATH}/password`);
    if (!user) return;
    const account = await identities.linkingAccount({ id: user.accountId });
    if (!account || account.hasPassword) return seeOther(ctx, '/account#identities');
    passwordPage(ctx, user, account.email);
  });

  router.post('/password', async (ctx) => {
    const form = await readForm(ctx);
    checkCsrf(ctx, form.get('csrf'));
    const user = await signedIn(ctx, `${PATH}/password`);
    if (!user) return;
    const account = await identities.linkingAccount({ id: user.accountId });
    if (!account || account.hasPassword) return seeOther(ctx, '/account#identities');
    if (!recentEnough(user)) return passwordPage(ctx, user, account.email);
    try {
      await upstreams.setFirstPassword(user.accountId, form.get('password') ?? '');
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      return passwordPage(ctx, user, account.email, formErrors(pages, ctx, error).password ?? pages.errorMessage(ctx, error), errorStatus(error));
    }
    seeOther(ctx, '/account?done=password_set#identities');
  });

  router.post('/:provider/unlink', async (ctx) => {
    const form = await readForm(ctx);
    checkCsrf(ctx, form.get('csrf'));
    const user = await signedIn(ctx, '/account');
    if (!user) return;
    await identities.unlink(user.accountId, ctx.params.provider!);
    seeOther(ctx, '/account?done=identity_unlinked#identities');
  });

  // Starts the link at the provider. A GET, like "Continue with …": it changes nothing here, and
  // what comes back is taken only by this browser, with its recent sign-in.
  router.get('/:provider/link', async (ctx) => {
    const provider = ctx.params.provider!;
    const here = `${PATH}/${provider}/link`;
    const user = await signedIn(ctx, here);
    if (!user) return;
    if (!recentEnough(user)) return seeOther(ctx, reauth(here));
    const uid = `${ACCOUNT_LINK_PREFIX}${randomBytes(16).toString('base64url')}`;
    const { url, transaction } = await clients.get(provider)!.begin({ interactionUid: uid });
    await signIns.start(transaction);
    ctx.cookies.set(LINK_COOKIE, uid, {
      signed: true, httpOnly: true, sameSite: 'lax', secure: config.secureCookies, path: PATH, maxAge: config.ttl.interaction * 1000,
    });
    seeOther(ctx, url.href);
  });

  // The provider's answer, sent on by /federation/:id/callback for a transaction of this kind.
  router.get('/:provider/callback', async (ctx) => {
    const provider = ctx.params.provider!;
    const client = clients.get(provider)!;
    const uid = ctx.cookies.get(LINK_COOKIE, { signed: true });
    ctx.cookies.set(LINK_COOKIE, null, { path: PATH });
    const user = await signedIn(ctx, '/account');
    if (!user) return;
    const taken = uid ? await signIns.take(uid, provider) : undefined;
    try {
      if (!taken) throw new UpstreamError('state_mismatch', { provider, stage: 'transaction', reason: 'no answer waiting for this browser\'s link' });
      const identity = await client.complete(taken.transaction, taken.callback);
      const account = await identities.linkingAccount({ id: user.accountId });
      if (!account) return seeOther(ctx, '/account/login');
      const decision = await identities.decide(identity, {
        id: provider, trustEmailVerified: client.settings.trustEmailVerified, signUp: client.settings.signUp,
      }, { session: { account, recentlyAuthenticated: recentEnough(user) } });
      switch (decision.kind) {
        case 'sign_in': return seeOther(ctx, '/account?done=identity_linked#identities');
        case 'link':
          await identities.link({ accountId: account.id, identity, reclaim: false, source: 'account' });
          return seeOther(ctx, '/account?done=identity_linked#identities');
        case 'prove_ownership': return seeOther(ctx, reauth(`${PATH}/${provider}/link`));
        case 'refuse': throw new IdentityError(decision.reason);
        default: throw new IdentityError('email_unproven');
      }
    } finally {
      if (uid) await signIns.finish(uid);
    }
  });

  return { router, section };
}
