import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findForm, HttpBrowser, type FormFields, type Page } from '../support/browser.ts';
import {
  appClient, authorizationRequest, exchange, oidc, register, signIn, uniqueEmail, type AppClient, type AuthorizationRequest,
} from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Progressive profiling over HTTP: the real server with the screen-sets in
// tests/fixtures/screensets-e2e, openid-client as the apps, and Parley's clock moved by days.

const DAY = 24 * 3600;
const SCOPE = 'openid email profile preferences';

let server: TestServer;
let spa: AppClient;      // first party, purposes personalization + offers
let webApp: AppClient;   // third party, purpose personalization only

beforeAll(async () => {
  server = await startTestServer({ screensets: { dir: 'tests/fixtures/screensets-e2e' } });
  spa = await appClient(server, 'spa');
  webApp = await appClient(server, 'web-app');
});
afterAll(async () => { await server?.close(); });

const db = () => server.parley.storage.db;

/** The question ids on a profile page, in order. */
function questionsOn(page: Page): string[] {
  return [...page.html.matchAll(/name="decline" value="([^"]+)"/g)].map((m) => m[1]!);
}

/** Saves the screen, consenting to both purposes of the fixtures unless `fields` says otherwise. */
function save(browser: HttpBrowser, page: Page, fields: FormFields, stopAt: string): Promise<Page> {
  return browser.submit(page, '/profile', { consent: ['personalization', 'offers'], ...fields }, stopAt);
}

/** "Not now": the same form, posted to the skip action. */
function notNow(browser: HttpBrowser, page: Page, stopAt: string): Promise<Page> {
  const form = findForm(page.html, '/profile');
  return browser.navigate(new URL(`${form.action}/skip`, page.url).href, { form: form.hidden }, stopAt);
}

/** Starts an authorization in the browser; returns the first page Parley shows (or the callback). */
async function authorize(browser: HttpBrowser, app: AppClient, params: Record<string, string> = {}) {
  const request = await authorizationRequest(app, { scope: SCOPE, ...params });
  return { request, page: await browser.navigate(request.url, {}, app.redirectUri) };
}

async function tokensFor(app: AppClient, request: AuthorizationRequest, callback: Page) {
  expect(callback.url.startsWith(app.redirectUri)).toBe(true);
  const tokens = await exchange(app, request, callback.url);
  const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, tokens.claims()!.sub);
  return { tokens, userinfo };
}

/** A new user who registered through the SPA and answered or skipped the welcome screen. */
async function registeredUser(onWelcome: (browser: HttpBrowser, page: Page) => Promise<Page>) {
  const browser = new HttpBrowser();
  const email = uniqueEmail('profile');
  const { request, page: login } = await authorize(browser, spa);
  const welcome = await register(browser, login, email, spa.redirectUri);
  const callback = await onWelcome(browser, welcome);
  const { tokens } = await tokensFor(spa, request, callback);
  return { email, sub: tokens.claims()!.sub };
}

/** A sign-in in a fresh browser (a new sign-in session); returns the first page after the password. */
async function freshSignIn(email: string, app: AppClient = spa) {
  const browser = new HttpBrowser();
  const { request, page: login } = await authorize(browser, app);
  return { browser, request, page: await signIn(browser, login, email, app.redirectUri) };
}

describe('the question screen in a sign-in', () => {
  it('asks after registration, stores the answers with history, reward and events, and releases them by purpose', async () => {
    const browser = new HttpBrowser();
    const email = uniqueEmail('welcome');
    const { request, page: login } = await authorize(browser, spa);
    const welcome = await register(browser, login, email, spa.redirectUri);

    // Two of the three welcome questions: the per-session ceiling.
    expect(welcome.status).toBe(200);
    expect(welcome.html).toContain('Welcome');
    expect(questionsOn(welcome)).toEqual(['favourite_drink', 'birthday']);
    expect(welcome.html).toContain('A free drink on your birthday');

    // Both purposes need consent, asked on the screen with unticked boxes; without it nothing is stored.
    expect(welcome.html).toMatch(/<input[^>]*type="checkbox"[^>]*name="consent"[^>]*value="personalization"(?![^>]*checked)/);
    const answers = { 'answer.favourite_drink': 'tea', 'answer.birthday': '1990-04-01' };
    const refused = await save(browser, welcome, { ...answers, consent: ['personalization'] }, spa.redirectUri);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('tick the box');
    expect(await db().selectFrom('answers').selectAll().where('question_id', '=', 'favourite_drink')
      .where('account_id', 'in', db().selectFrom('accounts').select('id').where('email', '=', email)).execute()).toEqual([]);

    const callback = await save(browser, refused, answers, spa.redirectUri);
    const { tokens, userinfo } = await tokensFor(spa, request, callback);
    const sub = tokens.claims()!.sub;
    expect(userinfo.preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });
    expect(userinfo.birthdate).toBe('1990-04-01');

    const history = await db().selectFrom('answer_history').selectAll().where('account_id', '=', sub).orderBy('question_id').execute();
    expect(history.map((h) => [h.question_id, h.value, h.set_id, h.label, h.locale, h.client_id, h.source])).toEqual([
      ['birthday', '1990-04-01', 'welcome', 'When is your birthday?', 'en', 'spa', 'screen'],
      ['favourite_drink', 'tea', 'welcome', 'What do you like to drink?', 'en', 'spa', 'screen'],
    ]);
    const rewards = await db().selectFrom('rewards').selectAll().where('account_id', '=', sub).execute();
    expect(rewards.map((r) => [r.question_id, r.points])).toEqual([['birthday', 50]]);
    const events = await db().selectFrom('outbox_events').select(['type', 'payload']).where('account_id', '=', sub).orderBy('seq').execute();
    // The events, and the verification mail queued with the account in the same outbox.
    expect(events.map((e) => e.type).sort()).toEqual([
      'account.created', 'answer.recorded', 'answer.recorded', 'consent.granted', 'consent.granted', 'mail.verify_email', 'reward.granted',
    ]);
    const ledger = await db().selectFrom('consent_ledger').select(['purpose', 'action', 'purpose_version', 'source', 'client_id']).where('subject', '=', sub).orderBy('purpose').execute();
    expect(ledger).toEqual([
      { purpose: 'offers', action: 'granted', purpose_version: 1, source: 'screen', client_id: 'spa' },
      { purpose: 'personalization', action: 'granted', purpose_version: 1, source: 'screen', client_id: 'spa' },
    ]);
    expect(events.find((e) => e.type === 'answer.recorded' && (e.payload as { question_id: string }).question_id === 'birthday')?.payload)
      .toMatchObject({
        purpose: 'offers', value: '1990-04-01', screenset_id: 'welcome', client_id: 'spa',
        consent: { purpose: 'offers', legal_basis: 'consent', version: 1, state: 'granted' },
      });
    const log = await db().selectFrom('prompt_log').select(['question_id', 'outcome']).where('account_id', '=', sub).orderBy('id').execute();
    expect(log).toEqual([
      { question_id: 'favourite_drink', outcome: 'shown' }, { question_id: 'birthday', outcome: 'shown' },
      { question_id: 'favourite_drink', outcome: 'answered' }, { question_id: 'birthday', outcome: 'answered' },
    ]);

    // The third-party app is registered for personalization only: no birthday, in no form.
    const third = await authorize(browser, webApp);
    // (Inserted values are wrapped in Unicode bidi isolates.)
    expect(third.page.html).toMatch(/The preferences you shared for: \u2068?Personalized recommendations/);
    expect(third.page.html).not.toContain('Birthday and loyalty offers');
    const consented = await browser.submit(third.page, '/consent', {}, webApp.redirectUri);
    const { tokens: webTokens, userinfo: webUserinfo } = await tokensFor(webApp, third.request, consented);
    expect(webUserinfo.preferences).toEqual({ favourite_drink: 'tea' });
    expect(webUserinfo.birthdate).toBeUndefined();
    expect(webTokens.claims()!.birthdate).toBeUndefined();

    // Without the preferences scope, no preferences claim at all.
    const plain = await authorizationRequest(spa, { scope: 'openid email' });
    const plainCallback = await browser.navigate(plain.url, {}, spa.redirectUri);
    const { userinfo: plainUserinfo } = await tokensFor(spa, plain, plainCallback);
    expect(plainUserinfo.preferences).toBeUndefined();
  });

  it('asks the next question at a sign-in the next day, one screen per interval, never for prompt=none', async () => {
    const { email } = await registeredUser((browser, page) =>
      save(browser, page, { 'answer.favourite_drink': 'coffee', 'answer.birthday': '' }, spa.redirectUri));

    // The same day, a new sign-in: within min_interval of the welcome screen, nothing is asked.
    let signInPage = (await freshSignIn(email)).page;
    expect(signInPage.url.startsWith(spa.redirectUri)).toBe(true);

    server.clock.advance(DAY);
    // The next day the next question comes, one on this screen (the set's max_questions).
    const { browser, page: next } = await freshSignIn(email);
    expect(questionsOn(next)).toEqual(['roast']);

    // prompt=none in the same session never shows a question, even though one is due.
    const silent = await authorizationRequest(spa, { scope: SCOPE, prompt: 'none' });
    const silentAnswer = await browser.navigate(silent.url, {}, spa.redirectUri);
    expect(new URL(silentAnswer.url).searchParams.get('code')).toBeTruthy();

    await save(browser, next, { 'answer.roast': 'dark' }, spa.redirectUri);
    signInPage = (await freshSignIn(email)).page;
    expect(signInPage.url.startsWith(spa.redirectUri)).toBe(true);
  });

  it('re-renders a tampered or invalid answer with the message beside it and stores nothing', async () => {
    const browser = new HttpBrowser();
    const { page: login } = await authorize(browser, spa);
    const email = uniqueEmail('tamper');
    const welcome = await register(browser, login, email, spa.redirectUri);
    // This account's rows only: other test files write to the same database in the PostgreSQL pass.
    const answersOfUser = async () => (await db().selectFrom('answers').innerJoin('accounts', 'accounts.id', 'answers.account_id')
      .select('answers.question_id').where('accounts.email', '=', email).execute()).length;
    const logOfUser = async () => (await db().selectFrom('prompt_log').innerJoin('accounts', 'accounts.id', 'prompt_log.account_id')
      .select('prompt_log.outcome').where('accounts.email', '=', email).where('outcome', '<>', 'shown').execute()).length;

    const refused = await save(browser, welcome, { 'answer.favourite_drink': 'whisky', 'answer.birthday': '2999-01-01' }, spa.redirectUri);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('aria-invalid="true"');
    expect(refused.html).toMatch(/field__error|question__error|Error:/);
    // What the user typed stays in the field.
    expect(refused.html).toContain('value="2999-01-01"');
    expect(await answersOfUser()).toBe(0);
    expect(await logOfUser()).toBe(0);

    // Corrected, it goes through.
    const done = await save(browser, refused, { 'answer.favourite_drink': 'coffee', 'answer.birthday': '2000-02-29' }, spa.redirectUri);
    expect(await answersOfUser()).toBe(2);
    expect(done.url.startsWith(spa.redirectUri)).toBe(true);
  });

  it('respects "Not now" for the cooldown and "Don\'t ask me again" for good', async () => {
    const { email, sub } = await registeredUser((browser, page) => notNow(browser, page, spa.redirectUri));
    const skipped = await db().selectFrom('prompt_log').select(['question_id', 'outcome']).where('account_id', '=', sub).where('outcome', '=', 'skipped').execute();
    expect(skipped.map((r) => r.question_id).sort()).toEqual(['birthday', 'favourite_drink']);

    server.clock.advance(DAY);
    let { browser, page } = await freshSignIn(email);
    // The welcome set is for the first sign-in only; the daily set asks, one question.
    expect(questionsOn(page)).toEqual(['roast']);
    // Declining roast and leaving nothing else: the next screen moves on to the next question.
    await save(browser, page, { decline: 'roast' }, spa.redirectUri);

    server.clock.advance(DAY);
    ({ browser, page } = await freshSignIn(email));
    expect(questionsOn(page)).toEqual(['cups_per_day']);
    await notNow(browser, page, spa.redirectUri);

    server.clock.advance(DAY);
    ({ browser, page } = await freshSignIn(email));
    expect(questionsOn(page)).toEqual(['likes_events']);
    await save(browser, page, { 'answer.likes_events': 'true' }, spa.redirectUri);

    // Inside the 7-day cooldown of cups_per_day, nothing is left to ask.
    server.clock.advance(DAY);
    ({ page } = await freshSignIn(email));
    expect(page.url.startsWith(spa.redirectUri)).toBe(true);

    // After it, cups_per_day comes back; the declined roast never does.
    server.clock.advance(7 * DAY);
    ({ browser, page } = await freshSignIn(email));
    expect(questionsOn(page)).toEqual(['cups_per_day']);
    await save(browser, page, { 'answer.cups_per_day': '3' }, spa.redirectUri);
    server.clock.advance(30 * DAY);
    ({ page } = await freshSignIn(email));
    expect(page.url.startsWith(spa.redirectUri)).toBe(true);
  });

  it('never blocks a sign-in when profiling fails', async () => {
    // A server of its own on the embedded database: the failure is made by taking a table away,
    // which must not touch the database other test files share in the PostgreSQL pass.
    const isolated = await startTestServer({ screensets: { dir: 'tests/fixtures/screensets-e2e' }, database: { url: '', data_dir: 'memory://' } });
    try {
      const app = await appClient(isolated, 'spa');
      const email = uniqueEmail('failing');
      const first = new HttpBrowser();
      const welcome = await register(first, await first.navigate((await authorizationRequest(app, { scope: SCOPE })).url), email, app.redirectUri);
      await notNow(first, welcome, app.redirectUri);
      isolated.clock.advance(DAY);
      await isolated.parley.storage.db.schema.alterTable('prompt_log').renameTo('prompt_log_away').execute();
      const browser = new HttpBrowser();
      const request = await authorizationRequest(app, { scope: SCOPE });
      const page = await signIn(browser, await browser.navigate(request.url), email, app.redirectUri);
      expect(page.url.startsWith(app.redirectUri)).toBe(true);
      expect((await exchange(app, request, page.url)).access_token).toBeTruthy();
      const metrics = await (await fetch(`${isolated.issuer}/metrics`)).text();
      expect(metrics).toMatch(/^parley_profiling_failures_total [1-9]/m);
    } finally {
      await isolated.close();
    }
  });
});
