import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appClient, exchange, oidc, type AppClient,
} from '../support/oidc-app.ts';
import {
  callbackUrl, consentBoxes, htmlLangDir, launchChromium, registerInBrowser, SCREENSHOTS, type UiLocale,
} from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// The progressive-profiling question screen in a real browser: registration through the page's
// link, the welcome questions in Arabic (right to left), English and Japanese, answered by
// clicking, and the code exchanged by openid-client as the SPA would.
const SCOPE = 'openid email profile preferences';

type Locale = UiLocale;

let server: TestServer;
let spa: AppClient;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ screensets: { dir: 'tests/fixtures/screensets-e2e' } });
  spa = await appClient(server, 'spa');
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** A new browser in `locale` registers through the SPA and arrives at the welcome question screen. */
const registerToQuestions = (locale: Locale, title: string) => registerInBrowser(browser, spa, locale, title, SCOPE);

/** The birthday's date input (its label also names the question's fieldset, hence the tag). */
const birthdayInput = (page: Page) => page.locator('input[type="date"]').and(page.getByLabel('متى عيد ميلادك؟', { exact: true }));

/** Ticks every consent box on the screen: answers are stored only with consent for their purpose. */
async function giveConsent(page: Page, t: Record<string, string>) {
  for (const box of await consentBoxes(page, t).all()) await box.check();
}

describe('the question screen in Chromium', () => {
  it('asks in Arabic, right to left, and the answers clicked reach the SPA as preferences', async () => {
    const { context, page, request, t } = await registerToQuestions('ar', 'أهلاً بك');
    expect(await htmlLangDir(page)).toEqual({ lang: 'ar', dir: 'rtl' });
    // The two welcome questions a screen shows, with their Arabic labels and the reward.
    await page.getByRole('group', { name: 'ماذا تحب أن تشرب؟' }).waitFor();
    expect(await page.getByRole('radio', { name: 'قهوة', exact: true }).count()).toBe(1);
    expect(await birthdayInput(page).count()).toBe(1);
    expect(await page.locator('main').textContent()).toContain('مشروب مجاني في يوم ميلادك');
    expect(await page.getByLabel('أين تسكن؟').count()).toBe(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'profile-ar.png'), fullPage: true });

    await page.getByLabel('شاي', { exact: true }).check();
    await birthdayInput(page).fill('1990-04-01');
    await giveConsent(page, t);
    await page.getByRole('button', { name: t['profile.save']!, exact: true }).click();

    const tokens = await exchange(spa, request, await callbackUrl(page, spa));
    const userinfo = await oidc.fetchUserInfo(spa.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo.preferences).toEqual({ favourite_drink: 'tea', birthday: '1990-04-01' });
    await context.close();
  });

  it('renders the screen in English and Japanese, left to right', async () => {
    const cases = [
      { locale: 'en', title: 'Welcome', label: 'What do you like to drink?', option: 'Tea' },
      { locale: 'ja', title: 'ようこそ', label: '何を飲むのが好きですか？', option: 'お茶' },
    ] as const;
    await Promise.all(cases.map(async ({ locale, title, label, option }) => {
      const { context, page, t } = await registerToQuestions(locale, title);
      expect(await htmlLangDir(page)).toEqual({ lang: locale, dir: 'ltr' });
      await page.getByRole('group', { name: label, exact: true }).waitFor();
      expect(await page.getByRole('radio', { name: option, exact: true }).count()).toBe(1);
      expect(await page.getByRole('button', { name: t['profile.save']!, exact: true }).count()).toBe(1);
      await page.screenshot({ path: path.join(SCREENSHOTS, `profile-${locale}.png`), fullPage: true });
      await context.close();
    }));
  });

  it('re-renders an out-of-range date from a tampered page with the error beside the field and the answers kept', async () => {
    const { context, page, request, t } = await registerToQuestions('ar', 'أهلاً بك');
    const save = page.getByRole('button', { name: t['profile.save']!, exact: true });
    const birthday = birthdayInput(page);
    await page.getByLabel('قهوة', { exact: true }).check();
    await birthday.fill('2999-01-01');
    await giveConsent(page, t);

    // The date's max is only a hint to the browser: Chromium refuses to submit past it…
    expect(await birthday.evaluate((input) => input.validity.rangeOverflow)).toBe(true);
    await save.click();
    expect(await birthday.evaluate((input) => input.matches(':invalid'))).toBe(true);
    expect(page.url().startsWith(spa.redirectUri)).toBe(false);

    // …so the attribute goes, as from a tampered client, and the server has the last word.
    await birthday.evaluate((input) => input.removeAttribute('max'));
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      save.click(),
    ]);
    expect(response.status()).toBe(400);
    await page.getByRole('heading', { level: 1, name: 'أهلاً بك', exact: true }).waitFor();

    // The message is tied to the field (aria-describedby), and what was typed and chosen stays.
    const refused = birthdayInput(page);
    expect(await refused.getAttribute('aria-invalid')).toBe('true');
    expect(await refused.inputValue()).toBe('2999-01-01');
    const errorId = (await refused.getAttribute('aria-describedby'))?.split(' ')[0];
    expect(errorId).toBe('q-birthday--error');
    const error = page.locator(`#${errorId}`);
    expect(await error.textContent()).toContain(t['form.error_prefix']);
    expect(await error.textContent()).toContain(t['answer.error.date_too_late']!.split('{')[0]!.trim());
    // The message sits in the birthday's own fieldset, next to its input.
    expect(await page.locator('fieldset', { has: refused }).locator(`#${errorId}`).count()).toBe(1);
    expect(await page.getByLabel('قهوة', { exact: true }).isChecked()).toBe(true);
    expect(await page.getByRole('radio', { name: 'شاي', exact: true }).getAttribute('aria-invalid')).toBeNull();
    expect(await page.locator('main').textContent()).toContain(t['profile.form_error']);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'profile-ar-invalid.png'), fullPage: true });

    // Corrected, the same form goes through to the SPA.
    await refused.fill('2000-02-29');
    await giveConsent(page, t);
    await save.click();
    const tokens = await exchange(spa, request, await callbackUrl(page, spa));
    const userinfo = await oidc.fetchUserInfo(spa.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo.preferences).toEqual({ favourite_drink: 'coffee', birthday: '2000-02-29' });
    await context.close();
  });
});
