import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { fileURLToPath } from 'node:url';
import Provider, { type Adapter, type AdapterPayload, type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

// "Demo ID": a pretend identity provider, so that a newcomer can try "Continue with …" with no
// account anywhere, and tests have a real OpenID provider on loopback. It is oidc-provider (the
// library Parley's own provider is built on) with a handful of demo people, a one-click sign-in
// page, consent granted automatically, and everything in memory. Development and tests only: it
// has no passwords.
//
// It lives under src/oidc, the one place that imports oidc-provider, but it is not Parley's
// provider: a stand-in for the outside world, sharing nothing with the rest of src/oidc.

export interface DemoIdUser {
  sub: string;
  email: string;
  /** Apple has sent it as the string "true". */
  email_verified: boolean | 'true' | 'false';
  name?: string;
  given_name?: string;
  family_name?: string;
  locale?: string;
  /** Any other claim (tests: Microsoft's tid, Apple's is_private_email). */
  [claim: string]: unknown;
}

export interface DemoIdClient {
  client_id: string;
  /** Absent: a public client (PKCE only). */
  client_secret?: string;
  redirect_uris: string[];
  /**
   * Behave like Sign in with Apple: with response_mode=form_post, post the person's name as a
   * `user` JSON field the first time they authorize this client, and never again.
   */
  post_user_on_first_authorization?: boolean;
}

/** Runs inside the provider around each request: tests use it to make the provider misbehave. */
export type DemoIdMiddleware = (ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => Promise<void>;

export interface DemoIdOptions {
  issuer: string;
  clients: DemoIdClient[];
  users?: DemoIdUser[];
  /** Shown on the sign-in page. */
  title?: string;
  /** Sign in at once, as the person named by login_hint (email or sub) or else the first one, without a page. */
  autoLogin?: boolean;
  /** Private signing keys (JWK); one RS256 key is made when absent. */
  signingKeys?: JWK[];
  /** Claims released per scope on top of the standard ones, e.g. { openid: ['tid'] }. */
  extraClaims?: Record<string, string[]>;
  middleware?: DemoIdMiddleware[];
}

export const DEMO_ID_USERS: DemoIdUser[] = [
  { sub: 'demo-ada', email: 'ada@demo-id.test', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', locale: 'en' },
  { sub: 'demo-layla', email: 'layla@demo-id.test', email_verified: true, name: 'ليلى حداد', given_name: 'ليلى', family_name: 'حداد', locale: 'ar' },
  // An address this provider never checked, to see the path where Parley confirms it itself.
  { sub: 'demo-sam', email: 'sam@demo-id.test', email_verified: false, name: 'Sam Unverified', given_name: 'Sam', family_name: 'Unverified', locale: 'en' },
];

const STANDARD_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'locale'],
};

function escapeHtml(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#x27;');
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) break;
  }
  return new URLSearchParams(body);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem}button{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem;text-align:start;cursor:pointer}
.note{color:#555;font-size:.9rem}</style></head><body>${body}</body></html>`;
}

/**
 * Everything in memory, gone with the process: Demo ID has nothing worth keeping. (oidc-provider's
 * own in-memory adapter would do, but warns at every start that it must not be used in production.)
 */
function memoryAdapter(): (name: string) => Adapter {
  const rows = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  const live = (key: string) => {
    const row = rows.get(key);
    if (row && row.expiresAt <= Date.now()) rows.delete(key);
    return rows.get(key)?.payload;
  };
  return (name) => ({
    upsert: async (id, payload, expiresIn) => { rows.set(`${name}:${id}`, { payload, expiresAt: Date.now() + (expiresIn ?? 3600) * 1000 }); },
    find: async (id) => live(`${name}:${id}`),
    findByUid: async (uid) => [...rows.keys()].filter((k) => k.startsWith(`${name}:`)).map(live).find((p) => p?.uid === uid),
    findByUserCode: async (code) => [...rows.keys()].filter((k) => k.startsWith(`${name}:`)).map(live).find((p) => p?.userCode === code),
    consume: async (id) => { const payload = live(`${name}:${id}`); if (payload) payload.consumed = Math.floor(Date.now() / 1000); },
    destroy: async (id) => { rows.delete(`${name}:${id}`); },
    revokeByGrantId: async (grantId) => { for (const [key, row] of rows) if (row.payload.grantId === grantId) rows.delete(key); },
  });
}

export async function createDemoId(options: DemoIdOptions): Promise<Provider> {
  const users = options.users ?? DEMO_ID_USERS;
  const title = options.title ?? 'Demo ID';
  const clientsById = new Map(options.clients.map((c) => [c.client_id, c]));
  let keys = options.signingKeys;
  if (!keys) {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    keys = [{ ...(await exportJWK(privateKey)), kid: `demo-id-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' }];
  }
  const claims: Record<string, string[]> = { ...STANDARD_CLAIMS };
  for (const [scope, names] of Object.entries(options.extraClaims ?? {})) claims[scope] = [...new Set([...(claims[scope] ?? []), ...names])];

  const configuration: Configuration = {
    adapter: memoryAdapter(),
    clients: options.clients.map((c): ClientMetadata => ({
      client_id: c.client_id,
      ...(c.client_secret ? { client_secret: c.client_secret } : {}),
      redirect_uris: c.redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: c.client_secret ? 'client_secret_post' : 'none',
    })),
    findAccount: (_ctx, sub) => {
      const user = users.find((u) => u.sub === sub);
      return user ? { accountId: sub, claims: () => ({ ...user }) } : undefined;
    },
    claims,
    scopes: ['openid', ...Object.keys(claims).filter((s) => s !== 'openid')],
    // Claims in the ID token itself, as Google and Apple put them there.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    jwks: { keys: keys as never },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 900, Session: 3600, Grant: 3600 },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(out.error)}: ${escapeHtml(out.error_description ?? '')}</p>`);
    },
  };
  const provider = new Provider(options.issuer, configuration);
  // Whose first authorization of which client has been seen, for Apple's one-time `user` field.
  const authorized = new Set<string>();

  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)(?:\/(login|cancel))?$/.exec(ctx.path);
    if (!match) {
      await next();
      return;
    }
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== match[1]) ctx.throw(400, 'this sign-in is not the one in progress');
    const finish = async (result: Parameters<Provider['interactionResult']>[2]) => {
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(to);
    };
    const signIn = async (user: DemoIdUser) => {
      const grant = new provider.Grant({ accountId: user.sub, clientId: String(details.params.client_id) });
      grant.addOIDCScope(String(details.params.scope ?? 'openid'));
      await finish({ login: { accountId: user.sub }, consent: { grantId: await grant.save() } });
    };
    if (ctx.method === 'POST' && match[2] === 'cancel') {
      await finish({ error: 'access_denied', error_description: 'the person cancelled the sign-in' });
      return;
    }
    if (ctx.method === 'POST' && match[2] === 'login') {
      const sub = (await readForm(ctx.req)).get('sub');
      const user = users.find((u) => u.sub === sub);
      if (!user) return ctx.throw(400, 'unknown demo user');
      await signIn(user);
      return;
    }
    if (options.autoLogin) {
      const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint.toLowerCase() : undefined;
      await signIn(users.find((u) => u.email === hint || u.sub === hint) ?? users[0]!);
      return;
    }
    const clientId = escapeHtml(String(details.params.client_id));
    const buttons = users.map((u) => `<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
<input type="hidden" name="sub" value="${escapeHtml(u.sub)}"><button type="submit">Continue as ${escapeHtml(u.name ?? u.sub)} &lt;${escapeHtml(u.email)}&gt;${u.email_verified === true || u.email_verified === 'true' ? '' : ' (address not verified)'}</button></form>`).join('\n');
    ctx.type = 'html';
    ctx.set('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    ctx.body = page(title, `<h1>${escapeHtml(title)}</h1>
<p class="note">A pretend identity provider for trying sign-in with another provider. These people are not real and have no passwords.</p>
<p><strong>${clientId}</strong> asks who you are. Choose a person:</p>
${buttons}
<form method="post" action="/interaction/${escapeHtml(details.uid)}/cancel"><button type="submit">Cancel</button></form>`);
  });

  // Sign in with Apple's quirk: the first authorization posts the name as a `user` JSON field.
  provider.use(async (ctx, next) => {
    await next();
    const clientId = ctx.oidc?.client?.clientId;
    const accountId = ctx.oidc?.session?.accountId;
    if (!clientId || !accountId || !clientsById.get(clientId)?.post_user_on_first_authorization) return;
    if (typeof ctx.body !== 'string' || !ctx.body.includes('<form method="post"')) return;
    const key = `${clientId}\n${accountId}`;
    if (authorized.has(key)) return;
    authorized.add(key);
    const user = users.find((u) => u.sub === accountId);
    if (!user) return;
    const field = JSON.stringify({ name: { firstName: user.given_name, lastName: user.family_name }, email: user.email });
    ctx.body = ctx.body.replace('</form>', `<input type="hidden" name="user" value="${escapeHtml(field)}"/>\n</form>`);
  });

  for (const middleware of options.middleware ?? []) provider.use(middleware as never);
  return provider;
}

export interface RunningDemoId {
  /** The issuer: where apps discover it. */
  url: string;
  provider: Provider;
  close(): Promise<void>;
}

/**
 * Starts Demo ID on `host:port` (port 0: any free port). The issuer is http://host:port unless
 * `issuer` says otherwise (tests stand it in for a provider with another name).
 */
export async function startDemoId(options: Omit<DemoIdOptions, 'issuer'> & { issuer?: string; port?: number; host?: string }): Promise<RunningDemoId> {
  const host = options.host ?? '127.0.0.1';
  let handler: ReturnType<Provider['callback']> | undefined;
  const server = createServer((req, res) => {
    if (handler) void handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const provider = await createDemoId({ ...options, issuer: options.issuer ?? url });
  handler = provider.callback();
  return {
    url,
    provider,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      // A test may leave a request hanging on purpose (a slow provider): do not wait for it.
      server.closeAllConnections();
    }),
  };
}

// `node src/oidc/demo-id.ts`: Demo ID on http://localhost:3001 for a Parley in development.
// DEMO_ID_PORT, DEMO_ID_CLIENT_SECRET and DEMO_ID_REDIRECT_URIS (Parley's callback URLs, comma
// separated) adjust it; it prints the identity_providers entry that points Parley at it.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.DEMO_ID_PORT ?? 3001);
  const secret = process.env.DEMO_ID_CLIENT_SECRET ?? 'demo-id-secret-change-me';
  const redirectUris = (process.env.DEMO_ID_REDIRECT_URIS ?? 'http://localhost:3000/federation/demo-id/callback').split(',').map((u) => u.trim()).filter(Boolean);
  const running = await startDemoId({ host: 'localhost', port, issuer: `http://localhost:${port}`, clients: [{ client_id: 'parley', client_secret: secret, redirect_uris: redirectUris }] });
  process.stdout.write(`Demo ID is running at ${running.url} (issuer http://localhost:${port}), for redirect URIs ${redirectUris.join(', ')}.
Point Parley at it with:
identity_providers:
  - { id: demo-id, type: oidc, name: Demo ID, issuer: "http://localhost:${port}", client_id: parley, client_secret: ${secret}, trust_email_verified: true }
`);
  const stop = () => { void running.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
