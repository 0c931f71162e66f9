import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appClient, authorizationRequest, exchange, oidc, uniqueEmail, PASSWORD, type AppClient } from '../support/oidc-app.ts';
import {
  BROWSER_LOCALE, callbackUrl, consentBoxes, htmlLangDir, launchChromium, screenshotProblems, uiMessages,
} from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Hebrew (right to left) and Thai (no spaces between words) in a real browser, on a phone-sized
// screen where wrapping is hardest: the sign-in page, the question screen of the shipped
// language-learning onboarding, and the preference center. Nothing may run out of its box or
// make the page scroll sideways; the screenshots are for people to look at.
const SCOPE = 'openid email profile preferences';

// The first screen of screensets/language-onboarding.yaml, in each language.
const ONBOARDING = {
  he: { title: 'בואו נתאים לך את השיעורים', motivation: 'למה בא לך ללמוד שפה חדשה?', travel: 'לטייל', level: 'לאיזו רמה בא לך להגיע?', b1: 'לנהל שיחות יומיומיות (B1)' },
  th: { title: 'มาปรับบทเรียนให้เหมาะกับคุณกัน', motivation: 'ทำไมคุณถึงอยากเรียนภาษาใหม่', travel: 'เพื่อการท่องเที่ยว', level: 'คุณอยากไปให้ถึงระดับไหน', b1: 'สนทนาในชีวิตประจำวันได้ (B1)' },
} as const;

let server: TestServer;
let spa: AppClient;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ screensets: { dir: 'screensets' } });
  spa = await appClient(server, 'spa');
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const shoot = async (page: Page, name: string) => expect(await screenshotProblems(page, name), name).toEqual([]);

describe.each(['he', 'th'] as const)('the pages in %s, in Chromium on a narrow screen', (locale) => {
  it('signs in, asks the onboarding questions and shows the preference center, all fitting the screen', async () => {
    const t = uiMessages(locale);
    const screen = ONBOARDING[locale];
    // Only the browser's language says which: Accept-Language, no ui_locales.
    const context = await browser.newContext({ locale: BROWSER_LOCALE[locale], viewport: { width: 360, height: 740 } });
    context.setDefaultTimeout(10_000);
    await context.route(`${spa.redirectUri}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
    const page = await context.newPage();
    const request = await authorizationRequest(spa, { scope: SCOPE });
    await page.goto(request.url);

    expect(await htmlLangDir(page)).toEqual({ lang: locale, dir: locale === 'he' ? 'rtl' : 'ltr' });
    await page.getByRole('heading', { level: 1, name: t['title.login']!, exact: true }).waitFor();
    await shoot(page, `login-${locale}`);

    await page.getByRole('link', { name: t['login.register']!, exact: true }).click();
    await page.getByLabel(t['form.email']!).fill(uniqueEmail(`browser-${locale}`));
    await page.getByLabel(t['form.password']!, { exact: true }).fill(PASSWORD);
    await shoot(page, `register-${locale}`);
    await page.getByRole('button', { name: t['register.submit']!, exact: true }).click();

    await page.getByRole('heading', { level: 1, name: screen.title, exact: true }).waitFor();
    expect(await htmlLangDir(page)).toEqual({ lang: locale, dir: locale === 'he' ? 'rtl' : 'ltr' });
    await page.getByRole('group', { name: screen.motivation }).waitFor();
    await shoot(page, `profile-${locale}`);

    await page.getByLabel(screen.travel, { exact: true }).check();
    await page.getByLabel(screen.b1, { exact: true }).check();
    for (const box of await consentBoxes(page, t).all()) await box.check();
    await page.getByRole('button', { name: t['profile.save']!, exact: true }).click();
    const tokens = await exchange(spa, request, await callbackUrl(page, spa));
    const userinfo = await oidc.fetchUserInfo(spa.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo.preferences).toEqual({ learning_motivation: ['travel'], target_level: 'b1' });
    expect(userinfo.locale).toBe(locale);

    await page.goto(`${server.issuer}/account`);
    await page.getByRole('heading', { level: 1, name: t['title.account']!, exact: true }).waitFor();
    expect(await htmlLangDir(page)).toEqual({ lang: locale, dir: locale === 'he' ? 'rtl' : 'ltr' });
    expect(await page.locator('main').textContent()).toContain(screen.b1);
    await shoot(page, `account-${locale}`);

    // The switcher under the page, clicked as a person would: the same page, in the other language.
    const other = locale === 'he' ? 'th' : 'he';
    await page.getByRole('button', { name: other === 'he' ? 'עברית' : 'ไทย', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: uiMessages(other)['title.account']!, exact: true }).waitFor();
    expect(page.url()).toBe(`${server.issuer}/account`);
    expect(await htmlLangDir(page)).toEqual({ lang: other, dir: other === 'he' ? 'rtl' : 'ltr' });
    await context.close();
  });
});
