import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoId, type RunningDemoId } from '../../src/oidc/demo-id.ts';
import { BROWSER_LOCALE, callbackUrl, htmlLangDir, launchChromium, SCREENSHOTS, screenshotProblems, uiMessages } from '../support/chromium.ts';
import { appClient, authorizationRequest, exchange, oidc, type AppClient } from '../support/oidc-app.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';

// "Continue with Demo ID" clicked through the pages in Chromium, in English and in Arabic (right to
// left): Parley's sign-in page, Demo ID's own page on another site (localhost, where Parley is on
// 127.0.0.1, so the way back is a cross-site navigation as with a real provider), the form that
// asks for the terms, and the app's callback. The screenshots are for people to look at.

const suffix = crypto.randomUUID().slice(0, 8);
const PEOPLE = {
  en: { sub: `ada-${suffix}`, email: `ada-${suffix}@demo-id.test`, email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', locale: 'en' },
  ar: { sub: `layla-${suffix}`, email: `layla-${suffix}@demo-id.test`, email_verified: true, name: 'ليلى حداد', given_name: 'ليلى', family_name: 'حداد', locale: 'ar' },
} as const;
const NAMES = { en: 'Demo ID', ar: 'الهوية التجريبية' } as const;

let server: TestServer;
let spa: AppClient;
let demo: RunningDemoId;
let chromium: Browser;

beforeAll(async () => {
  const port = await freePort();
  server = await startTestServer({
    terms: [{ id: 'tos', version: 1, title: { en: 'Terms of service', ar: 'شروط الخدمة' }, url: 'https://example.com/terms' }],
    identity_providers: [{ id: 'demo-id', type: 'oidc', name: NAMES, issuer: `http://localhost:${port}`, client_id: 'parley', client_secret: 'demo-secret', trust_email_verified: true }],
  });
  demo = await startDemoId({
    host: 'localhost', port, issuer: `http://localhost:${port}`,
    clients: [{ client_id: 'parley', client_secret: 'demo-secret', redirect_uris: [`${server.issuer}/federation/demo-id/callback`] }],
    users: Object.values(PEOPLE),
  });
  spa = await appClient(server, 'spa');
  chromium = await launchChromium();
});
afterAll(async () => {
  await chromium?.close();
  await demo?.close();
  await server?.close();
});

const shoot = async (page: Page, name: string) => expect(await screenshotProblems(page, name), name).toEqual([]);

describe.each(['en', 'ar'] as const)('Continue with Demo ID in Chromium, in %s', (locale) => {
  it('signs up through the provider\'s page and the terms, and the app gets the account', async () => {
    const t = uiMessages(locale);
    const person = PEOPLE[locale];
    const context = await chromium.newContext({ locale: BROWSER_LOCALE[locale], viewport: { width: 390, height: 844 } });
    context.setDefaultTimeout(10_000);
    await context.route(`${spa.redirectUri}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
    const page = await context.newPage();
    const request = await authorizationRequest(spa);
    await page.goto(request.url);
    expect(await htmlLangDir(page)).toEqual({ lang: locale, dir: locale === 'ar' ? 'rtl' : 'ltr' });

    const button = page.getByRole('link', { name: new RegExp(NAMES[locale]) });
    expect((await button.textContent())!.replace(/[\u2068\u2069]/g, '')).toBe(t['upstream.continue_with']!.replace('{provider}', NAMES[locale]));
    await shoot(page, `federation-login-${locale}`);
    await button.click();

    // Demo ID's own page, on its own site.
    await page.waitForURL((url) => url.hostname === 'localhost');
    await page.screenshot({ path: path.join(SCREENSHOTS, `federation-demo-id-${locale}.png`), fullPage: true });
    await page.getByRole('button', { name: new RegExp(`Continue as ${person.name}`) }).click();

    // Back at Parley: what registering asks, the name from the provider filled in.
    await page.getByRole('heading', { level: 1, name: t['title.upstream_register']!, exact: true }).waitFor();
    expect(await page.getByLabel(t['form.name']!).inputValue()).toBe(person.name);
    await page.locator('input[name="terms"]').check();
    await shoot(page, `federation-register-${locale}`);
    await page.getByRole('button', { name: t['upstream.register_submit']!, exact: true }).click();

    const tokens = await exchange(spa, request, await callbackUrl(page, spa));
    const sub = tokens.claims()!.sub;
    expect(await oidc.fetchUserInfo(spa.config, tokens.access_token, sub)).toMatchObject({ email: person.email, email_verified: true, name: person.name });
    await context.close();
  });
});
