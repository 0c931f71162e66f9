import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { findForm, HttpBrowser, type Page } from '../support/browser.ts';
import { appClient, authorizationRequest, exchange, oidc, PASSWORD, type AppClient } from '../support/oidc-app.ts';
import { readMailbox } from '../../src/mail/mailer.ts';
import { ownDatabase } from '../support/database.ts';
import { captureLogs, freePort, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';
import { loopbackFetch, startGitHubLike, startOidcUpstream, type GitHubLike, type OidcUpstream } from '../support/upstreams.ts';

// "Continue with …" through Parley's pages, with openid-client as the app and real upstream
// providers on loopback: Demo ID (oidc-provider) as an OpenID provider, a GitHub-style OAuth 2.0
// server, a provider that is down, and Apple's form_post stand-in. Each test goes the whole way:
// the app's authorization request, Parley's sign-in page, the provider, Parley's callback, the
// app's code exchange.

const TOS = { id: 'tos', version: 1, title: { en: 'Terms of service', ar: 'شروط الخدمة' }, url: 'https://example.com/terms' };
const text = (page: Page) => page.html.replace(/[\u2068\u2069]/g, '').replaceAll('&#x27;', "'");

const suffix = crypto.randomUUID().slice(0, 8);
const GITHUB_ID = Number.parseInt(suffix.slice(0, 7), 16);
const teamId = 'TEAM123456';
const keyId = 'KEY1234567';
const appleKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const relay = `r${Date.now().toString(36)}@privaterelay.appleid.com`;
const appleUser = { sub: `001234.${suffix}`, email: relay, email_verified: 'true' as const, is_private_email: 'true', given_name: 'Ada', family_name: 'Apple' };
let apple: OidcUpstream;
let applePort: number;

let server: TestServer;
let spa: AppClient;
let demo: OidcUpstream;
let github: GitHubLike;
const ada = { sub: `ada-${suffix}`, email: `ada-${suffix}@demo-id.test`, email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', locale: 'en' };
const sam = { sub: `sam-${suffix}`, email: `sam-${suffix}@demo-id.test`, email_verified: false, name: 'Sam Unverified' };
const lin = { sub: `lin-${suffix}`, email: `lin-${suffix}@demo-id.test`, email_verified: true, name: 'Lin' };
// Victims of the pre-hijacking attacks: each signs in with Demo ID, which verified their address.
const victim = (n: number) => ({ sub: `victim${n}-${suffix}`, email: `victim${n}-${suffix}@example.com`, email_verified: true, name: `Victim ${n}` });
const victims = [1, 2, 3, 4, 5].map(victim);
const accountPeople = [6, 7, 8, 9].map(victim);
// The attacker at Demo ID claims victim 5's address, unverified.
const mallory = { sub: `mallory-${suffix}`, email: victims[4]!.email, email_verified: false, name: 'Mallory' };

let drop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  // A database of this file's own on PostgreSQL: its wrong passwords (attackers' and victims')
  // from 127.0.0.1 must not fill the address's sign-in throttle for the files running beside it.
  const own = await ownDatabase('parley_federation');
  drop = own.drop;
  const demoPort = await freePort();
  const downPort = await freePort();
  applePort = await freePort();
  github = await startGitHubLike({
    clientId: 'gh-client', clientSecret: 'gh-secret',
    user: { id: GITHUB_ID, login: 'octo', name: 'Octo Cat', email: null, emails: [{ email: `octo-${suffix}@example.com`, primary: true, verified: true, visibility: null }] },
  });
  server = await startTestServer({
    ...(own.backend.url ? { database: { url: own.backend.url } } : {}),
    terms: [TOS],
    identity_providers: [
      { id: 'demo-id', type: 'oidc', name: { en: 'Demo ID', ar: 'الهوية التجريبية' }, issuer: `http://127.0.0.1:${demoPort}`, client_id: 'parley', client_secret: 'demo-secret', trust_email_verified: true, timeout: '2s' },
      {
        id: 'octo', type: 'oauth2', name: 'Octo', client_id: 'gh-client', client_secret: 'gh-secret', trust_email_verified: true,
        authorization_endpoint: `${github.url}/login/oauth/authorize`, token_endpoint: `${github.url}/login/oauth/access_token`,
        userinfo_endpoint: `${github.url}/user`, emails_endpoint: `${github.url}/user/emails`, scopes: ['read:user', 'user:email'], claims: { subject: 'id' },
      },
      { id: 'down', type: 'oidc', name: 'Down', issuer: `http://127.0.0.1:${downPort}`, client_id: 'parley', client_secret: 'x', timeout: '2s' },
      {
        id: 'apple', preset: 'apple', client_id: 'com.example.web',
        apple: { team_id: teamId, key_id: keyId, private_key: appleKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      },
    ],
  }, { upstreamFetch: loopbackFetch({ 'https://appleid.apple.com': `http://127.0.0.1:${applePort}` }) });
  demo = await startOidcUpstream({
    port: demoPort,
    clients: [{ client_id: 'parley', client_secret: 'demo-secret', redirect_uris: [`${server.issuer}/federation/demo-id/callback`] }],
    users: [ada, sam, lin, ...victims, mallory, ...accountPeople],
  });
  apple = await startOidcUpstream({
    port: applePort,
    issuer: 'https://appleid.apple.com',
    clients: [{ client_id: 'com.example.web', client_secret: 'registered-at-the-stand-in', redirect_uris: [`${server.issuer}/federation/apple/callback`], post_user_on_first_authorization: true }],
    users: [appleUser],
    extraClaims: { email: ['is_private_email'], name: [] },
    apple: { teamId, keyId, clientId: 'com.example.web', publicKey: appleKeys.publicKey },
  });
  spa = await appClient(server, 'spa');
});
afterAll(async () => {
  await server?.close();
  await demo?.close();
  await github?.close();
  await apple?.close();
  await drop?.();
});

const db = () => server.parley.storage.db;
/** The sign-in interaction a page's forms post to. */
const uidOf = (page: Page) => /action="\/interaction\/([^/"]+)\//.exec(page.html)![1]!;
/** The newest one-time code mailed to the address. */
async function codeSentTo(email: string): Promise<string> {
  await server.deliverMail();
  const mails = (await readMailbox(server.mailboxDir)).filter((m) => m.to === email);
  return /\b(\d{6})\b/.exec(mails.at(-1)?.text ?? '')?.[1] ?? 'no code';
}
const userinfo = (accessToken: string, sub: string) => oidc.fetchUserInfo(spa.config, accessToken, sub);

/** The app's authorization request, to Parley's sign-in page. */
async function signInPage(params: Record<string, string> = {}) {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(spa, params);
  return { browser, request, page: await browser.navigate(request.url) };
}

/** Presses "Continue with …" and follows the provider until a page is shown or the app is reached. */
async function continueWith(browser: HttpBrowser, page: Page, provider: string): Promise<Page> {
  const href = new RegExp(`href="([^"]*/upstream/${provider})"`).exec(page.html)?.[1];
  if (!href) throw new Error(`no button for ${provider} in ${page.html.slice(0, 1500)}`);
  return browser.navigate(new URL(href, page.url).href, {}, spa.redirectUri);
}

const identityOf = (sub: string, provider = 'demo-id') => db().selectFrom('identities').selectAll()
  .where('provider', '=', provider).where('subject', '=', sub).executeTakeFirst();
const eventsOf = (accountId: string) => db().selectFrom('outbox_events').select(['type', 'payload'])
  .where('account_id', '=', accountId).where('type', 'not like', 'mail.%').orderBy('seq').execute();

describe('the sign-in and registration pages', () => {
  it('show one button per provider, named in the page language, linking to the start route; the CSP is the same', async () => {
    const { page } = await signInPage();
    for (const id of ['demo-id', 'octo', 'down']) expect(page.html).toMatch(new RegExp(`<a class="button button--secondary" href="/interaction/[^"]+/upstream/${id}" data-provider="${id}">`));
    expect(text(page)).toContain('Continue with Demo ID');
    // The buttons are plain links: the page's policy is the one every page has (with our own
    // script for passkeys), naming no provider's site and allowing nothing inline.
    expect(page.headers.get('content-security-policy')).toBe(
      `default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; `
      + `script-src 'self'; connect-src 'self'`,
    );
    const arabic = await signInPage({ ui_locales: 'ar' });
    expect(text(arabic.page)).toContain('المتابعة باستخدام الهوية التجريبية');
    const { browser, page: again } = await signInPage();
    const registerLink = /href="([^"]*\/register)"/.exec(again.html)![1]!;
    const registration = await browser.navigate(new URL(registerLink, again.url).href);
    expect(registration.html).toMatch(/href="\/interaction\/[^"]+\/upstream\/demo-id"/);
  });
});

describe('signing up and in with an OpenID provider', () => {
  let sub: string;

  it('signs up: the terms are asked on the way, the account is made with the verified address and the identity, and the app gets amr fed', async () => {
    const { browser, request, page } = await signInPage();
    const form = await continueWith(browser, page, 'demo-id');
    expect(form.status).toBe(200);
    expect(text(form)).toContain(`You are creating an account with Demo ID as ${ada.email}.`);
    expect(form.html).toContain('value="Ada Lovelace"');

    // Not ticked: refused, nothing stored, the form again.
    const refused = await browser.submit(form, '/upstream/register', { name: 'Ada Lovelace' }, spa.redirectUri);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('id="terms--error"');
    expect(await db().selectFrom('accounts').select('id').where('email', '=', ada.email).execute()).toEqual([]);
    expect(await identityOf(ada.sub)).toBeUndefined();

    const callback = await browser.submit(refused, '/upstream/register', { name: 'Ada Lovelace', terms: ['tos'] }, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    const tokens = await exchange(spa, request, callback.url);
    const claims = tokens.claims()!;
    sub = claims.sub;
    // The proof the provider path carries: fed, one factor.
    expect(claims).toMatchObject({ amr: ['fed'], acr: 'urn:parley:acr:1fa' });
    expect(await userinfo(tokens.access_token, sub)).toMatchObject({ email: ada.email, email_verified: true, name: 'Ada Lovelace' });

    const account = await db().selectFrom('accounts').selectAll().where('id', '=', sub).executeTakeFirstOrThrow();
    expect(account.password_hash).toBeNull();
    expect(account.email_verified_at).not.toBeNull();
    expect(await identityOf(ada.sub)).toMatchObject({ account_id: sub, email: ada.email, email_verified: true });
    expect((await eventsOf(sub)).map((e) => e.type)).toEqual(['account.created', 'terms.accepted', 'identity.linked']);
    expect((await eventsOf(sub))[2]!.payload).toEqual({ version: 1, account_id: sub, provider: 'demo-id', source: 'registration' });
    expect(await db().selectFrom('terms_acceptances').select('document_id').where('subject', '=', sub).execute()).toEqual([{ document_id: 'tos' }]);
    // The transaction is gone with the sign-in.
    expect(await db().selectFrom('upstream_sign_ins').select('id').where('interaction_uid', '=', uidOf(form)).execute()).toEqual([]);
  });

  it('signs in again to the same account, straight to the app', async () => {
    const { browser, request, page } = await signInPage();
    const callback = await continueWith(browser, page, 'demo-id');
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    expect((await exchange(spa, request, callback.url)).claims()!.sub).toBe(sub);
    expect(await db().selectFrom('accounts').select('id').where('email', '=', ada.email).execute()).toHaveLength(1);
    expect((await identityOf(ada.sub))!.last_used_at).not.toBeNull();
  });

  it('goes straight to the provider named by idp', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(spa, { idp: 'demo-id' });
    const callback = await browser.navigate(request.url, {}, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    expect((await exchange(spa, request, callback.url)).claims()!.sub).toBe(sub);
  });

  it('refuses a replayed answer, and an answer brought to another browser, on the sign-in page', async () => {
    const { browser, page } = await signInPage();
    const href = /href="([^"]*\/upstream\/demo-id)"/.exec(page.html)![1]!;
    // Up to the provider's answer, without letting Parley take it.
    const answered = await browser.navigate(new URL(href, page.url).href, {}, `${server.issuer}/federation/`);
    const answer = answered.url;
    expect(answer).toContain('/federation/demo-id/callback?');

    // Another browser (an attacker's page, or a link sent to a victim) brings the answer: it is
    // recorded, but only the interaction that started the sign-in can take it.
    const stranger = new HttpBrowser();
    const elsewhere = await stranger.navigate(answer, {}, spa.redirectUri);
    expect(elsewhere.url.startsWith(spa.redirectUri)).toBe(false);
    expect([400, 404]).toContain(elsewhere.status);

    const first = await browser.navigate(answer, {}, spa.redirectUri);
    expect(first.url.startsWith(spa.redirectUri)).toBe(true);

    // The same answer again, in a new sign-in of the same browser: refused.
    const { browser: later } = await signInPage();
    const replayed = await later.navigate(answer, {}, spa.redirectUri);
    expect(replayed.url.startsWith(spa.redirectUri)).toBe(false);
    expect(replayed.status).toBe(400);
  });

  it('refuses a state Parley never sent', async () => {
    const forged = await new HttpBrowser().navigate(`${server.issuer}/federation/demo-id/callback?code=abc&state=${'x'.repeat(43)}`);
    expect(forged.status).toBe(400);
    expect(text(forged)).toContain('This sign-in could not be matched to this browser.');
  });

  it('refuses an ID token with another nonce, stores nothing, and says so on the sign-in page', async () => {
    demo.misbehave.idToken = 'wrong_nonce';
    const logs = captureLogs(server, 'warn');
    try {
      const { browser, page } = await signInPage();
      const failed = await continueWith(browser, page, 'demo-id');
      // The operator reads which provider, where and why; the page says none of it.
      expect(logs).toContainEqual(expect.objectContaining({ msg: 'upstream sign-in failed', upstream: 'invalid_id_token', provider: 'demo-id', stage: 'token' }));
      expect(JSON.stringify(logs)).not.toContain('eyJ');
      expect(failed.status).toBe(502);
      expect(text(failed)).toContain('The other service\'s answer could not be used.');
      expect(failed.html).toContain('action="/interaction/');
      const row = await db().selectFrom('upstream_sign_ins').selectAll().where('interaction_uid', '=', uidOf(failed)).executeTakeFirstOrThrow();
      expect(row.identity).toBeNull();
      expect(row.callback).toBeNull();
    } finally {
      delete demo.misbehave.idToken;
      (server.parley.logger as { level: string }).level = 'silent';
    }
  });

  it('asks for a code to an address the provider did not verify before making an account with it', async () => {
    const { browser, request, page } = await signInPage({ login_hint: sam.sub });
    const verify = await continueWith(browser, page, 'demo-id');
    expect(verify.status).toBe(200);
    expect(text(verify)).toContain('Demo ID did not confirm an email address for you.');
    expect(verify.html).toContain(`value="${sam.email}"`);
    expect(await db().selectFrom('accounts').select('id').where('email', '=', sam.email).execute()).toEqual([]);

    const sent = await browser.submit(verify, '/upstream/code', { email: sam.email });
    expect(text(sent)).toContain(`We sent a code to ${sam.email}.`);
    const wrong = await browser.submit(sent, '/upstream/code', { code: '000000' === await codeSentTo(sam.email) ? '111111' : '000000' });
    expect(wrong.status).toBe(401);
    const form = await browser.submit(wrong, '/upstream/code', { code: await codeSentTo(sam.email) }, spa.redirectUri);
    expect(text(form)).toContain(`You are creating an account with Demo ID as ${sam.email}.`);
    const callback = await browser.submit(form, '/upstream/register', { name: 'Sam', terms: ['tos'] }, spa.redirectUri);
    const tokens = await exchange(spa, request, callback.url);
    expect(await userinfo(tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: sam.email, email_verified: true });
    // As the provider said it: not verified.
    expect(await identityOf(sam.sub)).toMatchObject({ email_verified: false });
  });
});

describe('Sign in with Apple', () => {
  /**
   * To Apple (its stand-in on loopback) and back: Apple answers with a page that posts the answer
   * to Parley, a cross-site POST that a browser sends without Parley's SameSite=Lax cookies, so
   * it is posted here with none; the browser then follows Parley's redirect with its cookies.
   */
  async function throughApple(browser: HttpBrowser, page: Page): Promise<Page> {
    const href = /href="([^"]*\/upstream\/apple)"/.exec(page.html)![1]!;
    // Every hop at Apple's address goes to its stand-in on loopback.
    let url = new URL(href, page.url).href;
    let response = await browser.request(url);
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops++) {
      url = new URL(response.headers.get('location')!, url).href;
      response = await browser.request(url.replace('https://appleid.apple.com', `http://127.0.0.1:${applePort}`));
    }
    const formPost = { url, status: response.status, html: await response.text(), headers: response.headers };
    const { action, hidden } = findForm(formPost.html, `${server.issuer}/federation/apple/callback`);
    const posted = await new HttpBrowser().request(action, { form: hidden });
    expect(posted.status).toBe(303);
    return browser.navigate(new URL(posted.headers.get('location')!, action).href, {}, spa.redirectUri);
  }

  it('signs up from the form_post answer, with the name from the posted user field and the private relay address', async () => {
    const { browser, request, page } = await signInPage();
    const form = await throughApple(browser, page);
    expect(text(form)).toContain(`You are creating an account with Apple as ${relay}.`);
    expect(form.html).toContain('value="Ada Apple"');
    const callback = await browser.submit(form, '/upstream/register', { name: 'Ada Apple', terms: ['tos'] }, spa.redirectUri);
    const tokens = await exchange(spa, request, callback.url);
    expect(await userinfo(tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: relay, email_verified: true, name: 'Ada Apple' });
    expect(apple.appleSecrets.length).toBeGreaterThan(0);

    // Apple sends the name only the first time; the next sign-in needs none.
    const next = await signInPage();
    const again = await throughApple(next.browser, next.page);
    expect(again.url.startsWith(spa.redirectUri)).toBe(true);
    expect((await exchange(spa, next.request, again.url)).claims()!.sub).toBe(tokens.claims()!.sub);
  });

  it('refuses a form_post answer replayed or posted with a forged state', async () => {
    const forged = await new HttpBrowser().request(`${server.issuer}/federation/apple/callback`, { form: { code: 'c', state: 'y'.repeat(43) } });
    expect(forged.status).toBe(400);
  });
});

describe('upstream errors', () => {
  it('access_denied at an OAuth 2.0 provider: back on the sign-in page, nothing stored', async () => {
    github.deny = true;
    try {
      const { browser, page } = await signInPage();
      const denied = await continueWith(browser, page, 'octo');
      expect(denied.status).toBe(403);
      expect(text(denied)).toContain('Signing in with the other service was cancelled.');
      expect(await db().selectFrom('identities').select('subject').where('provider', '=', 'octo').execute()).toEqual([]);
    } finally {
      github.deny = false;
    }
  });

  it('a provider that is down: back on the sign-in page with a message', async () => {
    const { browser, page } = await signInPage();
    const down = await continueWith(browser, page, 'down');
    expect(down.status).toBe(502);
    expect(text(down)).toContain('The other service is not answering right now.');
  });

  it('a provider that does not answer in time', async () => {
    demo.misbehave.hang = 'token';
    try {
      const { browser, page } = await signInPage();
      const slow = await continueWith(browser, page, 'demo-id');
      expect(slow.status).toBe(504);
      expect(text(slow)).toContain('The other service is not answering right now.');
    } finally {
      delete demo.misbehave.hang;
    }
  });

  it('signs up with the GitHub-style provider from its primary verified address', async () => {
    const { browser, request, page } = await signInPage();
    const form = await continueWith(browser, page, 'octo');
    const callback = await browser.submit(form, '/upstream/register', { name: 'Octo Cat', terms: ['tos'] }, spa.redirectUri);
    const tokens = await exchange(spa, request, callback.url);
    expect(await userinfo(tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: `octo-${suffix}@example.com`, email_verified: true, name: 'Octo Cat' });
    expect(await identityOf(String(GITHUB_ID), 'octo')).toMatchObject({ email: `octo-${suffix}@example.com` });
  });
});

describe('an address that already has an account', () => {
  it('is never linked silently: the account\'s password proves it is theirs, then the identity is linked', async () => {
    // A password account with the address Demo ID asserts for Lin, verified.
    const first = await signInPage();
    const link = /href="([^"]*\/register)"/.exec(first.page.html)![1]!;
    const form = await first.browser.navigate(new URL(link, first.page.url).href);
    const made = await first.browser.submit(form, '/register', { email: lin.email, password: PASSWORD, name: 'Lin', terms: ['tos'] }, spa.redirectUri);
    expect(made.url.startsWith(spa.redirectUri)).toBe(true);
    await db().updateTable('accounts').set({ email_verified_at: new Date() }).where('email', '=', lin.email).execute();
    const accountId = (await db().selectFrom('accounts').select('id').where('email', '=', lin.email).executeTakeFirstOrThrow()).id;

    const { browser, request, page } = await signInPage({ login_hint: lin.sub });
    const prove = await continueWith(browser, page, 'demo-id');
    expect(prove.status).toBe(200);
    expect(text(prove)).toContain(`An account already uses ${lin.email}.`);
    expect(await identityOf(lin.sub)).toBeUndefined();

    const wrong = await browser.submit(prove, '/upstream/link', { password: 'not the password at all' }, spa.redirectUri);
    expect(wrong.status).toBe(401);
    expect(await identityOf(lin.sub)).toBeUndefined();

    const callback = await browser.submit(wrong, '/upstream/link', { password: PASSWORD }, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    expect((await exchange(spa, request, callback.url)).claims()).toMatchObject({ sub: accountId });
    expect(await identityOf(lin.sub)).toMatchObject({ account_id: accountId });
    const linked = (await eventsOf(accountId)).filter((e) => e.type === 'identity.linked');
    expect(linked.map((e) => e.payload)).toEqual([{ version: 1, account_id: accountId, provider: 'demo-id', source: 'sign_in' }]);
  });
});

/** A password account made through the registration page; its address is never verified. Returns the browser signed in to it. */
async function passwordAccount(email: string) {
  const { browser, page } = await signInPage();
  const link = /href="([^"]*\/register)"/.exec(page.html)![1]!;
  const form = await browser.navigate(new URL(link, page.url).href);
  const made = await browser.submit(form, '/register', { email, password: PASSWORD, name: 'Attacker', terms: ['tos'] }, spa.redirectUri);
  expect(made.url.startsWith(spa.redirectUri)).toBe(true);
  const { id } = await db().selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirstOrThrow();
  return { browser, accountId: id };
}

/** The victim continues with Demo ID to the account made with their address, and reclaims it with a code sent there. */
async function reclaimWithCode(person: { sub: string; email: string }) {
  const { browser, request, page } = await signInPage({ login_hint: person.sub });
  const prove = await continueWith(browser, page, 'demo-id');
  expect(text(prove)).toContain(`An account already uses ${person.email}.`);
  // Whoever made the account set its password: signing in with it proves nothing, so it is not offered.
  expect(prove.html).not.toContain('/upstream/link');
  const sent = await browser.submit(prove, '/upstream/code', {});
  const callback = await browser.submit(sent, '/upstream/code', { code: await codeSentTo(person.email) }, spa.redirectUri);
  expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
  return (await exchange(spa, request, callback.url)).claims()!.sub;
}

/** Whether a password still signs in to the address. */
async function passwordWorks(email: string): Promise<boolean> {
  const { browser, page } = await signInPage();
  const answer = await browser.submit(page, '/login', { email, password: PASSWORD }, spa.redirectUri);
  return answer.url.startsWith(spa.redirectUri);
}

// Sudhodanan & Paverd, "Pre-hijacked accounts" (USENIX Security 2022): the attacker knows only the
// victim's address and prepares an account before the victim arrives. Each attack, refused.
describe('pre-account-takeover attacks', () => {
  it('classic-federated merge: the attacker\'s password account is not merged; the victim reclaims it and the password is gone', async () => {
    const person = victims[0]!;
    const attacker = await passwordAccount(person.email);
    const sub = await reclaimWithCode(person);
    expect(sub).toBe(attacker.accountId);
    expect(await passwordWorks(person.email)).toBe(false);
    const account = await db().selectFrom('accounts').selectAll().where('id', '=', sub).executeTakeFirstOrThrow();
    expect(account.password_hash).toBeNull();
    expect(account.email_verified_at).not.toBeNull();
  });

  it('unexpired session: the attacker\'s session ends when the victim reclaims the account', async () => {
    const person = victims[1]!;
    const attacker = await passwordAccount(person.email);
    // Still signed in: a silent request gets a code.
    const silent = async () => {
      const request = await authorizationRequest(spa, { prompt: 'none' });
      return new URL((await attacker.browser.navigate(request.url, {}, spa.redirectUri)).url);
    };
    expect((await silent()).searchParams.get('code')).not.toBeNull();
    await reclaimWithCode(person);
    expect((await silent()).searchParams.get('error')).toBe('login_required');
  });

  it('trojan identifier: an identity the attacker linked to the account is removed when the victim reclaims it', async () => {
    const person = victims[2]!;
    const attacker = await passwordAccount(person.email);
    // The attacker's own identity somehow on the account (an import, an older linking rule).
    await db().insertInto('identities').values({
      provider: 'octo', subject: `trojan-${suffix}`, account_id: attacker.accountId, email: null, email_verified: false, linked_at: new Date(), last_used_at: null,
    }).execute();
    await reclaimWithCode(person);
    expect(await identityOf(`trojan-${suffix}`, 'octo')).toBeUndefined();
    const unlinked = (await eventsOf(attacker.accountId)).filter((e) => e.type === 'identity.unlinked');
    expect(unlinked.map((e) => e.payload)).toEqual([{ version: 1, account_id: attacker.accountId, provider: 'octo', source: 'reclaim' }]);
    // And linking from a signed-in session is refused while the address is unproven (linking.ts rule 5, unit-tested there).
  });

  it('unexpired email change: the attacker\'s pending change is cancelled by the reclaim', async () => {
    const person = victims[3]!;
    const attackerAddress = `attacker4-${suffix}@example.com`;
    const attacker = await passwordAccount(person.email);
    await server.parley.accounts.requestEmailChange(attacker.accountId, attackerAddress, 'en');
    const [changeLink] = await server.linksSentTo(attackerAddress);
    expect(changeLink).toContain('/account/email/confirm');
    await reclaimWithCode(person);
    const confirm = await new HttpBrowser().navigate(changeLink!);
    expect(confirm.status).toBe(400);
    expect((await db().selectFrom('accounts').select('email').where('id', '=', attacker.accountId).executeTakeFirstOrThrow()).email).toBe(person.email);
  });

  it('non-verifying IdP: an identity claiming the victim\'s address without proof is neither linked nor signed in', async () => {
    const person = victims[4]!;
    // The victim's own account, address verified.
    const victimAccount = await passwordAccount(person.email);
    await db().updateTable('accounts').set({ email_verified_at: new Date() }).where('id', '=', victimAccount.accountId).execute();

    const { browser, page } = await signInPage({ login_hint: mallory.sub });
    const verify = await continueWith(browser, page, 'demo-id');
    // Asked to prove the address, which only its owner can: a code to the victim's mailbox.
    expect(text(verify)).toContain('Demo ID did not confirm an email address for you.');
    const sent = await browser.submit(verify, '/upstream/code', { email: person.email });
    const guessed = await browser.submit(sent, '/upstream/code', { code: '123456' === await codeSentTo(person.email) ? '654321' : '123456' }, spa.redirectUri);
    expect(guessed.url.startsWith(spa.redirectUri)).toBe(false);
    expect(guessed.status).toBe(401);
    expect(await identityOf(mallory.sub)).toBeUndefined();
    expect(await db().selectFrom('identities').select('provider').where('account_id', '=', victimAccount.accountId).execute()).toEqual([]);
  });
});

describe('/account: linked providers', () => {
  const kim = victim(9);

  /** A new account made with Demo ID (no password), and the browser signed in to it. */
  async function federatedAccount(person: { sub: string }) {
    const { browser, request, page } = await signInPage({ login_hint: person.sub });
    const form = await continueWith(browser, page, 'demo-id');
    const callback = await browser.submit(form, '/upstream/register', { terms: ['tos'] }, spa.redirectUri);
    return { browser, accountId: (await exchange(spa, request, callback.url)).claims()!.sub };
  }

  it('lists them, refuses to unlink the last way to sign in, links another after a recent sign-in, then unlinks', async () => {
    const { browser, accountId } = await federatedAccount(kim);
    const account = await browser.navigate(`${server.issuer}/account`);
    expect(account.status).toBe(200);
    expect(text(account)).toContain('Linked providers');
    expect(account.html).toContain('href="/account/identities/octo/link"');

    // No password, no passkey, no other identity: Demo ID is the only way in. The page offers no
    // button and says why; a form posted anyway is refused.
    expect(account.html).not.toContain('action="/account/identities/demo-id/unlink"');
    expect(text(account)).toContain('This is your only way to sign in, so it cannot be removed.');
    const csrf = findForm(account.html, '/account/').hidden;
    const refused = await browser.navigate(`${server.issuer}/account/identities/demo-id/unlink`, { form: csrf });
    expect(refused.status).toBe(409);
    expect(text(refused)).toContain('This is your only way to sign in');
    expect(await identityOf(kim.sub)).toBeDefined();

    // Linking Octo: through the provider, back to /account.
    const octoUser = github.signedIn;
    github.signedIn = { id: GITHUB_ID + 1, login: 'kim', name: 'Kim', email: null, emails: [{ email: kim.email, primary: true, verified: true, visibility: null }] };
    try {
      const linked = await browser.navigate(`${server.issuer}/account/identities/octo/link`);
      expect(linked.url).toContain('/account?done=identity_linked');
      expect(text(linked)).toContain('The provider is linked: you can sign in with it.');
    } finally {
      github.signedIn = octoUser;
    }
    expect(await identityOf(String(GITHUB_ID + 1), 'octo')).toMatchObject({ account_id: accountId });

    // Now Demo ID can go, and either may.
    const page = await browser.navigate(`${server.issuer}/account`);
    expect(page.html).toContain('action="/account/identities/demo-id/unlink"');
    expect(page.html).toContain('action="/account/identities/octo/unlink"');
    const unlinked = await browser.submit(page, '/account/identities/demo-id/unlink', {});
    expect(unlinked.url).toContain('/account?done=identity_unlinked');
    expect(await identityOf(kim.sub)).toBeUndefined();
    const events = (await eventsOf(accountId)).filter((e) => e.type.startsWith('identity.'));
    expect(events.map((e) => [e.type, (e.payload as { provider: string; source: string }).provider, (e.payload as { source: string }).source])).toEqual([
      ['identity.linked', 'demo-id', 'registration'], ['identity.linked', 'octo', 'account'], ['identity.unlinked', 'demo-id', 'account'],
    ]);

    // The export lists what is linked.
    const exported = await browser.request(`${server.issuer}/account/export`);
    const data = await exported.json() as { identities: { provider: string; subject: string }[] };
    expect(data.identities.map((i) => [i.provider, i.subject])).toEqual([['octo', String(GITHUB_ID + 1)]]);
  });

  it('sets a first password for an account that has none, after which the provider may be unlinked', async () => {
    const person = victim(6);
    const { browser } = await federatedAccount(person);
    const account = await browser.navigate(`${server.issuer}/account`);
    expect(text(account)).toContain('Your account has no password.');
    const form = await browser.navigate(`${server.issuer}/account/identities/password`);
    expect(form.html).toContain('autocomplete="new-password"');
    const short = await browser.submit(form, '/account/identities/password', { password: 'short' });
    expect(short.status).toBe(400);
    expect(short.html).toContain('id="password-error"');
    expect(await passwordWorks(person.email)).toBe(false);
    const done = await browser.submit(short, '/account/identities/password', { password: PASSWORD });
    expect(done.url).toContain('/account?done=password_set');
    expect(text(done)).not.toContain('Your account has no password.');
    expect(await passwordWorks(person.email)).toBe(true);
    // No longer the last way in.
    const unlinked = await browser.submit(done, '/account/identities/demo-id/unlink', {});
    expect(unlinked.url).toContain('/account?done=identity_unlinked');
    expect(await identityOf(person.sub)).toBeUndefined();
  });

  it('asks for a recent sign-in before linking', async () => {
    const { browser } = await federatedAccount(victim(8));
    server.clock.advance(3600);
    try {
      const link = await browser.request(`${server.issuer}/account/identities/octo/link`);
      expect(link.status).toBe(303);
      expect(link.headers.get('location')).toContain('/account/login?reauth=1');
    } finally {
      server.clock.advance(-3600);
    }
  });

  it('deleting the account deletes its identities', async () => {
    const person = victim(7);
    const { browser, accountId } = await federatedAccount(person);
    const page = await browser.navigate(`${server.issuer}/account/delete`);
    const deleted = await browser.submit(page, '/account/delete', { confirm: 'yes' });
    expect(deleted.status).toBe(200);
    expect(await db().selectFrom('accounts').select('id').where('id', '=', accountId).execute()).toEqual([]);
    expect(await identityOf(person.sub)).toBeUndefined();
  });
});

describe('the age gate on the provider path', () => {
  let aged: TestServer;
  let agedSpa: AppClient;
  let upstream: OidcUpstream;
  const young = { sub: `young-${suffix}`, email: `young-${suffix}@demo-id.test`, email_verified: true, name: 'Young One' };
  const adult = { sub: `adult-${suffix}`, email: `adult-${suffix}@demo-id.test`, email_verified: true, name: 'Adult One' };

  beforeAll(async () => {
    const port = await freePort();
    aged = await startTestServer((issuer) => ({
      registration: { minimum_age: 16, birthdate_purpose: 'age_check' },
      purposes: { age_check: { legal_basis: 'legal_obligation', version: 1, title: { en: 'Age check' } } },
      clients: TEST_CLIENTS(issuer).map((c) => (c.client_id === 'spa' ? { ...c, purposes: [...c.purposes, 'age_check'] } : c)),
      identity_providers: [{ id: 'demo-id', type: 'oidc', name: 'Demo ID', issuer: `http://127.0.0.1:${port}`, client_id: 'parley', client_secret: 'demo-secret', trust_email_verified: true }],
    }));
    upstream = await startOidcUpstream({
      port, clients: [{ client_id: 'parley', client_secret: 'demo-secret', redirect_uris: [`${aged.issuer}/federation/demo-id/callback`] }], users: [young, adult],
    });
    agedSpa = await appClient(aged, 'spa');
  });
  afterAll(async () => {
    await aged?.close();
    await upstream?.close();
  });

  const yearsAgo = (years: number, days = 0) => {
    const now = aged.clock.now();
    return new Date(Date.UTC(now.getUTCFullYear() - years, now.getUTCMonth(), now.getUTCDate() + days)).toISOString().slice(0, 10);
  };
  async function registrationForm(person: { sub: string }) {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(agedSpa, { login_hint: person.sub });
    const page = await browser.navigate(request.url);
    const href = /href="([^"]*\/upstream\/demo-id)"/.exec(page.html)![1]!;
    return { browser, request, form: await browser.navigate(new URL(href, page.url).href, {}, agedSpa.redirectUri) };
  }

  it('asks for the date of birth; someone too young is turned away and nothing about them is kept', async () => {
    const { browser, form } = await registrationForm(young);
    expect(form.html).toMatch(/<input id="birthdate" name="birthdate" type="date"/);
    const refused = await browser.submit(form, '/upstream/register', { birthdate: yearsAgo(16, 1) }, agedSpa.redirectUri);
    expect(refused.status).toBe(403);
    const adb = aged.parley.storage.db;
    expect(await adb.selectFrom('accounts').select('id').where('email', '=', young.email).execute()).toEqual([]);
    expect(await adb.selectFrom('identities').select('subject').where('subject', '=', young.sub).execute()).toEqual([]);
    expect(await adb.selectFrom('upstream_sign_ins').select('identity').where('interaction_uid', '=', uidOf(form)).execute()).toEqual([{ identity: null }]);
  });

  it('keeps the date of birth with an account old enough', async () => {
    const { browser, request, form } = await registrationForm(adult);
    const callback = await browser.submit(form, '/upstream/register', { birthdate: yearsAgo(30) }, agedSpa.redirectUri);
    expect(callback.url.startsWith(agedSpa.redirectUri)).toBe(true);
    const sub = (await exchange(agedSpa, request, callback.url)).claims()!.sub;
    const answers = await aged.parley.storage.db.selectFrom('answers').select(['question_id', 'purpose']).where('account_id', '=', sub).execute();
    expect(answers).toEqual([{ question_id: 'date_of_birth', purpose: 'age_check' }]);
  });
});
