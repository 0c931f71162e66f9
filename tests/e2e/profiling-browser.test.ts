import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appClient, authorizationRequest, exchange, oidc, PASSWORD, uniqueEmail, type AppClient, type AuthorizationRequest,
} from '../support/oidc-app.ts';
import { launchChromium, SCREENSHOTS } from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// The progressive-profiling question screen in a real browser: registration through the page's
// link, the welcome questions in Arabic (right to left), English and Japanese, answered by
// clicking, and the code exchanged by openid-client as the SPA would.
const SCOPE = 'openid email profile preferences';

type Locale = 'ar' | 'en' | 'ja';
/** The UI strings, from the same message files the pages are rendered with. */
const messages = (locale: Locale): Record<string, string> =>
  JSON.parse(readFileSync(path.resolve(`src/views/locales/${locale}.json`), 'utf8'));

const BROWSER_LOCALE: Record<Locale, string> = { ar: 'ar', en: 'en-US', ja: 'ja-JP' };

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

interface QuestionScreen {
  context: BrowserContext;
  page: Page;
  request: AuthorizationRequest;
  t: Record<string, string>;
}

/**
 * A new browser in `locale` starts the SPA's authorization, registers through the login page's
 * link, and arrives at the welcome question screen (waited for by its heading).
 */
async function registerToQuestions(locale: Locale, title: string): Promise<QuestionScreen> {
  const t = messages(locale);
  const context = await browser.newContext({ locale: BROWSER_LOCALE[locale] });
  // Nothing serves the SPA's redirect URI: answer it with an empty page so the URL can be read.
  await context.route(`${spa.redirectUri}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'spa' }));
  // Short enough that a missing element fails at its step rather than at the test's timeout.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const request = await authorizationRequest(spa, { scope: SCOPE, ui_locales: locale });
  await page.goto(request.url);
  await page.getByRole('link', { name: t['login.register']!, exact: true }).click();
  await page.getByLabel(t['form.email']!).fill(uniqueEmail(`profile-browser-${locale}`));
  await page.getByLabel(t['form.password']!, { exact: true }).fill(PASSWORD);
  await page.getByLabel(t['form.password']!, { exact: true }).press('Enter');
  await page.getByRole('heading', { level: 1, name: title, exact: true }).waitFor();
  return { context, page, request, t };
}

async function htmlLangDir(page: Page) {
  const html = page.locator('html');
  return { lang: await html.getAttribute('lang'), dir: await html.getAttribute('dir') };
}

/** The birthday's date input (its label also names the question's fieldset, hence the tag). */
const birthdayInput = (page: Page) => page.locator('input[type="date"]').and(page.getByLabel('متى عيد ميلادك؟', { exact: true }));

/**
 * Ticks the screen's "I agree to my answers being used for: …" box of each purpose, found by its
 * label, as answers are stored only with consent for their purpose. A screen that asks for no
 * consent (or a message file without the label) has none to tick.
 */
async function giveConsent(page: Page, t: Record<string, string>) {
  const label = t['profile.consent_label']?.split('{')[0];
  if (!label) return;
  const boxes = page.getByRole('checkbox', { name: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) });
  for (const box of await boxes.all()) await box.check();
}

async function callbackUrl(page: Page): Promise<string> {
  await page.waitForURL((url) => url.href.startsWith(spa.redirectUri));
  return page.url();
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

    const tokens = await exchange(spa, request, await callbackUrl(page));
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
    const tokens = await exchange(spa, request, await callbackUrl(page));
    const userinfo = await oidc.fetchUserInfo(spa.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo.preferences).toEqual({ favourite_drink: 'coffee', birthday: '2000-02-29' });
    await context.close();
  });
});
