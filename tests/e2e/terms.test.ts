import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findForm, HttpBrowser, type Page } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, PASSWORD, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { ownDatabase } from '../support/database.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Terms of service and privacy policy over HTTP, with openid-client as the app: registration
// needs every document ticked and records it with the account; a new version is accepted at the
// next sign-in before the app gets its code (declining signs out; prompt=none is refused with
// interaction_required); /account and the export show what was accepted when; deletion keeps the
// proof under a pseudonym. Two servers, one after the other, on one database: the second with the
// terms of service at version 2, as an operator's restart with a changed configuration.

const TOS = { id: 'tos', title: { en: 'Terms of service', ar: 'شروط الخدمة' }, url: 'https://example.com/terms' };
const PRIVACY = { id: 'privacy', version: 1, title: { en: 'Privacy policy', ar: 'سياسة الخصوصية' }, url: { en: 'https://example.com/privacy', ar: 'https://example.com/ar/privacy' } };
const TERMS_V1 = [{ ...TOS, version: 1 }, PRIVACY];
const TERMS_V2 = [{ ...TOS, version: 2 }, PRIVACY];

// A database of this file's own (its tests count whole tables), kept across the restart: a
// directory on PGlite, a fresh database on PostgreSQL.
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-terms-'));
const database = { data_dir: dataDir, url: '' };
let drop: (() => Promise<void>) | undefined;
let first: TestServer | undefined;
let server: TestServer;
let spa: AppClient;
beforeAll(async () => {
  const own = await ownDatabase('parley_terms');
  drop = own.drop;
  database.url = own.backend.url;
});
afterAll(async () => {
  await first?.close();
  await server?.close();
  await drop?.();
  rmSync(dataDir, { recursive: true, force: true });
});

const db = () => (server ?? first!).parley.storage.db;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** The page without the isolation marks the messages put around the values they insert. */
const text = (page: Page) => page.html.replace(/[\u2068\u2069]/g, '');

async function registerPage(app: AppClient, params: Record<string, string> = {}) {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(app, params);
  const login = await browser.navigate(request.url);
  const link = /href="([^"]*\/register)"/.exec(login.html)![1]!;
  return { browser, request, page: await browser.navigate(new URL(link, login.url).href) };
}

const ledgerOf = (subject: string) => db().selectFrom('terms_acceptances')
  .select(['document_id', 'document_version', 'source', 'client_id', 'locale', 'text_hash']).where('subject', '=', subject).orderBy('id').execute();
const eventsOf = (accountId: string) => db().selectFrom('outbox_events').select(['type', 'payload'])
  .where('account_id', '=', accountId).where('type', '=', 'terms.accepted').orderBy('seq').execute();
const sessionsOf = (accountId: string) => db().selectFrom('oidc_payloads').select('id')
  .where('model', '=', 'Session').where('account_id', '=', accountId).execute();

interface Registered { email: string; sub: string }

describe('terms at version 1', () => {
  beforeAll(async () => {
    first = await startTestServer({ terms: TERMS_V1, database });
    spa = await appClient(first, 'spa');
  });

  it('shows one unticked box per document, its title linking to it, in the page language', async () => {
    const { page } = await registerPage(spa);
    expect(page.html).toMatch(/<input type="checkbox" id="terms-tos" name="terms" value="tos" required>/);
    expect(page.html).toMatch(/<input type="checkbox" id="terms-privacy" name="terms" value="privacy" required>/);
    expect(page.html).toContain('<a href="https://example.com/terms" target="_blank" rel="noopener noreferrer">Terms of service');
    expect(page.html).toContain('<a href="https://example.com/privacy" target="_blank" rel="noopener noreferrer">Privacy policy');
    const arabic = await registerPage(spa, { ui_locales: 'ar' });
    expect(arabic.page.html).toContain('<a href="https://example.com/ar/privacy" target="_blank" rel="noopener noreferrer">سياسة الخصوصية');
  });

  it('refuses a registration without every box ticked, and stores nothing', async () => {
    const countOf = async (table: 'accounts' | 'outbox_events' | 'terms_acceptances') =>
      Number((await db().selectFrom(table).select(({ fn }) => fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const before = [await countOf('accounts'), await countOf('outbox_events'), await countOf('terms_acceptances')];
    for (const terms of [[], ['tos'], ['privacy'], ['tos', 'unknown']]) {
      const email = uniqueEmail('unticked');
      const { browser, page } = await registerPage(spa);
      const refused = await browser.submit(page, '/register', { email, password: PASSWORD, name: 'Ana', terms }, spa.redirectUri);
      expect(refused.status, terms.join()).toBe(400);
      expect(refused.html).toContain('id="terms--error"');
      expect(refused.html).toContain('Tick each box to accept the documents');
      // What was typed and ticked is kept; the password is not.
      expect(refused.html).toContain(`value="${email}"`);
      for (const id of terms.filter((t) => t !== 'unknown')) expect(refused.html).toMatch(new RegExp(`value="${id}" required checked`));
      expect(await db().selectFrom('accounts').select('id').where('email', '=', email).execute()).toEqual([]);
    }
    expect([await countOf('accounts'), await countOf('outbox_events'), await countOf('terms_acceptances')]).toEqual(before);
  });

  it('records the acceptance of each document with the account, and emits terms.accepted', async () => {
    const email = uniqueEmail('accepts');
    const { browser, request, page } = await registerPage(spa);
    const callback = await browser.submit(page, '/register', { email, password: PASSWORD, name: 'Ana', terms: ['tos', 'privacy'] }, spa.redirectUri);
    // No terms step after registering: the documents were just accepted.
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    const sub = (await exchange(spa, request, callback.url)).claims()!.sub;
    expect(await ledgerOf(sub)).toEqual([
      { document_id: 'tos', document_version: 1, source: 'registration', client_id: 'spa', locale: 'en', text_hash: sha256('Terms of service\nhttps://example.com/terms') },
      { document_id: 'privacy', document_version: 1, source: 'registration', client_id: 'spa', locale: 'en', text_hash: sha256('Privacy policy\nhttps://example.com/privacy') },
    ]);
    expect((await eventsOf(sub)).map((e) => e.payload)).toEqual([
      expect.objectContaining({ account_id: sub, document_id: 'tos', document_version: 1, source: 'registration', client_id: 'spa', locale: 'en' }),
      expect.objectContaining({ account_id: sub, document_id: 'privacy', document_version: 1, source: 'registration' }),
    ]);
    // The next sign-in goes straight to the app.
    const again = new HttpBrowser();
    const next = await authorizationRequest(spa);
    expect((await signIn(again, await again.navigate(next.url), email, spa.redirectUri)).url.startsWith(spa.redirectUri)).toBe(true);
  });
});

describe('a new version of the terms of service', () => {
  const users: Registered[] = [];

  beforeAll(async () => {
    // Three people registered under version 1, then the operator publishes version 2.
    for (let i = 0; i < 3; i++) {
      const email = uniqueEmail('v1');
      const { browser, request, page } = await registerPage(spa);
      const callback = await browser.submit(page, '/register', { email, password: PASSWORD, name: 'Ana', terms: ['tos', 'privacy'] }, spa.redirectUri);
      users.push({ email, sub: (await exchange(spa, request, callback.url)).claims()!.sub });
    }
    await first!.close();
    first = undefined;
    server = await startTestServer({ terms: TERMS_V2, database });
    spa = await appClient(server, 'spa');
  });

  /** Signs in with a password; the sign-in stops at the terms page. */
  async function signInToTerms(user: Registered, params: Record<string, string> = {}) {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(spa, params);
    const page = await signIn(browser, await browser.navigate(request.url), user.email, spa.redirectUri);
    return { browser, request, page };
  }

  it('is accepted at the next sign-in, before the app gets its code', async () => {
    const user = users[0]!;
    const { browser, request, page } = await signInToTerms(user);
    expect(page.status).toBe(200);
    expect(page.url).toContain('/interaction/');
    expect(text(page)).toContain('We have updated the documents below. To continue to Brand SPA');
    // Only the document whose version changed.
    expect(page.html).toMatch(/id="terms-tos" name="terms" value="tos" required>/);
    expect(page.html).not.toContain('id="terms-privacy"');

    // Not ticked: the page again, nothing recorded, no code.
    const unticked = await browser.submit(page, '/terms', {}, spa.redirectUri);
    expect(unticked.status).toBe(400);
    expect(unticked.html).toContain('Tick each box to accept the documents');
    expect(await ledgerOf(user.sub)).toHaveLength(2);

    const callback = await browser.submit(unticked, '/terms', { terms: 'tos' }, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    const tokens = await exchange(spa, request, callback.url);
    expect(tokens.claims()!.sub).toBe(user.sub);
    expect((await ledgerOf(user.sub)).at(-1)).toEqual({
      document_id: 'tos', document_version: 2, source: 'sign_in', client_id: 'spa', locale: 'en', text_hash: sha256('Terms of service\nhttps://example.com/terms'),
    });
    expect((await eventsOf(user.sub)).at(-1)?.payload).toMatchObject({ document_id: 'tos', document_version: 2, source: 'sign_in', client_id: 'spa' });

    // Accepted once: the next sign-in (here without a password, on the session) goes straight on.
    const next = await authorizationRequest(spa, { prompt: 'none' });
    expect((await browser.navigate(next.url, {}, spa.redirectUri)).url).toMatch(/[?&]code=/);
  });

  it('cannot be passed with prompt=none: the app gets interaction_required', async () => {
    const user = users[1]!;
    const earlier = await sessionsOf(user.sub);
    const { browser } = await signInToTerms(user);
    // Signed in (this sign-in's session exists), the terms not accepted.
    expect(await sessionsOf(user.sub)).toHaveLength(earlier.length + 1);
    const silent = await authorizationRequest(spa, { prompt: 'none' });
    const answer = await browser.navigate(silent.url, {}, spa.redirectUri);
    const params = new URL(answer.url).searchParams;
    expect(params.get('error')).toBe('interaction_required');
    expect(params.get('code')).toBeNull();
    expect(await ledgerOf(user.sub)).toHaveLength(2);
  });

  it('ignores a cross-site post without the form token, and a post for another step', async () => {
    const user = users[1]!;
    const { browser, page } = await signInToTerms(user);
    const { action } = findForm(page.html, '/terms');
    const forged = await browser.request(new URL(action, page.url).href, { form: { terms: 'tos' }, headers: { origin: 'https://evil.example' } });
    expect(forged.status).toBe(403);
    expect(await ledgerOf(user.sub)).toHaveLength(2);
    // The consent step's form, posted while the sign-in is at the terms step, leads back to the terms page.
    const { hidden } = findForm(page.html, '/terms');
    const elsewhere = await browser.request(new URL(action.replace(/\/terms$/, '/consent'), page.url).href, { form: hidden });
    expect(elsewhere.status).toBe(303);
    expect(elsewhere.headers.get('location')).toMatch(/\/interaction\/[^/]+$/);
    expect(await ledgerOf(user.sub)).toHaveLength(2);
  });

  it('declined, signs the user out with a page that says what to do, and the app is told access_denied', async () => {
    const user = users[2]!;
    // The session of the registration, in another browser, is not this sign-in's.
    const earlier = await sessionsOf(user.sub);
    const { browser, page } = await signInToTerms(user);
    expect(await sessionsOf(user.sub)).toHaveLength(earlier.length + 1);
    const { action, hidden } = findForm(page.html, '/terms');
    const declined = await browser.navigate(new URL(`${action}/decline`, page.url).href, { form: hidden });
    expect(declined.status).toBe(200);
    expect(declined.html).toContain('<h1>You are signed out</h1>');
    expect(text(declined)).toContain('To use Brand SPA again, sign in and accept the updated terms.');
    expect(declined.html).toContain('href="/account"');
    expect(await sessionsOf(user.sub)).toEqual(earlier);
    expect(await ledgerOf(user.sub)).toHaveLength(2);

    // Accepting afterwards from the old page signs nobody back in.
    const late = await browser.submit(page, '/terms', { terms: 'tos' }, spa.redirectUri);
    expect(late.html).toContain('<h1>You are signed out</h1>');
    expect(await ledgerOf(user.sub)).toHaveLength(2);
    expect(await sessionsOf(user.sub)).toEqual(earlier);

    // The way back to the app: access_denied, no code.
    const back = /<a href="([^"]*\/auth\/[^"]*)">Back to Brand SPA<\/a>/.exec(text(declined))![1]!;
    const returned = await browser.navigate(new URL(back.replaceAll('&amp;', '&'), declined.url).href, {}, spa.redirectUri);
    expect(new URL(returned.url).searchParams.get('error')).toBe('access_denied');
    // Signed out: a silent sign-in needs a login.
    const silent = await authorizationRequest(spa, { prompt: 'none' });
    expect(new URL((await browser.navigate(silent.url, {}, spa.redirectUri)).url).searchParams.get('error')).toBe('login_required');
  });

  async function accountPage(user: Registered): Promise<{ browser: HttpBrowser; page: Page }> {
    const browser = new HttpBrowser();
    const login = await browser.navigate(`${server.issuer}/account`);
    // The preference center opens without the new terms: data rights do not wait on them.
    const page = await signIn(browser, login, user.email, `${server.issuer}/never`);
    expect(page.url).toBe(`${server.issuer}/account`);
    return { browser, page };
  }

  it('shows in /account and in the export what was accepted when, and what is still to accept', async () => {
    const accepted = await accountPage(users[0]!);
    expect(accepted.page.html).toContain('<h2 id="terms">Terms you accepted</h2>');
    expect(text(accepted.page)).toMatch(/Version 2, accepted on [^<]+<\/li>\s*<li>Version 1, accepted on /);
    expect(accepted.page.html).not.toContain('is not accepted yet');
    const exported = await (await accepted.browser.request(`${server.issuer}/account/export`)).json() as { terms_acceptances: unknown[] };
    expect(exported.terms_acceptances).toEqual([
      expect.objectContaining({ document_id: 'tos', document_version: 1, source: 'registration', client_id: 'spa', accepted_at: expect.any(String) }),
      expect.objectContaining({ document_id: 'privacy', document_version: 1, source: 'registration' }),
      expect.objectContaining({ document_id: 'tos', document_version: 2, source: 'sign_in', locale: 'en' }),
    ]);

    const pending = await accountPage(users[2]!);
    expect(text(pending.page)).toContain('Version 2 is not accepted yet');
  });

  it('deleting the account keeps the acceptances as proof, under a pseudonym', async () => {
    const user = users[0]!;
    const { browser } = await accountPage(user);
    const confirm = await browser.navigate(`${server.issuer}/account/delete`);
    expect((await browser.submit(confirm, '/account/delete', { confirm: 'yes' })).status).toBe(200);
    expect(await ledgerOf(user.sub)).toEqual([]);
    const kept = await db().selectFrom('terms_acceptances').select(['subject', 'document_id', 'document_version'])
      .where('subject', 'like', 'deleted:%').orderBy('id').execute();
    expect(kept.map((r) => [r.document_id, r.document_version])).toEqual([['tos', 1], ['privacy', 1], ['tos', 2]]);
    expect(new Set(kept.map((r) => r.subject)).size).toBe(1);
    expect(kept[0]!.subject).toMatch(/^deleted:[0-9a-f]{64}$/);
    // The same pseudonym as the account's consent records would get: one key links the proofs, and only with the secret.
    expect(await db().selectFrom('outbox_events').select('id').where('account_id', '=', user.sub).where('type', '=', 'terms.accepted').execute()).toEqual([]);
  });
});
