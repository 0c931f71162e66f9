import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findForm, HttpBrowser, type FormFields, type Page } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, oauthErrorOf, oidc, register, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { deletedSubject } from '../../src/consent/ledger.ts';

// The preference center over HTTP, with openid-client as the apps: consent, release, export,
// deletion, CSRF and isolation between accounts.

const SCOPE = 'openid email profile preferences offline_access';
const SCREENSETS = { dir: 'tests/fixtures/screensets-e2e' };
const REAUTH_LINK = /href="\/account\/login\?reauth(=|&#x3D;)1/;

let server: TestServer;
let spa: AppClient;

beforeAll(async () => {
  server = await startTestServer({ screensets: SCREENSETS });
  spa = await appClient(server, 'spa');
});
afterAll(async () => { await server?.close(); });

const db = () => server.parley.storage.db;

interface User { browser: HttpBrowser; email: string; sub: string; tokens: Awaited<ReturnType<typeof exchange>>; app: AppClient }

/** Registers through the SPA, answers the welcome screen with consent to both purposes, and keeps the tokens. */
async function newUser(target: TestServer = server, app: AppClient = spa): Promise<User> {
  const browser = new HttpBrowser();
  const email = uniqueEmail('center');
  // prompt=consent: offline_access (a refresh token) is only granted with it (OIDC Core 11).
  const request = await authorizationRequest(app, { scope: SCOPE, prompt: 'consent' });
  const welcome = await register(browser, await browser.navigate(request.url), email, app.redirectUri);
  const callback = await browser.submit(welcome, '/profile', {
    'answer.favourite_drink': 'tea', 'answer.birthday': '1990-04-01', consent: ['personalization', 'offers'],
  }, app.redirectUri);
  const tokens = await exchange(app, request, callback.url);
  return { browser, email, sub: tokens.claims()!.sub, tokens, app };
}

function userinfo(user: User) {
  return oidc.fetchUserInfo(user.app.config, user.tokens.access_token, user.sub);
}

async function accountPage(user: User): Promise<Page> {
  const page = await user.browser.navigate(`${server.issuer}/account`);
  expect(page.url).toBe(`${server.issuer}/account`);
  return page;
}

/** Submits the preference-center form whose action ends with `action`, from the account page. */
async function act(user: User, action: string, fields: FormFields = {}): Promise<Page> {
  return user.browser.submit(await accountPage(user), action, fields);
}

/** Makes the user's sign-in older than account.recent_sign_in, on Parley's clock. */
function outlastRecentSignIn(): void {
  server.clock.advance(server.config.account.recent_sign_in + 1);
}

/** Signs in again for a page that needs a recent sign-in (prompt=login), and lands on it. */
async function reauthenticate(user: User, returnTo: string): Promise<Page> {
  const reauth = await user.browser.navigate(`${server.issuer}/account/login?reauth=1&return=${encodeURIComponent(returnTo)}`);
  expect(reauth.url).toContain('/interaction/');
  const page = await signIn(user.browser, reauth, user.email, `${server.issuer}/never`);
  expect(page.url).toBe(`${server.issuer}${returnTo}`);
  return page;
}

describe('the preference center', () => {
  it('is reached with the same sign-in as the apps, and asks for one when there is none', async () => {
    const user = await newUser();
    const page = await accountPage(user);
    expect(page.html).toContain(user.email);
    expect(page.html).toContain('What do you like to drink?');
    expect(page.html).toContain('Tea');

    const stranger = new HttpBrowser();
    const login = await stranger.navigate(`${server.issuer}/account`);
    expect(login.url).toContain('/interaction/');
    const back = await signIn(stranger, login, user.email, `${server.issuer}/never`);
    expect(back.url).toBe(`${server.issuer}/account`);
    expect(back.html).toContain(user.email);
  });

  it('stops releasing an answer as soon as its consent is withdrawn, and can delete the answers with it', async () => {
    const user = await newUser();
    expect((await userinfo(user)).preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });

    const after = await act(user, '/account/consents/offers', { action: 'withdraw' });
    expect(after.url).toContain('done=consent_withdrawn');
    // The same access token, the next call: the birthday is no longer released, in no form.
    const info = await userinfo(user);
    expect(info.preferences).toEqual({ favourite_drink: 'tea' });
    expect(info.birthdate).toBeUndefined();
    // The answer is kept (the user did not ask to delete it) but not released.
    expect(await db().selectFrom('answers').select('question_id').where('account_id', '=', user.sub).orderBy('question_id').execute())
      .toEqual([{ question_id: 'birthday' }, { question_id: 'favourite_drink' }]);

    await act(user, '/account/consents/offers', { action: 'grant' });
    expect((await userinfo(user)).birthdate).toBe('1990-04-01');

    await act(user, '/account/consents/personalization', { action: 'withdraw', delete_answers: 'yes' });
    expect((await userinfo(user)).preferences).toEqual({ birthday: '1990-04-01' });
    expect(await db().selectFrom('answers').select('question_id').where('account_id', '=', user.sub).execute()).toEqual([{ question_id: 'birthday' }]);

    const ledger = await db().selectFrom('consent_ledger').select(['purpose', 'action', 'source']).where('subject', '=', user.sub).orderBy('id').execute();
    expect(ledger.map((r) => `${r.purpose}:${r.action}:${r.source}`)).toEqual([
      'personalization:granted:screen', 'offers:granted:screen',
      'offers:withdrawn:preference_center', 'offers:granted:preference_center', 'personalization:withdrawn:preference_center',
    ]);
    const events = await db().selectFrom('outbox_events').select('type').where('account_id', '=', user.sub).orderBy('seq').execute();
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['consent.withdrawn', 'consent.granted', 'answer.deleted']));
  });

  it('edits an answer with the same validation as the question screen, and deletes one', async () => {
    const user = await newUser();
    const edit = await user.browser.navigate(`${server.issuer}/account/answers/favourite_drink/edit`);
    expect(edit.status).toBe(200);
    const refused = await user.browser.submit(edit, '/account/answers/favourite_drink', { 'answer.favourite_drink': 'whisky' });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('aria-invalid="true"');
    expect((await userinfo(user)).preferences).toMatchObject({ favourite_drink: 'tea' });

    const saved = await user.browser.submit(edit, '/account/answers/favourite_drink', { 'answer.favourite_drink': 'coffee' });
    expect(saved.url).toContain('done=answer_saved');
    expect((await userinfo(user)).preferences).toMatchObject({ favourite_drink: 'coffee' });

    await act(user, '/account/answers/birthday/delete');
    const info = await userinfo(user);
    expect(info.preferences).toEqual({ favourite_drink: 'coffee' });
    const history = await db().selectFrom('answer_history').select(['question_id', 'value', 'source', 'set_id', 'set_version', 'client_id'])
      .where('account_id', '=', user.sub).orderBy('id').execute();
    // The edit names the screen-set and version the question was shown from, and the preference
    // center's own client, as an answer on a question screen does.
    expect(history.slice(-2)).toEqual([
      { question_id: 'favourite_drink', value: 'coffee', source: 'preference_center', set_id: 'welcome', set_version: 1, client_id: 'parley-account' },
      { question_id: 'birthday', value: null, source: 'preference_center', set_id: 'welcome', set_version: 0, client_id: null },
    ]);
    // The deleted answer is gone from its history too (and so from the download).
    expect(history.filter((h) => h.question_id === 'birthday').map((h) => h.value)).toEqual([null, null]);
    const exported = await (await user.browser.request(`${server.issuer}/account/export`)).text();
    expect(exported).not.toContain('1990-04-01');
  });

  it('records communication preferences as a ledger and lists, then disconnects, the apps', async () => {
    const user = await newUser();
    await act(user, '/account/communication', { comm: ['email:news', 'push:offers'] });
    await act(user, '/account/communication', { comm: ['email:news'] });
    const rows = await db().selectFrom('communication_ledger').select(['channel', 'topic', 'enabled']).where('account_id', '=', user.sub).orderBy('id').execute();
    expect(rows).toEqual([
      { channel: 'email', topic: 'news', enabled: true }, { channel: 'push', topic: 'offers', enabled: true },
      { channel: 'push', topic: 'offers', enabled: false },
    ]);
    const page = await accountPage(user);
    expect(page.html).toMatch(/value="email:news"[^>]*checked/);
    expect(page.html).not.toMatch(/value="push:offers"[^>]*checked/);

    // Revoking the app ends its refresh token.
    expect(page.html).toContain('Brand SPA');
    await act(user, '/account/apps/spa/revoke');
    await expect(oidc.refreshTokenGrant(spa.config, user.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await accountPage(user)).html).not.toContain('/account/apps/spa/revoke');
    // Recorded once, with the revocation, as the event that tells downstream systems.
    const revoked = await db().selectFrom('outbox_events').select('payload').where('account_id', '=', user.sub).where('type', '=', 'app.revoked').execute();
    expect(revoked.map((e) => e.payload)).toEqual([{ version: 1, account_id: user.sub, client_id: 'spa', source: 'preference_center' }]);
  });

  it('exports everything the user gave', async () => {
    const user = await newUser();
    await act(user, '/account/communication', { comm: ['sms:offers'] });
    const response = await user.browser.request(`${server.issuer}/account/export`);
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="parley-data-/);
    const data = await response.json() as Record<string, unknown>;
    expect(data).toMatchObject({
      account: { id: user.sub, email: user.email },
      answers: [{ question_id: 'birthday', value: '1990-04-01' }, { question_id: 'favourite_drink', value: 'tea' }],
      rewards: [{ question_id: 'birthday', points: 50 }],
    });
    expect(data.answer_history).toHaveLength(2);
    expect(data.consents).toHaveLength(2);
    expect((data.prompt_log as unknown[]).length).toBeGreaterThanOrEqual(4);
    expect((data.communication_preferences as { history: unknown[] }).history).toEqual([expect.objectContaining({ channel: 'sms', topic: 'offers', enabled: true })]);
    expect(data.connected_apps).toEqual(expect.arrayContaining([expect.objectContaining({ client_id: 'spa' })]));
  });

  it('refuses a cross-site post to every action, and changes nothing', async () => {
    const user = await newUser();
    const actions = [
      '/account/answers/favourite_drink', '/account/answers/favourite_drink/delete', '/account/consents/offers',
      '/account/communication', '/account/apps/spa/revoke', '/account/delete', '/account/email',
    ];
    for (const action of actions) {
      // The user's own cookies ride along, as they would on a forged cross-site form; only the token is missing.
      const response = await user.browser.request(`${server.issuer}${action}`, {
        form: { action: 'withdraw', 'answer.favourite_drink': 'coffee', confirm: 'yes', comm: 'email:news', new_email: 'x@example.com' },
        headers: { origin: 'https://evil.example' },
      });
      expect(response.status, action).toBe(403);
    }
    expect((await userinfo(user)).preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });
    expect(await db().selectFrom('communication_ledger').selectAll().where('account_id', '=', user.sub).execute()).toEqual([]);
  });

  it('answers 404 for ids that name nothing, whatever they contain', async () => {
    const user = await newUser();
    const { hidden } = findForm((await accountPage(user)).html, '/account/communication');
    for (const action of ['/account/answers/x%00/delete', '/account/answers/NOPE/delete', '/account/consents/__proto__', '/account/apps/a%00b/revoke']) {
      const response = await user.browser.request(`${server.issuer}${action}`, { form: { ...hidden, action: 'withdraw' } });
      expect(response.status, action).toBe(404);
    }
  });

  it('never lets one user read or change another\'s data', async () => {
    const alice = await newUser();
    const bob = await newUser();
    await act(bob, '/account/answers/favourite_drink/delete');
    await bob.browser.submit(await bob.browser.navigate(`${server.issuer}/account/answers/birthday/edit`), '/account/answers/birthday', { 'answer.birthday': '1980-01-01' });
    expect((await userinfo(alice)).preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });
    const bobPage = await accountPage(bob);
    expect(bobPage.html).not.toContain(alice.email);
    const exported = await (await bob.browser.request(`${server.issuer}/account/export`)).json() as { account: { id: string } };
    expect(exported.account.id).toBe(bob.sub);
  });
});

describe('changing the email address', () => {
  it('needs a recent sign-in, confirms the new address by link, and tells the old one', async () => {
    const user = await newUser();
    const other = await newUser();
    outlastRecentSignIn();
    const stale = await user.browser.navigate(`${server.issuer}/account/email`);
    expect(stale.html).toMatch(/href="\/account\/login\?reauth(=|&#x3D;)1/);
    expect(stale.html).not.toContain('name="new_email"');

    let page = await reauthenticate(user, '/account/email');
    const invalid = await user.browser.submit(page, '/account/email', { new_email: 'not-an-address' });
    expect(invalid.status).toBe(400);
    expect(invalid.html).toContain('value="not-an-address"');

    // An address in use gets the same answer, and no link: once every mail queued so far has
    // gone out, none went there (the free address below shows that a link would have).
    page = await user.browser.submit(page, '/account/email', { new_email: other.email });
    expect(page.status).toBe(200);
    const sentText = page.html.match(/<p class="lead" role="status">[^<]*/)?.[0];
    expect(sentText).toBeDefined();
    expect(await server.linksSentTo(other.email)).not.toContainEqual(expect.stringContaining('/account/email/confirm'));
    expect(await db().selectFrom('outbox_events').select('id').where('type', '=', 'mail.change_email').where('account_id', '=', user.sub).execute()).toEqual([]);

    const newEmail = uniqueEmail('moved');
    const sent = await user.browser.submit(await user.browser.navigate(`${server.issuer}/account/email`), '/account/email', { new_email: newEmail });
    expect(sent.html.match(/<p class="lead" role="status">[^<]*/)?.[0]).toBe(sentText);
    // Nothing changes until the link is opened, in any browser.
    expect((await userinfo(user)).email).toBe(user.email);
    // The mail goes out after the answer, from the outbox (its timing must not tell taken from free addresses).
    const [link] = (await server.linksSentTo(newEmail)).filter((l) => l.includes('/account/email/confirm'));
    expect(link).toBeDefined();
    const confirmed = await new HttpBrowser().navigate(link!);
    expect(confirmed.status).toBe(200);
    expect((await new HttpBrowser().navigate(link!)).status).toBe(400);
    expect((await server.linksSentTo(user.email)).some((l) => l.includes('/forgot-password'))).toBe(true);

    // The new address signs in, and the app sees it; the old one no longer does.
    const fresh = new HttpBrowser();
    const request = await authorizationRequest(spa, { scope: SCOPE });
    const callback = await signIn(fresh, await fresh.navigate(request.url), newEmail, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    const tokens = await exchange(spa, request, callback.url);
    expect(await oidc.fetchUserInfo(spa.config, tokens.access_token, user.sub)).toMatchObject({ email: newEmail, email_verified: true });
    const old = new HttpBrowser();
    expect((await signIn(old, await old.navigate((await authorizationRequest(spa)).url), user.email, spa.redirectUri)).status).toBe(401);
  });

  it('spends the links mailed to the old address and signs the account out everywhere', async () => {
    const user = await newUser();
    const elsewhere = await newUser();
    // A reset requested before the change: its link went to the old address.
    const asker = new HttpBrowser();
    await asker.submit(await asker.navigate(`${server.issuer}/forgot-password`), '/forgot-password', { email: user.email });
    const [resetLink] = (await server.linksSentTo(user.email)).filter((l) => l.includes('/reset-password?token='));
    expect(resetLink).toBeDefined();

    const newEmail = uniqueEmail('moved');
    await user.browser.submit(await user.browser.navigate(`${server.issuer}/account/email`), '/account/email', { new_email: newEmail });
    const [link] = (await server.linksSentTo(newEmail)).filter((l) => l.includes('/account/email/confirm'));
    expect(link).toBeDefined();
    // Confirmed from another browser, as a mail client on a phone would.
    const confirmed = await new HttpBrowser().navigate(link!);
    expect(confirmed.status).toBe(200);

    // The old address's reset link opens nothing: not the page, not the form.
    const resetPage = await new HttpBrowser().navigate(resetLink!);
    expect(resetPage.status).toBe(400);
    expect(resetPage.html).toContain('This link is not valid');
    const token = new URL(resetLink!).searchParams.get('token')!;
    const browser = new HttpBrowser();
    const csrfPage = await browser.navigate(`${server.issuer}/forgot-password`);
    const { hidden } = findForm(csrfPage.html, '/forgot-password');
    const attempt = await browser.navigate(`${server.issuer}/reset-password`, { form: { csrf: hidden.csrf!, token, password: 'a brand new passphrase 42' } });
    expect(attempt.status).toBe(400);
    const stranger = new HttpBrowser();
    const refused = await signIn(stranger, await stranger.navigate((await authorizationRequest(spa)).url), newEmail, spa.redirectUri, 'a brand new passphrase 42');
    expect(refused.status).toBe(401);

    // Every session of the account ended: its refresh and access tokens, and the preference center's session.
    await expect(oidc.refreshTokenGrant(spa.config, user.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await oauthErrorOf(userinfo(user))).toBe('invalid_token');
    expect((await user.browser.navigate(`${server.issuer}/account`)).url).toContain('/interaction/');
    expect(await db().selectFrom('oidc_payloads').select('id').where('account_id', '=', user.sub).execute()).toEqual([]);
    // Other accounts keep theirs.
    expect((await userinfo(elsewhere)).email).toBe(elsewhere.email);
    expect((await oidc.refreshTokenGrant(spa.config, elsewhere.tokens.refresh_token!)).access_token).toBeDefined();

    // The account signs in again with its new address and its password.
    const fresh = new HttpBrowser();
    expect((await signIn(fresh, await fresh.navigate((await authorizationRequest(spa)).url), newEmail, spa.redirectUri)).url.startsWith(spa.redirectUri)).toBe(true);
  });

  it('takes a few requests an hour, taken and free addresses alike, then asks to wait', async () => {
    const user = await newUser();
    const other = await newUser();
    const request = async (address: string) =>
      user.browser.submit(await user.browser.navigate(`${server.issuer}/account/email`), '/account/email', { new_email: address });
    for (let i = 0; i < 5; i++) expect((await request(i % 2 ? other.email : uniqueEmail('probe'))).status).toBe(200);
    const refused = await request(uniqueEmail('probe'));
    expect(refused.status).toBe(429);
    expect(refused.html).toContain('Try again in 60 minutes');
    // An hour later (Parley's clock), it is open again, once the user has signed in again: the
    // sign-in is an hour old too.
    server.clock.advance(3601);
    await reauthenticate(user, '/account/email');
    expect((await request(uniqueEmail('probe'))).status).toBe(200);
  });
});

describe('the recent sign-in', () => {
  it('is the time of the password, not of the last screen of the sign-in', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(spa, { scope: SCOPE });
    const welcome = await register(browser, await browser.navigate(request.url), uniqueEmail('stale'), spa.redirectUri);
    // The question screen stays open past the window; finishing it must not renew the sign-in.
    outlastRecentSignIn();
    const form = findForm(welcome.html, '/profile');
    await browser.navigate(new URL(`${form.action}/skip`, welcome.url).href, { form: form.hidden }, spa.redirectUri);
    expect((await browser.navigate(`${server.issuer}/account/delete`)).html).toMatch(REAUTH_LINK);
  });
});

describe('deleting the account', () => {
  it('needs a recent sign-in, then removes the data, the sessions and the tokens, and keeps the consent proof pseudonymized', async () => {
    const user = await newUser();
    // The sign-in grows old: the provider's session says when the password was entered.
    outlastRecentSignIn();
    let page = await user.browser.navigate(`${server.issuer}/account/delete`);
    expect(page.html).toMatch(REAUTH_LINK);
    // The page has no form then; a post made anyway (with a valid CSRF token) is refused too.
    const { hidden } = findForm((await accountPage(user)).html, '/account/communication');
    const early = await user.browser.navigate(`${server.issuer}/account/delete`, { form: { ...hidden, confirm: 'yes' } });
    expect(early.html).toMatch(REAUTH_LINK);
    expect(await db().selectFrom('accounts').select('id').where('id', '=', user.sub).execute()).toHaveLength(1);

    // Signing in again (prompt=login) makes it recent.
    page = await reauthenticate(user, '/account/delete');
    const unconfirmed = await user.browser.submit(page, '/account/delete', {});
    expect(unconfirmed.status).toBe(400);
    const done = await user.browser.submit(page, '/account/delete', { confirm: 'yes' });
    expect(done.status).toBe(200);

    for (const table of ['accounts', 'answers', 'answer_history', 'prompt_log', 'rewards', 'communication_ledger'] as const) {
      const column = table === 'accounts' ? 'id' : 'account_id';
      expect(await db().selectFrom(table).select(column).where(column, '=', user.sub).execute(), table).toEqual([]);
    }
    expect(await db().selectFrom('oidc_payloads').select('id').where('account_id', '=', user.sub).execute()).toEqual([]);
    expect(await db().selectFrom('consent_ledger').select('id').where('subject', '=', user.sub).execute()).toEqual([]);
    // The current consents move with the ledger to the pseudonym.
    expect(await db().selectFrom('consent_current').select('purpose').where('subject', '=', user.sub).execute()).toEqual([]);
    // The proof is kept under this account's own pseudonym, not merely under some pseudonym.
    const proof = await db().selectFrom('consent_ledger').select('purpose')
      .where('subject', '=', deletedSubject(user.sub, server.config.secrets.key_encryption)).execute();
    expect(proof.length).toBeGreaterThanOrEqual(2);
    // Only account.deleted is left of the account's events: the others carried its answers.
    const events = await db().selectFrom('outbox_events').select(['type', 'payload']).where('account_id', '=', user.sub).execute();
    expect(events.map((e) => e.type)).toEqual(['account.deleted']);
    expect(JSON.stringify(await db().selectFrom('outbox_events').select('payload').execute())).not.toContain(user.email);

    await expect(oidc.refreshTokenGrant(spa.config, user.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await oauthErrorOf(userinfo(user))).toBe('invalid_token');
    // The session is gone with it, and the password opens nothing any more.
    const again = await user.browser.navigate(`${server.issuer}/account`);
    expect(again.url).toContain('/interaction/');
    const fresh = new HttpBrowser();
    const refused = await signIn(fresh, await fresh.navigate((await authorizationRequest(spa)).url), user.email, spa.redirectUri);
    expect(refused.status).toBe(401);
  });
});

describe('a purpose whose text changed', () => {
  it('hides the answers under it until the user renews the consent on a re-consent screen', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-reconsent-'));
    const database = { data_dir: dataDir };
    let first: TestServer | undefined = await startTestServer({ screensets: SCREENSETS, database });
    let second: TestServer | undefined;
    try {
      const app = await appClient(first, 'spa');
      const user = await newUser(first, app);
      await first.close();
      first = undefined;

      second = await startTestServer({ screensets: SCREENSETS, database, purposes: { offers: { version: 2 } } });
      // A day later: the welcome screen's min_interval is over.
      second.clock.advance(24 * 3600);
      const renewed = await appClient(second, 'spa');
      const { page, request, browser } = await (async () => {
        const b = new HttpBrowser();
        const r = await authorizationRequest(renewed, { scope: SCOPE });
        return { browser: b, request: r, page: await signIn(b, await b.navigate(r.url), user.email, renewed.redirectUri) };
      })();
      expect(page.status).toBe(200);
      expect(page.html).toMatch(/name="consent"[^>]*value="offers"/);
      // Not renewed yet: the birthday is not released.
      const skipForm = findForm(page.html, '/profile');
      const later = await browser.navigate(new URL(`${skipForm.action}/skip`, page.url).href, { form: skipForm.hidden }, renewed.redirectUri);
      const tokens = await exchange(renewed, request, later.url);
      let info = await oidc.fetchUserInfo(renewed.config, tokens.access_token, user.sub);
      expect(info.preferences).toEqual({ favourite_drink: 'tea' });

      // After the cooldown it is asked again; renewed, the birthday is released again.
      second.clock.advance(8 * 24 * 3600);
      const again = new HttpBrowser();
      const next = await authorizationRequest(renewed, { scope: SCOPE });
      const screen = await signIn(again, await again.navigate(next.url), user.email, renewed.redirectUri);
      expect(screen.html).toMatch(/name="consent"[^>]*value="offers"/);
      const done = await again.submit(screen, '/profile', { consent: 'offers' }, renewed.redirectUri);
      const fresh = await exchange(renewed, next, done.url);
      info = await oidc.fetchUserInfo(renewed.config, fresh.access_token, user.sub);
      expect(info.preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });
    } finally {
      await first?.close();
      await second?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
