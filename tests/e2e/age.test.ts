import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser, type Page } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, oidc, PASSWORD, signIn, uniqueEmail, type AppClient,
} from '../support/oidc-app.ts';
import { ownDatabase } from '../support/database.ts';
import { startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// The age gate over HTTP (registration.minimum_age): registration asks for the date of birth;
// someone younger is turned away kindly with nothing stored, and stays turned away in that sign-in
// whatever date they type next; otherwise the date is kept as an answer under a legal_obligation
// purpose and fills the birthdate claim for the apps registered for that purpose only.

let server: TestServer;
let spa: AppClient;
let webApp: AppClient;
let drop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  // A database of this file's own: its tests count whole tables.
  const own = await ownDatabase('parley_age');
  drop = own.drop;
  server = await startTestServer((issuer) => ({
    database: { url: own.backend.url },
    registration: { minimum_age: 16, birthdate_purpose: 'age_check' },
    purposes: { age_check: { legal_basis: 'legal_obligation', version: 1, title: { en: 'Age check', ar: 'التحقق من العمر' } } },
    // The SPA may receive what is kept under age_check; the web app may not.
    clients: TEST_CLIENTS(issuer).map((c) => (c.client_id === 'spa' ? { ...c, purposes: [...c.purposes, 'age_check'] } : c)),
  }));
  spa = await appClient(server, 'spa');
  webApp = await appClient(server, 'web-app');
});
afterAll(async () => {
  await server?.close();
  await drop?.();
});

const db = () => server.parley.storage.db;
/** The page without the isolation marks the messages put around the values they insert. */
const text = (page: Page) => page.html.replace(/[\u2068\u2069]/g, '');

/** The date `years` years before today on the server's clock, as a date input sends it. */
function yearsAgo(years: number, days = 0): string {
  const now = server.clock.now();
  const date = new Date(Date.UTC(now.getUTCFullYear() - years, now.getUTCMonth(), now.getUTCDate() + days));
  return date.toISOString().slice(0, 10);
}

async function registerPage(app: AppClient, browser = new HttpBrowser()) {
  const request = await authorizationRequest(app);
  const login = await browser.navigate(request.url);
  const link = /href="([^"]*\/register)"/.exec(login.html)![1]!;
  return { browser, request, page: await browser.navigate(new URL(link, login.url).href) };
}

const accountsWith = (email: string) => db().selectFrom('accounts').select('id').where('email', '=', email).execute();
const counts = async () => Promise.all((['accounts', 'answers', 'answer_history', 'outbox_events'] as const)
  .map(async (table) => Number((await db().selectFrom(table).select(({ fn }) => fn.countAll().as('n')).executeTakeFirstOrThrow()).n)));

describe('the age gate', () => {
  it('asks for the date of birth, and refuses one that is no real date with the message beside it', async () => {
    const { browser, page } = await registerPage(spa);
    expect(page.html).toMatch(/<input id="birthdate" name="birthdate" type="date" autocomplete="bday" dir="ltr" required aria-describedby="birthdate-hint">/);
    const email = uniqueEmail('no-date');
    for (const birthdate of ['', '2010-02-30', yearsAgo(-1)]) {
      const refused = await browser.submit(page, '/register', { email, password: PASSWORD, birthdate }, spa.redirectUri);
      expect(refused.status, birthdate).toBe(400);
      expect(refused.html).toContain('id="birthdate-error"');
      expect(refused.html).toContain('Enter your date of birth: a real date, in the past.');
    }
    expect(await accountsWith(email)).toEqual([]);
  });

  it('turns away someone younger than the minimum kindly, stores nothing, and keeps turning them away in that sign-in', async () => {
    const before = await counts();
    const email = uniqueEmail('young');
    const { browser, page } = await registerPage(spa);
    // Sixteen tomorrow: not yet.
    const refused = await browser.submit(page, '/register', { email, password: PASSWORD, name: 'Kim', birthdate: yearsAgo(16, 1) }, spa.redirectUri);
    expect(refused.status).toBe(403);
    expect(text(refused)).toContain('You need to be at least 16 years old to have an account');
    expect(refused.html).toContain('We have not kept anything you typed.');
    expect(refused.html).not.toContain(email);
    // Back, and another date: the same answer in this sign-in.
    const again = await browser.submit(page, '/register', { email, password: PASSWORD, name: 'Kim', birthdate: yearsAgo(30) }, spa.redirectUri);
    expect(again.status).toBe(403);
    expect((await browser.navigate(new URL(page.url).href)).status).toBe(403);
    expect(await accountsWith(email)).toEqual([]);
    expect(await counts()).toEqual(before);
  });

  it('keeps the date of birth under the legal_obligation purpose, released as birthdate only to the apps registered for it', async () => {
    const email = uniqueEmail('adult');
    const birthdate = yearsAgo(16);
    const { browser, request, page } = await registerPage(spa);
    const callback = await browser.submit(page, '/register', { email, password: PASSWORD, name: 'Sam', birthdate }, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    const tokens = await exchange(spa, request, callback.url);
    const sub = tokens.claims()!.sub;
    expect(await db().selectFrom('answers').select(['question_id', 'value', 'purpose', 'set_id']).where('account_id', '=', sub).execute())
      .toEqual([{ question_id: 'date_of_birth', value: birthdate, purpose: 'age_check', set_id: '_registration' }]);
    const recorded = await db().selectFrom('outbox_events').select('payload').where('account_id', '=', sub).where('type', '=', 'answer.recorded').execute();
    expect(recorded.map((e) => e.payload)).toEqual([expect.objectContaining({
      question_id: 'date_of_birth', value: birthdate, purpose: 'age_check', client_id: 'spa',
      consent: { purpose: 'age_check', legal_basis: 'legal_obligation', version: 1, state: 'not_required' },
    })]);
    expect((await oidc.fetchUserInfo(spa.config, tokens.access_token, sub)).birthdate).toBe(birthdate);
    // The person sees it in the preference center, as the registration form asked it.
    const account = await browser.navigate(`${server.issuer}/account`);
    expect(account.status).toBe(200);
    expect(account.html).toContain('<p class="answer__question" id="answer-date_of_birth">Date of birth</p>');

    // The web app is not registered for age_check: no birthdate for it.
    const other = new HttpBrowser();
    const otherRequest = await authorizationRequest(webApp);
    const consent = await signIn(other, await other.navigate(otherRequest.url), email, webApp.redirectUri);
    const otherCallback = await other.submit(consent, '/consent', {}, webApp.redirectUri);
    const otherTokens = await exchange(webApp, otherRequest, otherCallback.url);
    expect((await oidc.fetchUserInfo(webApp.config, otherTokens.access_token, sub)).birthdate).toBeUndefined();
  });
});
