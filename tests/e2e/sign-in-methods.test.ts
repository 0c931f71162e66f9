import { randomUUID } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createPasskeys } from '../../src/accounts/passkeys.ts';
import { readMailbox } from '../../src/mail/mailer.ts';
import { SoftwareAuthenticator } from '../support/authenticator.ts';
import { HttpBrowser, type FormFields, type Page } from '../support/browser.ts';
import { authorizationRequest, exchange, register, serveForTests, signIn, uniqueEmail } from '../support/oidc-app.ts';

// /account/security, "Ways to sign in", over HTTP: the authenticator app set up with a QR code
// and its first code, recovery codes made anew, the password set and changed, passkeys listed,
// renamed and removed (never the last way to sign in); every change needs a recent sign-in and
// the CSRF token, and is told to the account holder by mail and downstream by an event.

const apps = serveForTests({}, { spa: 'spa' });
const PAGE = '/account/security';
const text = (page: Page) => page.html.replace(/[\u2068\u2069]/g, '');
const appCode = (secret: string) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: apps.server.clock.now().getTime() });

interface User { browser: HttpBrowser; email: string; sub: string }

const CHROME_LINUX = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const SAFARI_IOS = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

async function newUser(browser = new HttpBrowser()): Promise<User> {
  const email = uniqueEmail('methods');
  const request = await authorizationRequest(apps.spa);
  const callback = await register(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
  return { browser, email, sub: (await exchange(apps.spa, request, callback.url)).claims()!.sub };
}

async function securityPage(user: User): Promise<Page> {
  const page = await user.browser.navigate(`${apps.server.issuer}${PAGE}`);
  expect(page.url).toBe(`${apps.server.issuer}${PAGE}`);
  return page;
}

const act = async (user: User, action: string, fields: FormFields = {}) => user.browser.submit(await securityPage(user), action, fields);

/** A post the page offers no form for (a crafted one), with the user's CSRF token. */
async function craft(user: User, action: string, fields: FormFields = {}) {
  const csrf = /name="csrf" value="([^"]+)"/.exec((await securityPage(user)).html)![1]!;
  return user.browser.navigate(`${apps.server.issuer}${action}`, { form: { csrf, ...fields } });
}

const changesOf = async (sub: string) => (await apps.server.parley.storage.db.selectFrom('outbox_events').select('payload')
  .where('account_id', '=', sub).where('type', '=', 'account.security_changed').orderBy('seq').execute())
  .map((row) => (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload).change as string);

async function mailsTo(email: string) {
  await apps.server.deliverMail();
  return (await readMailbox(apps.server.mailboxDir)).filter((m) => m.to === email && m.subject === 'A change to how you sign in').map((m) => m.text.replace(/[\u2068\u2069]/g, ''));
}

async function setUpApp(user: User) {
  const qr = await act(user, `${PAGE}/totp`);
  expect(qr.html).toMatch(/<img class="qr" src="data:image\/svg\+xml;base64,/);
  const secret = /<code dir="ltr">([A-Z2-7]+)<\/code>/.exec(qr.html)![1]!;
  const codes = await user.browser.submit(qr, '/totp/confirm', { code: appCode(secret) });
  return { secret, codes: [...codes.html.matchAll(/<li><code>([0-9a-z-]{11})<\/code><\/li>/g)].map((m) => m[1]!) };
}

describe('ways to sign in', () => {
  it('is linked from the account page and shows what the account has', async () => {
    const user = await newUser();
    const account = await user.browser.navigate(`${apps.server.issuer}/account`);
    expect(account.html).toContain(`<a href="${PAGE}">Ways to sign in</a>`);
    const page = await securityPage(user);
    expect(text(page)).toContain('You can sign in with your password.');
    expect(text(page)).toContain('Set up an authenticator app');
    expect(text(page)).toContain('No passkeys yet.');
  });

  it('sets up an authenticator app with its first code, shows ten recovery codes once, and tells the owner', async () => {
    const user = await newUser();
    const qr = await act(user, `${PAGE}/totp`);
    const wrong = await user.browser.submit(qr, '/totp/confirm', { code: '12345' });
    expect(wrong.status).toBe(401);
    expect(await changesOf(user.sub)).toEqual([]);
    const { secret, codes } = await setUpApp(user);
    expect(codes).toHaveLength(10);
    expect(text(await securityPage(user))).toContain('10 unused codes left.');
    expect(await changesOf(user.sub)).toEqual(['totp_added']);
    const [mail] = await mailsTo(user.email);
    expect(mail).toContain('On your account just now: an authenticator app was set up.');
    expect(mail).toContain(`${apps.server.issuer}/account/security`);

    // New codes replace the old; the sign-in takes a new one and not an old one.
    apps.server.clock.advance(30);
    const fresh = await act(user, `${PAGE}/recovery-codes`);
    const newCodes = [...fresh.html.matchAll(/<li><code>([0-9a-z-]{11})<\/code><\/li>/g)].map((m) => m[1]!);
    expect(newCodes).toHaveLength(10);
    expect(newCodes).not.toContain(codes[0]);
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const mfa = await signIn(browser, await browser.navigate(request.url), user.email, apps.spa.redirectUri);
    expect((await browser.submit(mfa, '/mfa/recovery', { recovery_code: codes[0]! })).status).toBe(401);
    const done = await browser.submit(mfa, '/mfa/recovery', { recovery_code: newCodes[0]! }, apps.spa.redirectUri);
    expect(done.url.startsWith(apps.spa.redirectUri)).toBe(true);
    expect(await changesOf(user.sub)).toEqual(['totp_added', 'recovery_codes_generated', 'recovery_code_used']);
    expect((await mailsTo(user.email)).at(-1)).toContain('a recovery code was used to sign in');

    // Removing the app: the next sign-in asks for no code.
    const removed = await act(user, `${PAGE}/totp/remove`);
    expect(text(removed)).toContain('The authenticator app was removed.');
    const again = new HttpBrowser();
    const next = await authorizationRequest(apps.spa);
    expect((await signIn(again, await again.navigate(next.url), user.email, apps.spa.redirectUri)).url.startsWith(apps.spa.redirectUri)).toBe(true);
    expect((await changesOf(user.sub)).at(-1)).toBe('totp_removed');
    void secret;
  });

  it('changes the password under the password rules, and tells the owner', async () => {
    const user = await newUser();
    const short = await act(user, `${PAGE}/password`, { new_password: 'short' });
    expect(short.status).toBe(400);
    expect(short.html).toContain('id="new_password-error"');
    const saved = await act(user, `${PAGE}/password`, { new_password: 'a whole new passphrase here' });
    expect(text(saved)).toContain('Your password was saved.');
    expect(await changesOf(user.sub)).toEqual(['password_changed']);
    const browser = new HttpBrowser();
    const request = await authorizationRequest(apps.spa);
    const callback = await signIn(browser, await browser.navigate(request.url), user.email, apps.spa.redirectUri, 'a whole new passphrase here');
    expect(callback.url.startsWith(apps.spa.redirectUri)).toBe(true);
  });

  it('needs a recent sign-in and the CSRF token for every change', async () => {
    const user = await newUser();
    const page = await securityPage(user);
    const action = `${apps.server.issuer}${PAGE}/totp`;
    expect((await user.browser.request(action, { form: { csrf: 'forged' } })).status).toBe(403);
    apps.server.clock.advance(apps.server.config.account.recent_sign_in + 1);
    const stale = await user.browser.submit(page, `${PAGE}/password`, { new_password: 'a whole new passphrase here' });
    expect(stale.status).toBe(403);
    expect(text(stale)).toContain('To change how you sign in, sign in again first.');
    expect(stale.html.replaceAll('&#x3D;', '=')).toContain('/account/login?reauth=1&amp;return=%2Faccount%2Fsecurity');
    expect(await changesOf(user.sub)).toEqual([]);
  });

  it('lists passkeys (name, added, last used, synced or device-bound), renames and removes them, never the last way to sign in', async () => {
    const user = await newUser();
    const passkeys = createPasskeys({ db: apps.server.parley.storage.db, config: apps.server.config, clock: apps.server.clock.now, logger: pino({ level: 'silent' }) });
    const add = async (authenticator: SoftwareAuthenticator, name: string) => {
      const binding = `session-${randomUUID()}`;
      const options = await passkeys.registrationOptions({ binding, user: { id: user.sub, name: user.email } });
      return passkeys.register({ binding, accountId: user.sub, response: authenticator.register(options, apps.server.issuer), name });
    };
    const phone = await add(new SoftwareAuthenticator({ synced: true }), 'Phone');
    const key = await add(new SoftwareAuthenticator(), 'Security key');
    const page = text(await securityPage(user));
    expect(page).toContain('Phone');
    expect(page).toContain('Synced between your devices');
    expect(page).toContain('On this one device only');
    expect(page).toContain('Not yet');

    const renamed = await act(user, `${PAGE}/passkeys/${phone.id}/rename`, { name: 'My phone' });
    expect(text(renamed)).toContain('The passkey was renamed.');
    expect(text(renamed)).toContain('My phone');
    const removed = await act(user, `${PAGE}/passkeys/${key.id}/remove`);
    expect(text(removed)).toContain('The passkey was removed.');
    expect(text(removed)).not.toContain('Security key');

    // Without a password the last passkey is the last way to sign in: no button, and a crafted post is refused.
    await apps.server.parley.storage.db.updateTable('accounts').set({ password_hash: null }).where('id', '=', user.sub).execute();
    const last = await securityPage(user);
    expect(text(last)).toContain('This is your only way to sign in');
    const refused = await craft(user, `${PAGE}/passkeys/${phone.id}/remove`);
    expect(refused.status).toBe(409);
    expect((await passkeys.list(user.sub)).map((p) => p.name)).toEqual(['My phone']);
    // A passkey of another account names nothing here.
    const other = await newUser();
    expect((await craft(other, `${PAGE}/passkeys/${phone.id}/remove`)).status).toBe(401);
    expect(await changesOf(user.sub)).toEqual(['passkey_removed']);
  });

  it('lists the signed-in sessions (browser, system, network, this device) and signs out one, or everywhere else', async () => {
    const user = await newUser(new HttpBrowser({ 'user-agent': CHROME_LINUX }));
    const elsewhere = async (agent: string) => {
      const browser = new HttpBrowser({ 'user-agent': agent });
      const request = await authorizationRequest(apps.spa);
      await signIn(browser, await browser.navigate(request.url), user.email, apps.spa.redirectUri);
      return browser;
    };
    const phone = await elsewhere(SAFARI_IOS);
    const tablet = await elsewhere(SAFARI_IOS);
    const page = text(await securityPage(user));
    expect(page).toContain('Chrome on Linux <span class="muted">(this device)</span>');
    expect(page.match(/Safari on iOS/g)).toHaveLength(2);
    expect(page).toContain('127.0.0.0/24');

    // One of them: its next visit finds no session.
    const listed = await securityPage(user);
    const uids = [...listed.html.matchAll(/name="session" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(uids).toHaveLength(2);
    const ended = await user.browser.submit(listed, '/sessions/sign-out', { session: uids[0]! });
    expect(text(ended)).toContain('That session was signed out.');
    const stillIn = await Promise.all([phone, tablet].map(async (b) => (await b.request(`${apps.server.issuer}/account`)).status));
    expect(stillIn.sort()).toEqual([200, 303]);

    const others = await act(user, '/account/security/sessions/sign-out-others');
    expect(text(others)).toContain('You were signed out everywhere else');
    for (const b of [phone, tablet]) expect((await b.request(`${apps.server.issuer}/account`)).status).toBe(303);
    expect((await user.browser.request(`${apps.server.issuer}/account`)).status).toBe(200);
    const db = apps.server.parley.storage.db;
    expect(await db.selectFrom('oidc_payloads').select('model').where('account_id', '=', user.sub).where('model', '!=', 'Session').execute()).toEqual([]);
    const events = await db.selectFrom('outbox_events').select('payload').where('account_id', '=', user.sub).where('type', '=', 'session.revoked').orderBy('seq').execute();
    expect(events.map((e) => (typeof e.payload === 'string' ? JSON.parse(e.payload) : e.payload))).toEqual([
      expect.objectContaining({ scope: 'one', sessions: 1 }), expect.objectContaining({ scope: 'all_others', sessions: 1 }),
    ]);
  });

  it('adds a passkey from the page\'s form; the same answer again, or without the token, is refused', async () => {
    const user = await newUser();
    const page = await securityPage(user);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    const response = await user.browser.request(`${apps.server.issuer}${PAGE}/passkeys/options`, { form: { csrf } });
    expect(response.status).toBe(200);
    const created = JSON.stringify(new SoftwareAuthenticator().register(await response.json() as never, apps.server.issuer));
    expect((await user.browser.request(`${apps.server.issuer}${PAGE}/passkeys`, { form: { response: created } })).status).toBe(403);
    const added = await user.browser.submit(page, `${PAGE}/passkeys`, { response: created, name: 'Laptop' });
    expect(text(added)).toContain('The passkey was added.');
    const replayed = await craft(user, `${PAGE}/passkeys`, { response: created, name: 'Again' });
    expect(replayed.status).toBe(401);
    expect(await changesOf(user.sub)).toEqual(['passkey_added']);
  });
});
