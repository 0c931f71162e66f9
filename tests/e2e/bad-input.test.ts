import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { HttpBrowser, type Page } from '../support/browser.ts';
import { appClient, authorizationRequest, PASSWORD, register, signIn, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Input that used to answer 500 or make look-alike accounts, each refused as the user's mistake
// with a message that says what is wrong, and with nothing stored. (The property test in
// input-fuzz.test.ts throws generated input at every form; these are the cases found by hand.)

const messages = (locale: string) => JSON.parse(readFileSync(new URL(`../../src/views/locales/${locale}.json`, import.meta.url), 'utf8')) as Record<string, string>;
const EN = messages('en');

let server: TestServer;
let app: AppClient;
let spa: AppClient;

beforeAll(async () => {
  server = await startTestServer();
  app = await appClient(server);
  spa = await appClient(server, 'spa');
});
afterAll(async () => { await server?.close(); });

const db = () => server.parley.storage.db;
const marker = () => `m${crypto.randomUUID().replaceAll('-', '')}`;

/** Whether any stored OIDC artifact (interaction, session, grant) holds this text. */
async function storedAnywhere(text: string): Promise<boolean> {
  const rows = await db().selectFrom('oidc_payloads').select('id').where(sql<boolean>`strpos(payload::text, ${text}) > 0`).execute();
  return rows.length > 0;
}

async function throttled(text: string): Promise<boolean> {
  return (await db().selectFrom('login_throttle').select('key').where(sql<boolean>`strpos(key, ${text}) > 0`).execute()).length > 0;
}

async function loginPage(browser = new HttpBrowser()): Promise<{ browser: HttpBrowser; page: Page }> {
  return { browser, page: await browser.navigate((await authorizationRequest(app)).url) };
}

describe('an authorization request', () => {
  it.each(['state', 'nonce', 'login_hint', 'ui_locales', 'acr_values', 'claims_locales'])(
    'with a NUL byte in %s is sent back to the app as invalid_request, and nothing is stored',
    async (param) => {
      const tag = marker();
      const request = await authorizationRequest(app, { [param]: `${tag}\u0000x`, ...(param === 'state' ? {} : { state: tag }) });
      const response = await new HttpBrowser().request(request.url);
      expect(response.status).toBe(303);
      const location = new URL(response.headers.get('location')!);
      expect(location.href.startsWith(app.redirectUri)).toBe(true);
      expect(location.searchParams.get('error')).toBe('invalid_request');
      expect(location.searchParams.get('error_description')).toBe(`${param} must not contain control characters`);
      expect(await storedAnywhere(tag)).toBe(false);
    },
  );

  it('with a state longer than 2048 characters is refused the same way', async () => {
    const tag = marker();
    const request = await authorizationRequest(app, { state: `${tag}${'s'.repeat(2048)}` });
    const response = await new HttpBrowser().request(request.url);
    const location = new URL(response.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toBe('state is too long: at most 2048 characters');
    expect(await storedAnywhere(tag)).toBe(false);
  });

  it('with a NUL byte in client_id or an unregistered redirect_uri is refused on our own error page, not redirected', async () => {
    const request = await authorizationRequest(app);
    for (const [param, value] of [['client_id', 'web-app\u0000'], ['redirect_uri', `${app.redirectUri}\u0000`]] as const) {
      const url = new URL(request.url);
      url.searchParams.set(param, value);
      if (param === 'redirect_uri') url.searchParams.set('state', 'x\u0000');
      const response = await new HttpBrowser().request(url.href);
      expect(response.status, param).toBe(400);
      expect(response.headers.get('location'), param).toBeNull();
      expect(await response.text(), param).toContain('The app sent an invalid sign-in request');
    }
  });
});

describe('a logout request', () => {
  it('with a NUL byte in state is refused on the error page, and the session stays as it was', async () => {
    const browser = new HttpBrowser({ accept: 'text/html' });
    await register(browser, await browser.navigate((await authorizationRequest(spa)).url), uniqueEmail('leaving'), spa.redirectUri);
    for (const state of ['a\u0000b', 's'.repeat(2049)]) {
      const refused = await browser.navigate(`${server.issuer}/session/end?${new URLSearchParams({ client_id: 'spa', state })}`);
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('The app sent an invalid sign-in request');
    }
    const json = await new HttpBrowser().request(`${server.issuer}/session/end?state=%00`);
    expect(json.status).toBe(400);
    expect(await json.json()).toEqual({ error: 'invalid_request', error_description: 'state must not contain control characters' });
    // Still signed in: the preference center opens without a sign-in.
    expect((await browser.navigate(`${server.issuer}/account`)).url).toBe(`${server.issuer}/account`);
  });
});

describe('signing in', () => {
  it('with a NUL byte in the address says the address is not one, and counts nothing', async () => {
    const tag = marker();
    const { browser, page } = await loginPage();
    const refused = await signIn(browser, page, `${tag}\u0000@example.com`, app.redirectUri);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain(EN['error.invalid_email']);
    expect(await throttled(tag)).toBe(false);
  });

  it('with an address of 1,500 characters says it is too long, and counts nothing', async () => {
    const tag = marker();
    // Letters of three octets each, unlike each other: nothing a database could compress away.
    const local = Array.from({ length: 1500 }, (_, i) => String.fromCodePoint(0x4e00 + ((i * 7919) % 20000))).join('');
    const { browser, page } = await loginPage();
    const refused = await signIn(browser, page, `${tag}${local}@example.com`, app.redirectUri);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('This email address is too long: an address has at most 254 characters');
    expect(await throttled(tag)).toBe(false);
  });

  it('with an invisible character in the address says so, and counts nothing', async () => {
    const email = uniqueEmail('visible');
    const { browser, page } = await loginPage();
    await register(browser, page, email, app.redirectUri);
    for (const invisible of ['\u200B', '\u00AD', '\u200D', '\u202E']) {
      const other = await loginPage();
      const refused = await signIn(other.browser, other.page, email.replace('@', `${invisible}@`), app.redirectUri);
      expect(refused.status).toBe(400);
      expect(refused.html).toContain(EN['error.email_invisible_characters']);
    }
    expect(await throttled(email.split('@')[0]!)).toBe(false);
  });
});

describe('registering', () => {
  async function registrationForm(headers: Record<string, string> = {}) {
    const browser = new HttpBrowser(headers);
    const login = await browser.navigate((await authorizationRequest(spa)).url);
    const link = /href="([^"]*\/register)"/.exec(login.html)![1]!;
    return { browser, form: await browser.navigate(new URL(link, login.url).href) };
  }

  const accountsWith = async (email: string) => db().selectFrom('accounts').select(['id', 'name']).where('email', '=', email).execute();

  it.each([
    ['a zero-width space', '\u200B'], ['a soft hyphen', '\u00AD'], ['a zero-width joiner', '\u200D'], ['a right-to-left override', '\u202E'],
  ])('refuses a look-alike address with %s, in every language', async (_name, invisible) => {
    const email = uniqueEmail('look');
    const { browser, form } = await registrationForm();
    await browser.submit(form, '/register', { email, password: PASSWORD, name: 'Original' }, spa.redirectUri);
    const lookalike = email.replace('@', `${invisible}@`);
    for (const locale of ['en', 'ar', 'ja']) {
      const { browser: other, form: otherForm } = await registrationForm({ 'accept-language': locale });
      const refused = await other.submit(otherForm, '/register', { email: lookalike, password: PASSWORD, name: 'Copy' }, spa.redirectUri);
      expect(refused.status, locale).toBe(400);
      expect(refused.html, locale).toContain(messages(locale)['error.email_invisible_characters']);
      expect(refused.html, locale).toMatch(/id="email"[^>]*aria-invalid="true"/);
    }
    expect(await accountsWith(lookalike.normalize('NFKC').toLowerCase())).toEqual([]);
    expect(await accountsWith(email)).toHaveLength(1);
  });

  it.each([
    ['a NUL byte', 'Ann\u0000Lee', EN['error.name_invalid_characters']!],
    ['a right-to-left override', 'Ann\u202Eeel', EN['error.name_invalid_characters']!],
    ['a line break', 'Ann\nLee', EN['error.name_invalid_characters']!],
    ['201 characters', 'n'.repeat(201), 'Use at most 200 characters for your name.'],
  ])('refuses a name with %s beside the name field, and creates nothing', async (_what, name, message) => {
    const email = uniqueEmail('named');
    const { browser, form } = await registrationForm();
    const refused = await browser.submit(form, '/register', { email, password: PASSWORD, name }, spa.redirectUri);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain(message);
    expect(refused.html).toMatch(/id="name"[^>]*aria-invalid="true"/);
    expect(await accountsWith(email)).toEqual([]);
  });

  it('keeps the joiners and marks a name needs', async () => {
    for (const name of ['نیما‌رضایی', '👩‍💻 Ada', 'Ali \u200Fعلي']) {
      const email = uniqueEmail('joined');
      const { browser, form } = await registrationForm();
      const done = await browser.submit(form, '/register', { email, password: PASSWORD, name }, spa.redirectUri);
      expect(done.url.startsWith(spa.redirectUri), name).toBe(true);
      expect(await accountsWith(email)).toEqual([expect.objectContaining({ name })]);
    }
  });
});

describe('asking for a password reset', () => {
  it('with a NUL byte or an invisible character in the address says what is wrong', async () => {
    for (const [email, key] of [['a\u0000b@example.com', 'error.invalid_email'], ['ann\u200B@example.com', 'error.email_invisible_characters']] as const) {
      const browser = new HttpBrowser();
      const refused = await browser.submit(await browser.navigate(`${server.issuer}/forgot-password`), '/forgot-password', { email });
      expect(refused.status, key).toBe(400);
      expect(refused.html, key).toContain(EN[key]);
    }
  });
});

describe('changing the email address', () => {
  it('to a look-alike with an invisible character is refused with the message', async () => {
    const browser = new HttpBrowser();
    const email = uniqueEmail('mover');
    await register(browser, await browser.navigate((await authorizationRequest(spa)).url), email, spa.redirectUri);
    const page = await browser.navigate(`${server.issuer}/account/email`);
    const refused = await browser.submit(page, '/account/email', { new_email: `other\u2066@example.com` });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain(EN['error.email_invisible_characters']);
    expect(await db().selectFrom('email_tokens').innerJoin('accounts', 'accounts.id', 'email_tokens.account_id')
      .select('purpose').where('accounts.email', '=', email).where('purpose', '=', 'change_email').execute()).toEqual([]);
  });
});
