import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMailbox } from '../../src/mail/mailer.ts';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest, exchange, PASSWORD, register, signIn, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// accounts.require_verified_email: true — sign-in continues only with a verified address, and
// registration reveals nothing about which addresses already have accounts.
let server: TestServer;
let app: AppClient;

beforeAll(async () => {
  server = await startTestServer({ accounts: { require_verified_email: true } });
  app = await appClient(server, 'spa');
});
afterAll(async () => { await server?.close(); });

describe('with require_verified_email', () => {
  it('holds the sign-in until the emailed link is followed, then continues it', async () => {
    const browser = new HttpBrowser();
    const email = uniqueEmail('verify');
    const request = await authorizationRequest(app);
    const waiting = await register(browser, await browser.navigate(request.url), email, app.redirectUri);
    expect(waiting.status).toBe(200);
    expect(waiting.html).toContain(email);

    // Not verified yet: continuing keeps waiting.
    const early = await browser.submit(waiting, '/continue', {}, app.redirectUri);
    expect(early.url.startsWith(app.redirectUri)).toBe(false);

    const link = (await server.linksSentTo(email)).find((l) => l.includes('/verify-email'))!;
    expect((await new HttpBrowser().navigate(link)).status).toBe(200); // e.g. opened on a phone
    const done = await browser.submit(waiting, '/continue', {}, app.redirectUri);
    const tokens = await exchange(app, request, done.url);
    expect(tokens.claims()!.email_verified ?? true).toBe(true);
  });

  it('refuses to sign in an unverified account even with the right password', async () => {
    const email = uniqueEmail('unverified');
    const registering = new HttpBrowser();
    await register(registering, await registering.navigate((await authorizationRequest(app)).url), email, app.redirectUri);
    const browser = new HttpBrowser();
    const page = await signIn(browser, await browser.navigate((await authorizationRequest(app)).url), email, app.redirectUri, PASSWORD);
    expect(page.url.startsWith(app.redirectUri)).toBe(false);
    expect(page.status).toBe(403);
  });

  it('answers a taken address exactly as a new one, and tells the owner by email', async () => {
    const email = uniqueEmail('taken');
    const first = new HttpBrowser();
    const firstPage = await register(first, await first.navigate((await authorizationRequest(app)).url), email, app.redirectUri);
    const second = new HttpBrowser();
    const secondPage = await register(second, await second.navigate((await authorizationRequest(app)).url), email, app.redirectUri);
    const normalize = (html: string) => html.replaceAll(/\/interaction\/[A-Za-z0-9_-]+/g, '/interaction/X').replaceAll(/value="[^"]*"/g, '');
    expect(secondPage.status).toBe(firstPage.status);
    expect(normalize(secondPage.html)).toBe(normalize(firstPage.html));
    await server.deliverMail();
    const mails = (await readMailbox(server.mailboxDir)).filter((m) => m.to === email);
    expect(mails).toHaveLength(2);
    expect(mails[1]!.subject).not.toBe(mails[0]!.subject);
  });
});
