import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.ts';
import { appClient, authorizationRequest, exchange, PASSWORD, uniqueEmail, type AppClient, type AuthorizationRequest } from '../support/oidc-app.ts';
import { captureLogs, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// Real WebAuthn in Chromium, with the DevTools protocol's virtual authenticator (resident keys,
// user verification): a passkey added in /account/security, sign-in by the button and by the
// email field's autofill (conditional mediation), a second device, removal, and a cloned
// authenticator whose counter goes backwards. The pages run our own script under the strict CSP.
// WebAuthn needs a domain name, so this server's issuer is http://localhost:<port>.

let server: TestServer;
let issuer: string;
let spa: AppClient;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer((ip) => {
    const local = ip.replace('127.0.0.1', 'localhost');
    return { issuer: local, clients: TEST_CLIENTS(local) };
  });
  issuer = server.config.issuer;
  spa = await appClient({ ...server, issuer }, 'spa');
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

interface Device { context: BrowserContext; page: Page; cdp: CDPSession; authenticatorId: string }

/** A browser with one platform authenticator that keeps passkeys and verifies its user. */
async function newDevice(): Promise<Device> {
  const context = await browser.newContext({ locale: 'en-US' });
  await context.route((url) => url.href.startsWith(spa.redirectUri), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
  context.setDefaultTimeout(10_000);
  await context.addInitScript({
    content: "if (location.origin === '" + issuer + "' && sessionStorage.getItem('no-autofill')) PublicKeyCredential.isConditionalMediationAvailable = async () => false;",
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { context, page, cdp, authenticatorId };
}

/**
 * Starts the app's authorization in the device's browser; resolves on the login page. The
 * virtual authenticator answers an autofill request at once, as a person picking their passkey
 * from the email field's suggestions would: `autofill: false` is a browser without passkey
 * autofill (conditional mediation), where only the button asks.
 */
async function startSignIn(device: Device, options: { autofill?: boolean } = {}): Promise<AuthorizationRequest> {
  const request = await authorizationRequest(spa);
  // The tab's storage for our origin survives its navigations; the device's init script reads it.
  if (!device.page.url().startsWith(issuer)) await device.page.goto(`${issuer}/assets/parley.css`);
  await device.page.evaluate(options.autofill === false ? "sessionStorage.setItem('no-autofill', '1')" : "sessionStorage.removeItem('no-autofill')");
  await device.page.goto(request.url);
  return request;
}

async function claimsAfter(device: Device, request: AuthorizationRequest) {
  await device.page.waitForURL(`${spa.redirectUri}**`);
  return (await exchange(spa, request, device.page.url())).claims()!;
}

async function registerWithPassword(device: Device): Promise<string> {
  const email = uniqueEmail('passkey');
  const request = await startSignIn(device, { autofill: false });
  await device.page.getByRole('link', { name: 'Create an account' }).click();
  await device.page.getByLabel('Email').fill(email);
  await device.page.getByLabel('Password').fill(PASSWORD);
  await device.page.getByRole('button', { name: 'Create account' }).click();
  await claimsAfter(device, request);
  return email;
}

async function addPasskey(device: Device, name: string) {
  await device.page.goto(`${issuer}/account/security`);
  await device.page.getByLabel('Name it (optional)').fill(name);
  await device.page.getByRole('button', { name: 'Add a passkey' }).click();
  await device.page.getByText('The passkey was added.').waitFor();
}

async function signOut(device: Device) {
  await device.context.clearCookies();
}

describe('passkeys in Chromium', () => {
  let email: string;
  let laptop: Device;

  it('adds a passkey in /account/security, with its own script under the CSP', async () => {
    laptop = await newDevice();
    const blocked: string[] = [];
    laptop.page.on('console', (message) => { if (/Content Security Policy/.test(message.text())) blocked.push(message.text()); });
    email = await registerWithPassword(laptop);
    await addPasskey(laptop, 'Laptop');
    const text = await laptop.page.locator('main').textContent();
    expect(text).toContain('Laptop');
    expect(text).toContain('On this one device only');
    expect(blocked).toEqual([]);
    const { credentials } = await laptop.cdp.send('WebAuthn.getCredentials', { authenticatorId: laptop.authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]!.isResidentCredential).toBe(true);
    const changes = await server.parley.storage.db.selectFrom('outbox_events').select('payload')
      .where('type', '=', 'account.security_changed').execute();
    expect(changes.map((c) => (typeof c.payload === 'string' ? JSON.parse(c.payload) : c.payload).change)).toContain('passkey_added');
  });

  it('signs in with the "Sign in with a passkey" button: no password, two factors in the ID token', async () => {
    await signOut(laptop);
    const request = await startSignIn(laptop, { autofill: false });
    expect(await laptop.page.getByLabel('Email').getAttribute('autocomplete')).toBe('username webauthn');
    await laptop.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const claims = await claimsAfter(laptop, request);
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('phr');
  });

  it('signs in from the email field\'s autofill (conditional mediation)', async () => {
    await signOut(laptop);
    const request = await startSignIn(laptop);
    // Nothing to click: the passkey picked from the field's suggestions signs in.
    const claims = await claimsAfter(laptop, request);
    expect(claims.acr).toBe('phr');
  });

  it('adds a second device\'s passkey, then removes the first: it signs in no more', async () => {
    const phone = await newDevice();
    const request = await startSignIn(phone, { autofill: false });
    await phone.page.getByLabel('Email').fill(email);
    await phone.page.getByLabel('Password').fill(PASSWORD);
    await phone.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await claimsAfter(phone, request);
    await addPasskey(phone, 'Phone');
    expect(await phone.page.locator('main').textContent()).toContain('Laptop');

    await phone.page.getByRole('button', { name: 'Remove' }).first().click();
    await phone.page.getByText('The passkey was removed.').waitFor();
    expect(await phone.page.locator('main').textContent()).not.toContain('Laptop');

    await signOut(laptop);
    await startSignIn(laptop, { autofill: false });
    await laptop.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await laptop.page.getByText('This passkey could not be verified.').waitFor();
    expect(laptop.page.url()).toContain('/interaction/');

    await signOut(phone);
    const again = await startSignIn(phone, { autofill: false });
    await phone.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    expect((await claimsAfter(phone, again)).acr).toBe('phr');
    await phone.context.close();
  });

  it('refuses a cloned authenticator whose counter goes backwards, and logs it', async () => {
    const original = await newDevice();
    await registerWithPassword(original);
    await addPasskey(original, 'Original');
    const [credential] = (await original.cdp.send('WebAuthn.getCredentials', { authenticatorId: original.authenticatorId })).credentials;
    // The original signs in twice: its counter moves on.
    for (let i = 0; i < 2; i++) {
      await signOut(original);
      const request = await startSignIn(original, { autofill: false });
      await original.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
      await claimsAfter(original, request);
    }
    // A copy of its key, taken before those sign-ins, with the counter it had then.
    const clone = await newDevice();
    await clone.cdp.send('WebAuthn.addCredential', { authenticatorId: clone.authenticatorId, credential: { ...credential!, signCount: credential!.signCount } });
    const logs = captureLogs(server, 'warn');
    await startSignIn(clone, { autofill: false });
    await clone.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await clone.page.getByRole('alert').first().waitFor();
    expect(clone.page.url()).toContain('/interaction/');
    expect(logs.some((line) => /counter went backwards/.test(String(line.msg)))).toBe(true);
    await clone.context.close();
    await original.context.close();
    await laptop.context.close();
  });
});

describe('registering with a passkey and no password, in Chromium', () => {
  it('makes the account with a passkey from the registration page, under the CSP, and signs in with it', async () => {
    const device = await newDevice();
    const blocked: string[] = [];
    device.page.on('console', (message) => { if (/Content Security Policy/.test(message.text())) blocked.push(message.text()); });
    const email = uniqueEmail('passkeyonly');
    const request = await startSignIn(device, { autofill: false });
    await device.page.getByRole('link', { name: 'Create an account' }).click();
    const optionsAsked: string[] = [];
    device.page.on('request', (r) => { if (r.url().includes('/passkey/account/options')) optionsAsked.push(r.url()); });
    // A form its own checks refuse (here the address) asks for no options and makes no passkey.
    await device.page.getByLabel('Email').fill('not an address');
    await device.page.getByRole('button', { name: 'Or create an account with a passkey, no password' }).click();
    expect(await device.page.getByLabel('Email').evaluate((input) => (input as unknown as { validity: { valid: boolean } }).validity.valid)).toBe(false);
    await device.page.getByLabel('Email').fill(email);
    await device.page.getByRole('button', { name: 'Or create an account with a passkey, no password' }).click();
    const claims = await claimsAfter(device, request);
    expect(optionsAsked).toHaveLength(1);
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(blocked).toEqual([]);
    const account = await server.parley.storage.db.selectFrom('accounts').selectAll().where('email', '=', email).executeTakeFirst();
    expect(account?.password_hash).toBeNull();
    const { credentials } = await device.cdp.send('WebAuthn.getCredentials', { authenticatorId: device.authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]!.isResidentCredential).toBe(true);

    await signOut(device);
    const again = await startSignIn(device, { autofill: false });
    await device.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    expect((await claimsAfter(device, again)).sub).toBe(claims.sub);
    await device.context.close();
  });
});
