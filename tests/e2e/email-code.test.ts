import { describe, expect, it } from 'vitest';
import { readMailbox } from '../../src/mail/mailer.ts';
import { HttpBrowser, type Page } from '../support/browser.ts';
import { authorizationRequest, exchange, register, serveForTests, uniqueEmail } from '../support/oidc-app.ts';

// "Email me a code" over HTTP, through the development mailbox: the code signs in (amr email,
// one factor), works once, dies after 10 minutes or 5 wrong tries, belongs to its address, and
// the page is the same whether or not the address has an account (no mail for none).

const apps = serveForTests({}, { spa: 'spa' });
const text = (page: Page) => page.html.replace(/[\u2068\u2069]/g, '');

async function account() {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(apps.spa);
  const email = uniqueEmail('code');
  await register(browser, await browser.navigate(request.url), email, apps.spa.redirectUri);
  return email;
}

/** From a fresh login page, "Email me a code" for the address. */
async function askForCode(email: string, browser = new HttpBrowser()) {
  const request = await authorizationRequest(apps.spa);
  const login = await browser.navigate(request.url);
  expect(login.html).toContain('formaction="/interaction/');
  const action = /formaction="([^"]*\/email-code)"/.exec(login.html)![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(login.html)![1]!;
  const codePage = await browser.navigate(new URL(action, login.url).href, { form: { csrf, email } });
  return { browser, request, codePage };
}

async function codesSentTo(email: string): Promise<string[]> {
  await apps.server.deliverMail();
  return (await readMailbox(apps.server.mailboxDir)).filter((m) => m.to === email && m.subject === 'Your sign-in code')
    .map((m) => /\b(\d{6})\b/.exec(m.text)![1]!);
}

describe('"Email me a code"', () => {
  it('mails a six-digit code that signs in once: amr email, one factor', async () => {
    const email = await account();
    const { browser, request, codePage } = await askForCode(email);
    expect(text(codePage)).toContain(`If ${email} has an account, we have sent a six-digit code to it.`);
    const [code] = await codesSentTo(email);
    expect(code).toMatch(/^\d{6}$/);
    const callback = await browser.submit(codePage, '/email-code/verify', { code: code! }, apps.spa.redirectUri);
    const claims = (await exchange(apps.spa, request, callback.url)).claims()!;
    expect([claims.amr, claims.acr]).toEqual([['email'], 'urn:parley:acr:1fa']);

    // Used: the same code again is refused.
    const again = await askForCode(email);
    const reused = await again.browser.submit(again.codePage, '/email-code/verify', { code: code! });
    expect(reused.status).toBe(401);
  });

  it('answers an address without an account with the same page, and mails nothing', async () => {
    const email = uniqueEmail('nobody');
    const { codePage } = await askForCode(email);
    expect(codePage.status).toBe(200);
    expect(text(codePage)).toContain(`If ${email} has an account, we have sent a six-digit code to it.`);
    expect(await codesSentTo(email)).toEqual([]);
  });

  it('refuses a code after ten minutes, after five wrong tries, and another address\'s code', async () => {
    const alice = await account();
    const bob = await account();
    const bobs = await askForCode(bob);
    const [bobCode] = await codesSentTo(bob);
    const alices = await askForCode(alice);
    const [aliceCode] = await codesSentTo(alice);
    expect((await alices.browser.submit(alices.codePage, '/email-code/verify', { code: bobCode! })).status).toBe(401);

    for (let i = 0; i < 4; i++) await alices.browser.submit(alices.codePage, '/email-code/verify', { code: aliceCode === '000000' ? '111111' : '000000' });
    const exhausted = await alices.browser.submit(alices.codePage, '/email-code/verify', { code: aliceCode! });
    expect(exhausted.status).toBe(401);
    expect(text(exhausted)).toContain('This code was tried too many times. Ask for a new one.');

    apps.server.clock.advance(10 * 60 + 1);
    const expired = await bobs.browser.submit(bobs.codePage, '/email-code/verify', { code: bobCode! });
    expect(expired.status).toBe(401);
    expect(text(expired)).toContain('This code has expired. Ask for a new one.');
  });

  it('refuses a post without the CSRF token', async () => {
    const { codePage, browser } = await askForCode(await account());
    const action = new URL(/action="([^"]*\/email-code\/verify)"/.exec(codePage.html)![1]!, codePage.url).href;
    expect((await browser.request(action, { form: { code: '123456' } })).status).toBe(403);
  });
});
