// "Continue with …": signing in and registering with an upstream identity provider. The button
// starts a sign-in at the provider (its state, nonce and PKCE verifier kept on the server, bound
// to this interaction: src/federation/sign-ins.ts); the provider's answer comes back to
// /federation/:id/callback, by a redirect or, for Apple, a cross-site form POST that carries no
// SameSite=Lax cookie, and is recorded against the state it names; the browser is then sent on to
// this interaction's own callback route, where the interaction cookie shows it is the browser that
// started the sign-in, and the answer is taken once. What happens then is linking.ts's decision.
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { CredentialError } from '../../accounts/credential-errors.ts';
import type { EmailCodes } from '../../accounts/email-codes.ts';
import { AccountError } from '../../accounts/errors.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import type { Terms } from '../../consent/terms.ts';
import { UpstreamError } from '../../federation/errors.ts';
import { IdentityError, type Identities } from '../../federation/identities.ts';
import type { LinkingDecision } from '../../federation/linking.ts';
import { callbackParams, type KeptProofs, type UpstreamSignIns } from '../../federation/sign-ins.ts';
import type { UpstreamClient, UpstreamIdentity } from '../../federation/upstream.ts';
import type { MailOutbox } from '../../mail/outbox.ts';
import type { InteractionView } from '../../oidc/interactions.ts';
import { localize } from '../../screensets/loader.ts';
import type { UpstreamButtonView } from '../../views/pages.ts';
import { readForm } from '../body.ts';
import { ACCOUNT_LINK_PREFIX } from '../pages/account-identities.ts';
import { state, type PageResponder } from '../context.ts';
import { errorStatus, formErrors } from '../errors.ts';
import type { RegistrationRequirements } from './registration.ts';
import { interactionUrls, seeOther, type SignInRequest, type Step } from './steps.ts';
import { termsBoxes, tickedTerms } from './terms.ts';

export interface Upstreams {
  clients: ReadonlyMap<string, UpstreamClient>;
  signIns: UpstreamSignIns;
  identities: Identities;
  /** One-time codes proving an address, and the outbox that mails them. */
  emailCodes: EmailCodes;
  mail: MailOutbox;
  /** A password for an account that has none (/account); false when it has one already. */
  setFirstPassword(accountId: string, password: string): Promise<boolean>;
}

export interface UpstreamStepDeps {
  config: Config;
  accounts: Accounts;
  pages: PageResponder;
  terms: Terms;
  clock: () => Date;
  upstreams: Upstreams;
  registration: RegistrationRequirements;
  /** The sign-in page with a message above the form (password.ts). */
  loginPage: (ctx: Context, interaction: InteractionView, extra: { error?: string }, status?: number) => void;
  finishLogin: Step;
}

/** The buttons of the sign-in and registration pages: every configured provider, named in the page's language. */
export function upstreamButtons(config: Config, clients: ReadonlyMap<string, UpstreamClient>) {
  return (ctx: Context, interaction: InteractionView): UpstreamButtonView[] => [...clients.values()].map((client) => ({
    id: client.id,
    name: localize(client.settings.name, state(ctx).locale, config.locales.default),
    url: interactionUrls(interaction.uid).upstream(client.id),
  }));
}

export function upstreamSteps(deps: UpstreamStepDeps) {
  const { config, accounts, pages, terms, clock, upstreams, registration, loginPage, finishLogin } = deps;
  const { clients, signIns, identities, emailCodes, mail } = upstreams;
  const minimumAge = config.registration.minimum_age;
  const registrationAsks = () => terms.any || minimumAge > 0;

  const clientOf = (ctx: Context, id: string | undefined): UpstreamClient => {
    const client = id === undefined ? undefined : clients.get(id);
    if (!client) ctx.throw(404);
    return client;
  };
  const providerName = (ctx: Context, client: UpstreamClient) => localize(client.settings.name, state(ctx).locale, config.locales.default);

  /**
   * Back on the sign-in page with what went wrong, in words for the person; the provider, the
   * stage and the provider's own words go to the log. Nothing of this sign-in is kept.
   */
  async function failed(ctx: Context, interaction: InteractionView, error: UpstreamError | IdentityError) {
    if (error instanceof UpstreamError) state(ctx).log.warn({ upstream: error.code, ...error.details }, 'upstream sign-in failed');
    else state(ctx).log.info({ identity: error.code }, 'upstream sign-in refused');
    await signIns.fail(interaction.uid);
    loginPage(ctx, interaction, { error: pages.errorMessage(ctx, error) }, errorStatus(error));
  }

  /** Runs `work`; an upstream or linking error ends the sign-in on the sign-in page. */
  async function orFail(ctx: Context, interaction: InteractionView, work: () => Promise<void>) {
    try {
      await work();
    } catch (error) {
      if (error instanceof UpstreamError || error instanceof IdentityError) return failed(ctx, interaction, error);
      throw error;
    }
  }

  /** Sends the browser to the provider, the transaction kept against this interaction. */
  async function begin(ctx: Context, interaction: InteractionView, client: UpstreamClient) {
    await orFail(ctx, interaction, async () => {
      const { url, transaction } = await client.begin({ interactionUid: interaction.uid, ...(interaction.loginHint ? { loginHint: interaction.loginHint } : {}) });
      await signIns.start(transaction);
      ctx.status = 303;
      ctx.redirect(url.href);
    });
  }

  /** "Continue with …": GET /interaction/:uid/upstream/:id. */
  const start: Step = async (ctx, { interaction }) => begin(ctx, interaction, clientOf(ctx, ctx.params.id));

  /**
   * An app that named a provider with `idp` goes straight to it, the first time the sign-in page
   * is shown; after that (the person came back, or it failed) the page shows every way in.
   */
  const goToRequestedProvider: Step = async (ctx, { interaction }, next) => {
    const client = interaction.idp === undefined ? undefined : clients.get(interaction.idp);
    if (!client || await signIns.tried(interaction.uid)) return next();
    await begin(ctx, interaction, client);
  };

  const federatedProof = () => [{ method: 'federated' as const, at: clock(), upstreamMfa: false }];

  /** Signs in to the account, as the upstream identity proved. */
  async function signInTo(ctx: Context, signIn: SignInRequest, accountId: string, registered: boolean) {
    await signIns.finish(signIn.interaction.uid);
    signIn.authenticated = {
      accountId, outcome: registered ? 'registered' : 'success', proofs: federatedProof(),
      ...(registered ? { firstSignIn: true } : {}),
    };
    await finishLogin(ctx, signIn, async () => {});
  }

  function registerPage(ctx: Context, interaction: InteractionView, client: UpstreamClient, email: string, extra: {
    name?: string | undefined; birthdate?: string; errors?: ReturnType<typeof formErrors>; ticked?: Set<string>;
  } = {}, status = 200) {
    pages.page(ctx, 'upstream_register', {
      csrfToken: pages.csrf(ctx), action: interactionUrls(interaction.uid).upstreamRegister,
      provider: providerName(ctx, client), email, ...(extra.name ? { name: extra.name } : {}),
      errors: extra.errors ?? {}, askBirthdate: minimumAge > 0, ...(extra.birthdate !== undefined ? { birthdate: extra.birthdate } : {}),
      ...(terms.any ? { terms: termsBoxes(terms.shown(state(ctx).locale), extra.ticked) } : {}),
      loginUrl: interactionUrls(interaction.uid).page,
    }, status);
  }

  const codesOn = config.mfa.email_codes.enabled;

  function linkPage(ctx: Context, interaction: InteractionView, client: UpstreamClient, email: string, methods: readonly string[], extra: { error?: string; codeSent?: boolean } = {}, status = 200) {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'upstream_link', {
      csrfToken: pages.csrf(ctx), provider: providerName(ctx, client), email, ...(extra.error ? { error: extra.error } : {}),
      ...(methods.includes('password') ? { passwordAction: urls.upstreamLink } : {}),
      ...(codesOn && methods.includes('email_code') ? { codeAction: urls.upstreamCode } : {}),
      ...(extra.codeSent ? { codeSent: true } : {}),
      loginUrl: urls.page,
    }, status);
  }

  function verifyPage(ctx: Context, interaction: InteractionView, client: UpstreamClient, extra: { email?: string | undefined; error?: string; codeSent?: boolean } = {}, status = 200) {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'upstream_verify', {
      csrfToken: pages.csrf(ctx), provider: providerName(ctx, client), action: urls.upstreamCode,
      ...(extra.email ? { email: extra.email } : {}), ...(extra.error ? { error: extra.error } : {}), ...(extra.codeSent ? { codeSent: true } : {}),
      loginUrl: urls.page,
    }, status);
  }

  /** An identity on its way through a sign-in: the provider's answer, and what the person proved since. */
  type Held = { id: string; identity: UpstreamIdentity } & KeptProofs;

  /** Does what linking.ts decided for this identity. */
  async function act(ctx: Context, signIn: SignInRequest, client: UpstreamClient, held: Held, decision: LinkingDecision) {
    const { interaction } = signIn;
    const { identity } = held;
    const keep = () => signIns.keepIdentity(held.id, identity, { ...(held.provenAddress ? { provenAddress: held.provenAddress } : {}), ...(held.codeSentTo ? { codeSentTo: held.codeSentTo } : {}) });
    switch (decision.kind) {
      case 'sign_in':
        await identities.signedIn(decision.accountId, identity);
        return signInTo(ctx, signIn, decision.accountId, false);
      case 'link':
        await identities.link({ accountId: decision.accountId, identity, reclaim: decision.reclaim, source: 'sign_in' });
        return signInTo(ctx, signIn, decision.accountId, false);
      case 'create_account': {
        if (registrationAsks()) {
          await keep();
          return registerPage(ctx, interaction, client, decision.email, { name: identity.name });
        }
        const account = await identities.register({ identity, email: decision.email, name: identity.name, locale: state(ctx).locale });
        return signInTo(ctx, signIn, account.id, true);
      }
      case 'prove_ownership': {
        const account = await identities.linkingAccount({ id: decision.accountId });
        const usable = decision.methods.filter((m) => m === 'password' || (m === 'email_code' && codesOn));
        if (!account || usable.length === 0) throw new IdentityError('email_unproven');
        await keep();
        return linkPage(ctx, interaction, client, account.email, usable);
      }
      case 'verify_email':
        if (!codesOn) throw new IdentityError('email_unproven');
        await keep();
        return verifyPage(ctx, interaction, client, { email: decision.suggestedEmail });
      case 'refuse':
        throw new IdentityError(decision.reason);
    }
  }

  const decide = (client: UpstreamClient, held: Pick<Held, 'identity' | 'provenAddress'>, account?: string) => identities.decide(held.identity, {
    id: client.id, trustEmailVerified: client.settings.trustEmailVerified, signUp: client.settings.signUp,
  }, held.provenAddress || account ? { proofs: { ...(held.provenAddress ? { address: held.provenAddress } : {}), ...(account ? { account } : {}) } } : {});

  /** GET /interaction/:uid/upstream/:id/callback: the provider's answer, taken once, by the browser of this interaction. */
  const complete: Step = async (ctx, signIn) => {
    const { interaction } = signIn;
    const client = clientOf(ctx, ctx.params.id);
    await orFail(ctx, interaction, async () => {
      const taken = await signIns.take(interaction.uid, client.id);
      if (!taken) throw new UpstreamError('state_mismatch', { provider: client.id, stage: 'transaction', reason: 'no answer waiting for this interaction (replayed, or another browser\'s)' });
      const identity = await client.complete(taken.transaction, taken.callback);
      const held = { id: taken.id, identity };
      await act(ctx, signIn, client, held, await decide(client, held));
    });
  };

  /** The identity this interaction is waiting on, with its provider; none: the sign-in page says it expired. */
  async function pendingOf(interaction: InteractionView) {
    const pending = await signIns.pending(interaction.uid);
    const client = pending ? clients.get(pending.provider) : undefined;
    if (!pending || !client) throw new UpstreamError('expired', { provider: pending?.provider ?? 'unknown', stage: 'transaction', reason: 'no upstream identity waiting for this interaction' });
    return { pending, client };
  }

  /** POST /interaction/:uid/upstream/register: what registering asks (terms, date of birth), then the account. */
  const register: Step = async (ctx, signIn) => {
    const { interaction, form } = signIn;
    await orFail(ctx, interaction, async () => {
      const { pending, client } = await pendingOf(interaction);
      const { identity } = pending;
      const decision = await decide(client, pending);
      // Decided again: an account may have been made with the address in between.
      if (decision.kind !== 'create_account') return act(ctx, signIn, client, pending, decision);
      const name = form.get('name')?.trim() || undefined;
      try {
        const account = await identities.register({
          identity, email: decision.email, name, locale: state(ctx).locale, extras: registration.extras(ctx, interaction, form),
        });
        await signInTo(ctx, signIn, account.id, true);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        registerPage(ctx, interaction, client, decision.email, {
          name, errors: formErrors(pages, ctx, error), ticked: tickedTerms(form), ...(minimumAge > 0 ? { birthdate: form.get('birthdate') ?? '' } : {}),
        }, errorStatus(error));
      }
    });
  };

  /** POST /interaction/:uid/upstream/link: the account's password proves it is theirs; then the identity is linked. */
  const linkWithPassword: Step = async (ctx, signIn) => {
    const { interaction, form } = signIn;
    await orFail(ctx, interaction, async () => {
      const { pending, client } = await pendingOf(interaction);
      const decision = await decide(client, pending);
      if (decision.kind !== 'prove_ownership' || !decision.methods.includes('password')) return act(ctx, signIn, client, pending, decision);
      const owner = await identities.linkingAccount({ id: decision.accountId });
      if (!owner) throw new IdentityError('email_unproven');
      try {
        const account = await accounts.authenticate({ email: owner.email, password: form.get('password') ?? '', ip: ctx.ip, interactionUid: interaction.uid });
        if (account.id !== decision.accountId) throw new IdentityError('wrong_account');
        await act(ctx, signIn, client, pending, await decide(client, pending, account.id));
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        if (error.code === 'throttled') ctx.set('Retry-After', String(Math.ceil(error.retryAfterSeconds ?? 1)));
        linkPage(ctx, interaction, client, owner.email, decision.methods, { error: pages.errorMessage(ctx, error) }, errorStatus(error));
      }
    });
  };

  /**
   * POST /interaction/:uid/upstream/code: "Email me a code" (`send`), to the address of the
   * account that has the provider's address, or to one typed when the provider proved none; then
   * the code typed back proves the address (linking.ts proofs.address) and the decision is made again.
   */
  const emailCode: Step = async (ctx, signIn) => {
    const { interaction, form } = signIn;
    await orFail(ctx, interaction, async () => {
      const { pending, client } = await pendingOf(interaction);
      const decision = await decide(client, pending);
      const owner = decision.kind === 'prove_ownership' && decision.methods.includes('email_code')
        ? await identities.linkingAccount({ id: decision.accountId }) : undefined;
      if (!codesOn || (!owner && decision.kind !== 'verify_email')) return act(ctx, signIn, client, pending, decision);
      const show = (extra: { email?: string | undefined; error?: string; codeSent?: boolean }, status = 200) => (owner
        ? linkPage(ctx, interaction, client, owner.email, (decision as { methods: string[] }).methods, extra, status)
        : verifyPage(ctx, interaction, client, extra, status));
      try {
        if (form.has('send')) {
          const address = owner?.email ?? form.get('email') ?? '';
          const issued = await emailCodes.issue(address, async (trx, code) => {
            await mail.queue(trx, { accountId: code.accountId, address: code.email }, { kind: 'email_code', locale: state(ctx).locale, code: code.code }, clock());
          });
          await signIns.keepIdentity(pending.id, pending.identity, { ...(pending.provenAddress ? { provenAddress: pending.provenAddress } : {}), codeSentTo: issued.email });
          return show({ email: issued.email, codeSent: true });
        }
        const sentTo = pending.codeSentTo;
        if (!sentTo || (owner && owner.email !== sentTo)) return show({ email: owner?.email });
        const verified = await emailCodes.verify(sentTo, form.get('code') ?? '');
        const held = { id: pending.id, identity: pending.identity, provenAddress: verified.email };
        await act(ctx, signIn, client, held, await decide(client, held));
      } catch (error) {
        if (!(error instanceof CredentialError)) throw error;
        if (error.retryAfterSeconds) ctx.set('Retry-After', String(Math.ceil(error.retryAfterSeconds)));
        const codeSent = !form.has('send') && pending.codeSentTo !== undefined;
        show({ email: codeSent ? pending.codeSentTo : owner?.email ?? (form.get('email') ?? undefined), error: pages.errorMessage(ctx, error), codeSent }, errorStatus(error));
      }
    });
  };

  /**
   * Around the age gate: someone it turns away leaves nothing behind, not even who the provider
   * said they are (kept while the registration form was shown).
   */
  const forgetIfTurnedAway: Step = async (ctx, signIn, next) => {
    await next();
    if (!signIn.authenticated && ctx.status === 403) await signIns.fail(signIn.interaction.uid);
  };

  return { start, goToRequestedProvider, complete, register, linkWithPassword, emailCode, forgetIfTurnedAway };
}

/**
 * /federation/:id/callback, the redirect URI registered at each provider: records the answer
 * (query, or Apple's posted form) against the state it names and sends the browser on to its
 * interaction. It reads no cookie and decides nothing: a forged or replayed answer ends up on an
 * interaction's page that refuses it, or here, as a state Parley never sent.
 */
export function upstreamCallbackRoutes(deps: { upstreams: Upstreams }): Router {
  const { clients, signIns } = deps.upstreams;
  const router = new Router();
  const handle = async (ctx: Context, params: URLSearchParams) => {
    const provider = ctx.params.id ?? '';
    if (!clients.has(provider)) ctx.throw(404);
    const uid = await signIns.recordCallback(provider, callbackParams(params));
    if (uid === undefined) {
      throw new UpstreamError('state_mismatch', { provider, stage: 'callback', reason: params.get('state') ? 'a state Parley did not send, or expired' : 'the callback has no state' });
    }
    // A link from /account (account-identities.ts) goes back there; a sign-in, to its interaction.
    seeOther(ctx, uid.startsWith(ACCOUNT_LINK_PREFIX)
      ? `/account/identities/${encodeURIComponent(provider)}/callback`
      : `${interactionUrls(uid).upstream(provider)}/callback`);
  };
  router.get('/federation/:id/callback', (ctx) => handle(ctx, new URLSearchParams(ctx.querystring)));
  router.post('/federation/:id/callback', async (ctx) => handle(ctx, await readForm(ctx)));
  return router;
}
