import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createPasskeys } from '../../src/accounts/passkeys.ts';
import { SoftwareAuthenticator } from '../support/authenticator.ts';
import { findForm, HttpBrowser, type Page } from '../support/browser.ts';
import { authorizationRequest, exchange, register, serveForTests, signIn, uniqueEmail } from '../support/oidc-app.ts';
import { TEST_CLIENTS } from '../support/server.ts';

// The passkey forms of the sign-in over HTTP, with the in-process authenticator answering the
// challenges as a browser's would: a sign-in, a second factor, and what they refuse (no CSRF
// token, a challenge answered twice, another account's passkey at the second factor).

const apps = serveForTests((issuer) => ({
  clients: [...TEST_CLIENTS(issuer), { client_id: 'bank', name: 'Bank', first_party: true, mfa: 'required', redirect_uris: [`${issuer}/bank/callback`] }],
}), { spa: 'spa', bank: 'bank' });

async function userWithPasskey(synced = false) {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(apps.spa);
  const email = uniqueEmail('pk');
  const callback = await register(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
  const sub = (await exchange(apps.spa, request, callback.url)).claims()!.sub;
  const passkeys = createPasskeys({ db: apps.server.parley.storage.db, config: apps.server.config, clock: apps.server.clock.now, logger: pino({ level: 'silent' }) });
  const authenticator = new SoftwareAuthenticator({ synced });
  const binding = `account:${randomUUID()}`;
  const options = await passkeys.registrationOptions({ binding, user: { id: sub, name: email } });
  await passkeys.register({ binding, accountId: sub, response: authenticator.register(options, apps.server.issuer) });
  return { email, sub, authenticator };
}

/** What the page's script does: fetch the options with the form's token, let the authenticator answer. */
async function answer(browser: HttpBrowser, page: Page, authenticator: SoftwareAuthenticator, options: { ignoreAllowList?: boolean } = {}) {
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
  const optionsUrl = /data-options="([^"]+)"/.exec(page.html)![1]!;
  const response = await browser.request(new URL(optionsUrl, page.url).href, { form: { csrf } });
  expect(response.status).toBe(200);
  const requested = await response.json() as Record<string, unknown>;
  // A tampered browser would sign with any key it has, whatever the page allowed.
  return authenticator.authenticate((options.ignoreAllowList ? { ...requested, allowCredentials: [] } : requested) as never, apps.server.issuer);
}

describe('passkeys in the sign-in, over HTTP', () => {
  it('signs in with a passkey: acr phr, amr with hwk or swk, user and mfa', async () => {
    for (const synced of [false, true]) {
      const { authenticator, sub } = await userWithPasskey(synced);
      const browser = new HttpBrowser();
      const request = await authorizationRequest(apps.spa);
      const login = await browser.navigate(request.url);
      expect(login.html).toContain('autocomplete="username webauthn"');
      const callback = await browser.submit(login, '/passkey', { response: JSON.stringify(await answer(browser, login, authenticator)) }, apps.spa.redirectUri);
      const claims = (await exchange(apps.spa, request, callback.url)).claims()!;
      expect(claims.sub).toBe(sub);
      expect(claims.amr).toEqual([synced ? 'swk' : 'hwk', 'user', 'mfa']);
      expect(claims.acr).toBe('phr');
    }
  });

  it('refuses a post without the CSRF token, and a challenge answered twice', async () => {
    const { authenticator } = await userWithPasskey();
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const login = await browser.navigate(request.url);
    const options = /data-options="([^"]+)"/.exec(login.html)![1]!;
    expect((await browser.request(new URL(options, login.url).href, { method: 'POST', form: {} })).status).toBe(403);
    const signed = JSON.stringify(await answer(browser, login, authenticator));
    const action = new URL(/action="([^"]*\/passkey)"/.exec(login.html)![1]!, login.url).href;
    expect((await browser.request(action, { form: { response: signed } })).status).toBe(403);
    await browser.submit(login, '/passkey', { response: signed }, apps.spa.redirectUri);

    // The same answer in another sign-in: its challenge is spent (and was bound to the first).
    const other = new HttpBrowser();
    const page = await other.navigate((await authorizationRequest(apps.spa)).url);
    const replayed = await other.submit(page, '/passkey', { response: signed });
    expect(replayed.status).toBe(401);
    expect(replayed.html).toContain('This passkey could not be verified.');
  });

  it('is a second factor after the password, and only the account\'s own passkey will do', async () => {
    const alice = await userWithPasskey();
    const bob = await userWithPasskey();
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.bank);
    const mfa = await signIn(browser, await browser.navigate(request.url), alice.email, apps.bank.redirectUri);
    expect(mfa.html).toContain('Use your passkey');
    const refused = await browser.submit(mfa, '/passkey', { response: JSON.stringify(await answer(browser, mfa, bob.authenticator, { ignoreAllowList: true })) });
    expect(refused.status).toBe(401);
    const callback = await browser.submit(refused, '/passkey', { response: JSON.stringify(await answer(browser, refused, alice.authenticator)) }, apps.bank.redirectUri);
    const claims = (await exchange(apps.bank, request, callback.url)).claims()!;
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('phr');
  });
});

describe('"Sign in faster next time?" after a password sign-in', () => {
  const offering = serveForTests({ mfa: { passkeys: { offer: true } }, screensets: { dir: 'tests/fixtures/screensets-e2e' } }, { spa: 'spa' });

  /** "Not now" on the question screen (the profile form's button that posts to /profile/skip). */
  async function skipQuestions(browser: HttpBrowser, page: Page) {
    const form = findForm(page.html, '/profile');
    const skip = new URL(`${form.action.replaceAll('&amp;', '&')}/skip`, page.url).href;
    const next = await browser.navigate(skip, { form: form.hidden }, offering.spa.redirectUri);
    expect(next.url.startsWith(offering.spa.redirectUri), next.html.slice(0, 300)).toBe(true);
    return next;
  }

  async function passwordUser() {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(offering.spa);
    const email = uniqueEmail('offer');
    // Registering shows the welcome questions: no offer in the same sign-in.
    const welcome = await register(browser, await browser.navigate(request.url), email, offering.spa.redirectUri);
    const callback = await skipQuestions(browser, welcome);
    expect(callback.url.startsWith(offering.spa.redirectUri)).toBe(true);
    return { email, sub: (await exchange(offering.spa, request, callback.url)).claims()!.sub, browser };
  }

  async function passwordSignIn(email: string, browser = new HttpBrowser(), params: Record<string, string> = {}) {
    const request = await authorizationRequest(offering.spa, params);
    return { browser, request, page: await signIn(browser, await browser.navigate(request.url), email, offering.spa.redirectUri) };
  }

  it('offers a passkey once the password is typed; added, it is not offered again', async () => {
    const { email, sub } = await passwordUser();
    const { browser, request, page } = await passwordSignIn(email);
    expect(page.html).toContain('Sign in faster next time?');
    const authenticator = new SoftwareAuthenticator();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    const optionsUrl = new URL(/data-options="([^"]+)"/.exec(page.html)![1]!, page.url).href;
    const options = await (await browser.request(optionsUrl, { form: { csrf } })).json();
    const created = authenticator.register(options as never, offering.server.issuer);
    const callback = await browser.submit(page, '/passkey/register', { response: JSON.stringify(created), name: 'Phone' }, offering.spa.redirectUri);
    expect((await exchange(offering.spa, request, callback.url)).claims()!.amr).toEqual(['pwd']);
    const stored = await offering.server.parley.storage.db.selectFrom('webauthn_credentials').select('name').where('account_id', '=', sub).execute();
    expect(stored).toEqual([{ name: 'Phone' }]);
    expect((await passwordSignIn(email)).page.url.startsWith(offering.spa.redirectUri)).toBe(true);
  });

  it('"Not now" goes on to the app; the offer comes back after profiling.min_interval, never with prompt=none', async () => {
    const { email } = await passwordUser();
    const first = await passwordSignIn(email);
    expect(first.page.html).toContain('Sign in faster next time?');
    const callback = await first.browser.submit(first.page, '/passkey/offer/skip', {}, offering.spa.redirectUri);
    expect(callback.url.startsWith(offering.spa.redirectUri)).toBe(true);
    expect((await passwordSignIn(email)).page.url.startsWith(offering.spa.redirectUri)).toBe(true);

    offering.server.clock.advance(offering.server.config.profiling.min_interval + 1);
    // Signed in already, asked silently: no page, no offer.
    const silent = await authorizationRequest(offering.spa, { prompt: 'none' });
    const answer = await first.browser.navigate(silent.url, {}, offering.spa.redirectUri);
    expect(new URL(answer.url).searchParams.get('code')).toBeTruthy();
    // Due again, but this sign-in shows the questions that are due too: not both.
    const withQuestions = await passwordSignIn(email);
    expect(withQuestions.page.html).not.toContain('Sign in faster next time?');
    await skipQuestions(withQuestions.browser, withQuestions.page);
    expect((await passwordSignIn(email)).page.html).toContain('Sign in faster next time?');
  });
});

describe('a passkey set up as the second factor a client requires', () => {
  const strict = serveForTests((issuer) => ({
    mfa: { totp: { enabled: false } },
    clients: [...TEST_CLIENTS(issuer), { client_id: 'bank', name: 'Bank', first_party: true, mfa: 'required', redirect_uris: [`${issuer}/bank/callback`] }],
  }), { bank: 'bank' });

  it('offers "Add a passkey" before the app, and the new passkey is the second factor', async () => {
    const browser = new HttpBrowser();
    const request = await authorizationRequest(strict.bank);
    const enrol = await register(browser, await browser.navigate(request.url), uniqueEmail('strict'), strict.bank.redirectUri);
    expect(enrol.html.replace(/[\u2068\u2069]/g, '')).toContain('Bank asks for a second step');
    expect(enrol.html).not.toContain('/mfa/enrol');
    const csrf = /name="csrf" value="([^"]+)"/.exec(enrol.html)![1]!;
    const optionsUrl = new URL(/data-options="([^"]+)"/.exec(enrol.html)![1]!, enrol.url).href;
    const options = await (await browser.request(optionsUrl, { form: { csrf } })).json();
    const created = new SoftwareAuthenticator({ synced: true }).register(options as never, strict.server.issuer);
    const callback = await browser.submit(enrol, '/passkey/register', { response: JSON.stringify(created) }, strict.bank.redirectUri);
    const claims = (await exchange(strict.bank, request, callback.url)).claims()!;
    expect([claims.amr, claims.acr]).toEqual([['pwd', 'swk', 'user', 'mfa'], 'phr']);
  });
});
