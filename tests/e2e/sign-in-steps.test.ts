import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findForm, HttpBrowser, type Page } from '../support/browser.ts';
import { appClient, authorizationRequest, PASSWORD, register, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { watchStatements, type StatementWatch } from '../support/statements.ts';

// The guards every sign-in step passes over HTTP: the interaction of the URL and no other, the
// prompt the step belongs to, and one read of the interaction per request, whatever the step.

let server: TestServer;
let app: AppClient;
let statements: StatementWatch;

beforeAll(async () => {
  server = await startTestServer();
  app = await appClient(server);
  statements = watchStatements(server.parley.storage.db);
});
afterAll(async () => {
  statements?.stop();
  await server?.close();
});

async function newAccount(): Promise<string> {
  const email = uniqueEmail('steps');
  await server.parley.accounts.register({ email, password: PASSWORD, locale: 'en' });
  return email;
}

/**
 * One request of a page's form, no redirect followed: its response and how often it read the
 * interaction. `button` posts to where a button of the form goes instead (formaction).
 */
async function post(browser: HttpBrowser, page: Page, action: string, fields: Record<string, string>, button?: string) {
  const form = findForm(page.html, action);
  const target = button ? new RegExp(`formaction="([^"]*${button})"`).exec(page.html)![1]! : form.action;
  statements.clear();
  const response = await browser.request(new URL(target, page.url).href, { form: { ...form.hidden, ...fields } });
  return { response, interactionReads: statements.reads('oidc_payloads', 'Interaction').length };
}

async function get(browser: HttpBrowser, url: string) {
  statements.clear();
  const response = await browser.request(url);
  return { response, interactionReads: statements.reads('oidc_payloads', 'Interaction').length };
}

const uidOf = (url: string) => /\/interaction\/([^/?#]+)/.exec(url)![1]!;

describe('the interaction of the URL', () => {
  it('refuses a login posted to another interaction\'s address with 404, and signs no one in', async () => {
    const email = await newAccount();
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(app)).url);
    const form = findForm(login.html, '/login');
    const elsewhere = new URL(form.action, login.url).href.replace(uidOf(login.url), 'not-this-interaction');
    const response = await browser.request(elsewhere, { form: { ...form.hidden, email, password: PASSWORD } });
    expect(response.status).toBe(404);
    // The interaction is where it was: still asking who signs in.
    const again = await browser.navigate(login.url);
    expect(again.status).toBe(200);
    expect(findForm(again.html, '/login').action).toContain(uidOf(login.url));
  });

  it('sends a step posted to an interaction at another prompt back to that interaction\'s page', async () => {
    const email = await newAccount();
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(app)).url);
    const consent = await browser.submit(login, '/login', { email, password: PASSWORD });
    expect(consent.html).toContain('/consent');
    const form = findForm(consent.html, '/consent');
    const loginAction = new URL(form.action, consent.url).href.replace(/\/consent$/, '/login');
    const response = await browser.request(loginAction, { form: { ...form.hidden, email, password: PASSWORD } });
    expect(response.status).toBe(303);
    expect(new URL(response.headers.get('location')!, consent.url).pathname).toBe(new URL(consent.url).pathname);
  });
});

describe('reads of the interaction', () => {
  it('reads it once per request, on every step of a sign-in with consent', async () => {
    const email = await newAccount();
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(app)).url);

    const page = await get(browser, login.url);
    expect(page.response.status).toBe(200);
    expect(page.interactionReads).toBe(1);

    const refused = await post(browser, login, '/login', { email, password: 'not the password' });
    expect(refused.response.status).toBe(401);
    expect(refused.interactionReads).toBe(1);

    const signedIn = await post(browser, login, '/login', { email, password: PASSWORD });
    expect(signedIn.response.status).toBe(303);
    expect(signedIn.interactionReads).toBe(1);

    const consent = await browser.navigate(new URL(signedIn.response.headers.get('location')!, login.url).href);
    expect(consent.html).toContain('/consent');
    expect((await get(browser, consent.url)).interactionReads).toBe(1);
    const granted = await post(browser, consent, '/consent', {});
    expect(granted.response.status).toBe(303);
    expect(granted.interactionReads).toBe(1);
  });

  it('reads it once when the user declines', async () => {
    const email = await newAccount();
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(app)).url);
    const consent = await browser.submit(login, '/login', { email, password: PASSWORD });
    const declined = await post(browser, consent, '/consent', {}, '/abort');
    expect(declined.response.status).toBe(303);
    expect(declined.interactionReads).toBe(1);
  });
});

describe('reads of the interaction at the question screen', () => {
  let profiling: TestServer;
  let spa: AppClient;
  let watch: StatementWatch;
  beforeAll(async () => {
    profiling = await startTestServer({ screensets: { dir: 'tests/fixtures/screensets-e2e' } });
    spa = await appClient(profiling, 'spa');
    watch = watchStatements(profiling.parley.storage.db);
  });
  afterAll(async () => {
    watch?.stop();
    await profiling?.close();
  });

  it('reads it once to show the questions, and once to skip them', async () => {
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(spa, { scope: 'openid email profile preferences' })).url);
    const welcome = await register(browser, login, uniqueEmail('questions'), spa.redirectUri);
    expect(welcome.html).toContain('/profile');

    watch.clear();
    expect((await browser.request(welcome.url)).status).toBe(200);
    expect(watch.reads('oidc_payloads', 'Interaction')).toHaveLength(1);

    const form = findForm(welcome.html, '/profile');
    watch.clear();
    const skipped = await browser.request(new URL(`${form.action}/skip`, welcome.url).href, { form: form.hidden });
    expect(skipped.status).toBe(303);
    expect(watch.reads('oidc_payloads', 'Interaction')).toHaveLength(1);
  });
});
