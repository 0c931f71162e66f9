import { describe, expect, it } from 'vitest';
import { SoftwareAuthenticator } from '../support/authenticator.ts';
import { HttpBrowser, type Page } from '../support/browser.ts';
import { authorizationRequest, exchange, uniqueEmail, serveForTests, type AppClient } from '../support/oidc-app.ts';
import { TEST_CLIENTS } from '../support/server.ts';

// Registering with a passkey and no password, over HTTP, with the in-process authenticator doing
// what the registration page's script and the browser do: fetch the options with the form's
// fields, make a discoverable credential, post the answer with the form. The account has no
// password, its passkey, its terms acceptances and its account.created event; it signs in with
// the passkey; and what every registration refuses is refused here too.

const TERMS = [{ id: 'tos', version: 1, title: { en: 'Terms of service' }, url: 'https://example.com/terms' }];
const apps = serveForTests({ terms: TERMS }, { spa: 'spa' });
const db = () => apps.server.parley.storage.db;

async function registerPage(app: AppClient, browser = new HttpBrowser()) {
  const request = await authorizationRequest(app);
  const login = await browser.navigate(request.url);
  const link = /href="([^"]*\/register)"/.exec(login.html)![1]!;
  return { browser, request, page: await browser.navigate(new URL(link, login.url).href) };
}

/** The passkey way of a registration page: where its script fetches options, and where it posts. */
function passkeyWay(page: Page) {
  const match = /data-passkey-account data-options="([^"]+)" data-action="([^"]+)"/.exec(page.html);
  if (!match) throw new Error('no passkey way on the registration page');
  return {
    csrf: /name="csrf" value="([^"]+)"/.exec(page.html)![1]!,
    options: new URL(match[1]!, page.url).href,
    action: new URL(match[2]!, page.url).href,
  };
}

type Fields = Record<string, string | string[]>;

/** What the script does: the options for the form's fields, answered by the authenticator. */
async function makePasskey(browser: HttpBrowser, page: Page, authenticator: SoftwareAuthenticator, fields: Fields) {
  const way = passkeyWay(page);
  const response = await browser.request(way.options, { form: { csrf: way.csrf, ...fields } });
  expect(response.status).toBe(200);
  const options = await response.json() as Record<string, unknown>;
  return JSON.stringify(authenticator.register(options as never, apps.server.issuer));
}

async function post(browser: HttpBrowser, page: Page, fields: Fields, stopAt?: string) {
  const way = passkeyWay(page);
  return browser.navigate(way.action, { form: { csrf: way.csrf, ...fields } }, stopAt);
}

const accountOf = (email: string) => db().selectFrom('accounts').selectAll().where('email', '=', email).executeTakeFirst();

describe('registering with a passkey and no password', () => {
  it('creates the account with its passkey and no password, signs it in with amr of a passkey, and it signs in again with it', async () => {
    const email = uniqueEmail('pkreg');
    const authenticator = new SoftwareAuthenticator();
    const { browser, request, page } = await registerPage(apps.spa);
    expect(page.html).toContain('Or create an account with a passkey, no password');
    const fields = { email, name: 'Pat', terms: ['tos'] };
    const response = await makePasskey(browser, page, authenticator, fields);
    const callback = await post(browser, page, { ...fields, response }, apps.spa.redirectUri);
    expect(callback.url.startsWith(apps.spa.redirectUri), callback.html.slice(0, 400)).toBe(true);
    const claims = (await exchange(apps.spa, request, callback.url)).claims()!;
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);

    const account = (await accountOf(email))!;
    expect(account.id).toBe(claims.sub);
    expect(account.password_hash).toBeNull();
    expect(account.name).toBe('Pat');
    const credentials = await db().selectFrom('webauthn_credentials').selectAll().where('account_id', '=', account.id).execute();
    expect(credentials).toHaveLength(1);
    const accepted = await db().selectFrom('terms_acceptances').select('document_id').where('subject', '=', account.id).execute();
    expect(accepted.map((a) => a.document_id)).toEqual(['tos']);
    const events = await db().selectFrom('outbox_events').select('type').where('account_id', '=', account.id).execute();
    expect(events.map((e) => e.type)).toContain('account.created');

    // Ways to sign in: no password, and its only passkey cannot be removed.
    const security = await browser.navigate(`${apps.server.issuer}/account/security`);
    const shown = security.html.replace(/[\u2068\u2069]/g, '');
    expect(shown).toContain('Your account has no password. You can set one.');
    const securityCsrf = /name="csrf" value="([^"]+)"/.exec(security.html)![1]!;
    const removal = await browser.navigate(`${apps.server.issuer}/account/security/passkeys/${credentials[0]!.id}/remove`, { form: { csrf: securityCsrf } });
    expect(removal.status).toBe(409);
    expect(removal.html.replace(/[\u2068\u2069]/g, '')).toContain('This is your only way to sign in.');
    expect(await db().selectFrom('webauthn_credentials').select('id').where('account_id', '=', account.id).execute()).toHaveLength(1);

    // Signing in again: the passkey names the new account (its user handle is the account id).
    const again = new HttpBrowser();
    const second = await authorizationRequest(apps.spa);
    const login = await again.navigate(second.url);
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.html)![1]!;
    const optionsUrl = /data-options="([^"]+\/passkey\/options)"/.exec(login.html)![1]!;
    const options = await (await again.request(new URL(optionsUrl, login.url).href, { form: { csrf } })).json() as Record<string, unknown>;
    const signed = await again.submit(login, '/passkey', { response: JSON.stringify(authenticator.authenticate(options as never, apps.server.issuer)) }, apps.spa.redirectUri);
    const claimsAgain = (await exchange(apps.spa, second, signed.url)).claims()!;
    expect(claimsAgain.sub).toBe(account.id);
    expect(claimsAgain.amr).toEqual(['hwk', 'user', 'mfa']);
  });

  it('makes no passkey for a form without its terms ticked', async () => {
    const email = uniqueEmail('pknoterms');
    const { browser, page } = await registerPage(apps.spa);
    const way = passkeyWay(page);
    const refused = await browser.request(way.options, { form: { csrf: way.csrf, email } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'form_incomplete', fields: ['terms'] });
    const given = await browser.request(way.options, { form: { csrf: way.csrf, email, terms: ['tos'] } });
    expect(given.status).toBe(200);
  });

  it('asks for the terms as every registration does, and a challenge answers once', async () => {
    const email = uniqueEmail('pkterms');
    const { browser, page } = await registerPage(apps.spa);
    // Ticked when the passkey was made, not in the form posted with it: refused all the same.
    const response = await makePasskey(browser, page, new SoftwareAuthenticator(), { email, terms: ['tos'] });
    const refused = await post(browser, page, { email, response });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('id="terms--error"');
    expect(await accountOf(email)).toBeUndefined();

    // The same answer again, terms ticked: its challenge was used up by the refused post.
    const replayed = await post(browser, page, { email, terms: ['tos'], response });
    expect(replayed.status).toBe(401);
    expect(await accountOf(email)).toBeUndefined();
  });

  it('refuses a missing CSRF token and a challenge handed to another sign-in', async () => {
    const email = uniqueEmail('pkcsrf');
    const { browser, page } = await registerPage(apps.spa);
    const way = passkeyWay(page);
    expect((await browser.request(way.options, { form: { email } })).status).toBe(403);
    const response = await makePasskey(browser, page, new SoftwareAuthenticator(), { email, terms: ['tos'] });
    expect((await browser.request(way.action, { form: { email, terms: ['tos'], response } })).status).toBe(403);

    // Another sign-in: the answer was to the first one's challenge.
    const other = await registerPage(apps.spa);
    const refused = await post(other.browser, other.page, { email, terms: ['tos'], response });
    expect(refused.status).toBe(401);
    expect(await accountOf(email)).toBeUndefined();
    // Its own sign-in still takes it.
    const callback = await post(browser, page, { email, terms: ['tos'], response }, apps.spa.redirectUri);
    expect(callback.url.startsWith(apps.spa.redirectUri)).toBe(true);
  });

  it('answers a taken address as the password registration does, and stores no passkey', async () => {
    const email = uniqueEmail('pktaken');
    const first = new HttpBrowser();
    const login = await first.navigate((await authorizationRequest(apps.spa)).url);
    await first.submit(await first.navigate(new URL(/href="([^"]*\/register)"/.exec(login.html)![1]!, login.url).href), '/register',
      { email, password: 'a long enough passphrase 1', name: 'Owner', terms: ['tos'] }, apps.spa.redirectUri);
    const owner = (await accountOf(email))!;

    const byPassword = await registerPage(apps.spa);
    const passwordAnswer = await byPassword.browser.submit(byPassword.page, '/register', { email, password: 'another long passphrase 2', terms: ['tos'] });
    const byPasskey = await registerPage(apps.spa);
    const response = await makePasskey(byPasskey.browser, byPasskey.page, new SoftwareAuthenticator(), { email, terms: ['tos'] });
    const passkeyAnswer = await post(byPasskey.browser, byPasskey.page, { email, terms: ['tos'], response });
    expect(passkeyAnswer.status).toBe(passwordAnswer.status);
    const message = (page: Page) => /id="email-error">([\s\S]*?)<\/p>/.exec(page.html)?.[1];
    expect(message(passkeyAnswer)).toBeDefined();
    expect(message(passkeyAnswer)).toBe(message(passwordAnswer));
    expect(await db().selectFrom('webauthn_credentials').select('id').where('account_id', '=', owner.id).execute()).toEqual([]);
    expect((await accountOf(email))!.password_hash).not.toBeNull();
  });
});

describe('registering with a passkey where the address must be verified first', () => {
  const verifying = serveForTests({ accounts: { require_verified_email: true } }, { spa: 'spa' });

  it('waits on the emailed link like a password registration, then signs in with amr of the passkey', async () => {
    const email = uniqueEmail('pkverify');
    const authenticator = new SoftwareAuthenticator({ synced: true });
    const browser = new HttpBrowser();
    const request = await authorizationRequest(verifying.spa);
    const login = await browser.navigate(request.url);
    const page = await browser.navigate(new URL(/href="([^"]*\/register)"/.exec(login.html)![1]!, login.url).href);
    const way = passkeyWay(page);
    const options = await (await browser.request(way.options, { form: { csrf: way.csrf, email } })).json() as Record<string, unknown>;
    const response = JSON.stringify(authenticator.register(options as never, verifying.server.issuer));
    const waiting = await browser.navigate(way.action, { form: { csrf: way.csrf, email, response } }, verifying.spa.redirectUri);
    expect(waiting.status).toBe(200);
    expect(waiting.html).toContain(email);

    const link = (await verifying.server.linksSentTo(email)).find((l) => l.includes('/verify-email'))!;
    expect((await new HttpBrowser().navigate(link)).status).toBe(200);
    const done = await browser.submit(waiting, '/continue', {}, verifying.spa.redirectUri);
    const claims = (await exchange(verifying.spa, request, done.url)).claims()!;
    expect(claims.amr).toEqual(['swk', 'user', 'mfa']);
    const account = (await verifying.server.parley.storage.db.selectFrom('accounts').selectAll().where('email', '=', email).executeTakeFirst())!;
    expect(account.password_hash).toBeNull();
    expect(claims.sub).toBe(account.id);
  });
});

describe('registering with a passkey behind the age gate', () => {
  const gated = serveForTests((issuer) => ({
    registration: { minimum_age: 16, birthdate_purpose: 'age_check' },
    purposes: { age_check: { legal_basis: 'legal_obligation', version: 1, title: { en: 'Age check' } } },
    clients: TEST_CLIENTS(issuer),
  }), { spa: 'spa' });

  const yearsAgo = (years: number) => {
    const now = gated.server.clock.now();
    return new Date(Date.UTC(now.getUTCFullYear() - years, now.getUTCMonth(), now.getUTCDate())).toISOString().slice(0, 10);
  };

  async function attempt(email: string, birthdate: string) {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(gated.spa);
    const login = await browser.navigate(request.url);
    const page = await browser.navigate(new URL(/href="([^"]*\/register)"/.exec(login.html)![1]!, login.url).href);
    const way = passkeyWay(page);
    const options = await (await browser.request(way.options, { form: { csrf: way.csrf, email, birthdate } })).json() as Record<string, unknown>;
    const response = JSON.stringify(new SoftwareAuthenticator().register(options as never, gated.server.issuer));
    return browser.navigate(way.action, { form: { csrf: way.csrf, email, birthdate, response } }, gated.spa.redirectUri);
  }

  it('records the date of birth with the account, and turns away someone too young with nothing stored', async () => {
    const adult = uniqueEmail('pkadult');
    const done = await attempt(adult, yearsAgo(30));
    expect(done.url.startsWith(gated.spa.redirectUri), done.html.slice(0, 300)).toBe(true);
    const account = (await gated.server.parley.storage.db.selectFrom('accounts').select('id').where('email', '=', adult).executeTakeFirst())!;
    const answers = await gated.server.parley.storage.db.selectFrom('answers').select(['value', 'purpose']).where('account_id', '=', account.id).execute();
    expect(answers).toHaveLength(1);
    expect(answers[0]!.purpose).toBe('age_check');

    const child = uniqueEmail('pkchild');
    const refused = await attempt(child, yearsAgo(10));
    expect(refused.status).toBe(403);

    // A date that is no date gets no passkey; one under the minimum does, for the post to answer kindly.
    const browser = new HttpBrowser();
    const login = await browser.navigate((await authorizationRequest(gated.spa)).url);
    const way = passkeyWay(await browser.navigate(new URL(/href="([^"]*\/register)"/.exec(login.html)![1]!, login.url).href));
    const noDate = await browser.request(way.options, { form: { csrf: way.csrf, email: uniqueEmail('pknodate'), birthdate: '2001-02-30' } });
    expect(noDate.status).toBe(400);
    expect(await noDate.json()).toEqual({ error: 'form_incomplete', fields: ['birthdate'] });
    expect(await gated.server.parley.storage.db.selectFrom('accounts').select('id').where('email', '=', child).execute()).toEqual([]);
  });
});
