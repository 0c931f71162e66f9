import { Router } from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import type { Config } from '../../config/schema.ts';
import { state, type PageResponder } from '../context.ts';

// The demo app: an ordinary OIDC relying party that happens to be served by the same process.
// It talks to Parley only over HTTP, through openid-client, exactly as a separate app would.

const FLOW_COOKIE = 'demo.flow';
const SESSION_COOKIE = 'demo.session';

interface DemoSession { claims: Record<string, unknown>; userinfo: Record<string, unknown>; idToken: string }

export function demoRoutes(deps: { config: Config; pages: PageResponder }): Router {
  const { config, pages } = deps;
  const client = config.clientsById.get(config.demo.client_id)!;
  const { baseUrl: base, secureCookies: secure } = config;
  const redirectUri = `${base}/demo/callback`;
  const cookie = { signed: true, httpOnly: true, sameSite: 'lax' as const, secure, path: '/demo' };
  let discovered: Promise<oidc.Configuration> | undefined;

  // Discovery runs on first use: at start-up the server is not yet listening to answer it.
  const configuration = () => {
    discovered ??= oidc.discovery(new URL(config.issuer), client.client_id, client.client_secret, undefined, {
      execute: secure ? [] : [oidc.allowInsecureRequests],
    }).catch((error: unknown) => {
      discovered = undefined;
      throw error;
    });
    return discovered;
  };

  const readCookie = <T>(ctx: Context, name: string): T | undefined => {
    const raw = ctx.cookies.get(name, { signed: true });
    if (!raw) return undefined;
    try {
      return JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as T;
    } catch {
      return undefined;
    }
  };
  const writeCookie = (ctx: Context, name: string, value: unknown) =>
    ctx.cookies.set(name, value === null ? null : Buffer.from(JSON.stringify(value)).toString('base64url'), cookie);

  const router = new Router({ prefix: '/demo' });

  router.get('/', (ctx) => {
    const session = readCookie<DemoSession>(ctx, SESSION_COOKIE);
    pages.page(ctx, 'demo', {
      signedIn: Boolean(session),
      loginUrl: '/demo/login',
      logoutUrl: session ? '/demo/logout' : undefined,
      idTokenClaims: session ? JSON.stringify(session.claims, null, 2) : undefined,
      userinfo: session ? JSON.stringify(session.userinfo, null, 2) : undefined,
      error: typeof ctx.query.error === 'string' ? pages.t(ctx, 'demo.failed') : undefined,
    });
  });

  router.get('/login', async (ctx) => {
    const verifier = oidc.randomPKCECodeVerifier();
    const flow = { verifier, state: oidc.randomState(), nonce: oidc.randomNonce() };
    writeCookie(ctx, FLOW_COOKIE, flow);
    const url = oidc.buildAuthorizationUrl(await configuration(), {
      redirect_uri: redirectUri,
      scope: 'openid email profile preferences',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: flow.state,
      nonce: flow.nonce,
      ui_locales: state(ctx).locale,
    });
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const flow = readCookie<{ verifier: string; state: string; nonce: string }>(ctx, FLOW_COOKIE);
    writeCookie(ctx, FLOW_COOKIE, null);
    if (!flow || typeof ctx.query.error === 'string') return ctx.redirect('/demo?error=1');
    const callbackUrl = new URL(ctx.originalUrl, base);
    try {
      const cfg = await configuration();
      const tokens = await oidc.authorizationCodeGrant(cfg, callbackUrl, {
        pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
      });
      const claims = tokens.claims()!;
      const userinfo = await oidc.fetchUserInfo(cfg, tokens.access_token, claims.sub);
      writeCookie(ctx, SESSION_COOKIE, { claims, userinfo, idToken: tokens.id_token ?? '' } satisfies DemoSession);
      ctx.redirect('/demo');
    } catch (error) {
      state(ctx).log.warn({ err: { message: (error as Error).message } }, 'demo sign-in failed');
      ctx.redirect('/demo?error=1');
    }
  });

  router.get('/logout', async (ctx) => {
    const session = readCookie<DemoSession>(ctx, SESSION_COOKIE);
    writeCookie(ctx, SESSION_COOKIE, null);
    if (!session) return ctx.redirect('/demo');
    ctx.redirect(oidc.buildEndSessionUrl(await configuration(), {
      id_token_hint: session.idToken, post_logout_redirect_uri: `${base}/demo`,
    }).href);
  });

  return router;
}
