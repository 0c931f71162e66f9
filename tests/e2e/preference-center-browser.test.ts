import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appClient, authorizationRequest, exchange, oidc, type AppClient,
} from '../support/oidc-app.ts';
import {
  callbackUrl, consentBoxes, htmlLangDir, launchChromium, registerInBrowser, SCREENSHOTS, type UiLocale,
} from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { translate } from '../../src/views/i18n.ts';

// The preference center at /account in a real browser: reached with the sign-in the SPA's
// authorization left behind, an answer changed and a consent withdrawn by clicking, a
// communication toggle saved, and the pages in English and Arabic (right to left).
const SCOPE = 'openid email profile preferences';

type Locale = Extract<UiLocale, 'ar' | 'en'>;
/** A message's text before its first placeholder ("Given since {date}" → "Given since"). */
const prefix = (message: string) => message.split('{')[0]!.trim();

// The welcome screen of tests/fixtures/screensets-e2e, in both languages.
const WELCOME = {
  en: { title: 'Welcome', drink: 'What do you like to drink?', tea: 'Tea', birthday: 'When is your birthday?' },
  ar: { title: 'أهلاً بك', drink: 'ماذا تحب أن تشرب؟', tea: 'شاي', birthday: 'متى عيد ميلادك؟' },
} as const;

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

const db = () => server.parley.storage.db;

interface SignedIn {
  context: BrowserContext;
  page: Page;
  t: Record<string, string>;
  email: string;
  tokens: Awaited<ReturnType<typeof exchange>>;
}

/**
 * A new browser in `locale` registers through the SPA, answers the welcome questions (tea,
 * 1990-04-01) with consent to both purposes, and lands on the SPA's callback, whose code
 * openid-client exchanges.
 */
async function registerThroughSpa(locale: Locale): Promise<SignedIn> {
  const welcome = WELCOME[locale];
  const { context, page, request, t, email } = await registerInBrowser(browser, spa, locale, welcome.title, SCOPE);
  await page.getByLabel(welcome.tea, { exact: true }).check();
  // The birthday's label also names its fieldset, hence the input's type.
  await page.locator('input[type="date"]').and(page.getByLabel(welcome.birthday, { exact: true })).fill('1990-04-01');
  const consent = consentBoxes(page, t);
  expect(await consent.count()).toBe(2);
  for (const box of await consent.all()) await box.check();
  await page.getByRole('button', { name: t['profile.save']!, exact: true }).click();
  const tokens = await exchange(spa, request, await callbackUrl(page, spa));
  return { context, page, t, email, tokens };
}

/** Opens the preference center with the session the authorization left: no sign-in asked for. */
async function openAccount(page: Page, t: Record<string, string>) {
  await page.goto(`${server.issuer}/account`);
  expect(page.url()).toBe(`${server.issuer}/account`);
  await page.getByRole('heading', { level: 1, name: t['title.account']!, exact: true }).waitFor();
}

describe('the preference center in Chromium', () => {
  it('shows everything in English, and changes an answer, a consent and a communication toggle by clicking', async () => {
    const { context, page, t, email, tokens } = await registerThroughSpa('en');
    const sub = tokens.claims()!.sub;
    await openAccount(page, t);
    expect(await htmlLangDir(page)).toEqual({ lang: 'en', dir: 'ltr' });
    const main = page.locator('main');
    expect(await main.textContent()).toContain(email);

    // The answers, each in its own list item with its question.
    const answers = page.getByRole('region', { name: t['account.answers.heading']!, exact: true });
    const drink = answers.getByRole('listitem').filter({ has: page.getByText('What do you like to drink?', { exact: true }) });
    expect(await drink.count()).toBe(1);
    expect(await drink.locator('.answer__value').textContent()).toBe('Tea');
    expect(await answers.getByText('When is your birthday?', { exact: true }).count()).toBe(1);

    // Both purposes rest on consent and are given.
    const consents = page.getByRole('region', { name: t['account.consents.heading']!, exact: true });
    const card = (title: string) => consents.getByRole('listitem').filter({ has: page.getByRole('heading', { level: 3, name: title, exact: true }) });
    for (const title of ['Personalized recommendations', 'Birthday and loyalty offers']) {
      expect(await card(title).textContent(), title).toContain(prefix(t['account.consent.granted_since']!));
      expect(await card(title).getByRole('button', { name: t['account.consent.withdraw']!, exact: true }).count(), title).toBe(1);
    }

    // The communication table: every channel × topic, nothing chosen yet.
    const communication = page.getByRole('region', { name: t['account.communication.heading']!, exact: true });
    const table = communication.getByRole('table', { name: t['account.communication.caption']!, exact: true });
    for (const channel of ['Email', 'Text message (SMS)', 'Push notification']) {
      expect(await table.getByRole('columnheader', { name: channel, exact: true }).count(), channel).toBe(1);
    }
    expect(await table.getByRole('checkbox').count()).toBe(6);
    expect(await table.getByRole('checkbox', { checked: true }).count()).toBe(0);

    // The connected app, and what it may receive.
    const apps = page.getByRole('region', { name: t['account.apps.heading']!, exact: true });
    expect(await apps.getByRole('heading', { level: 3, name: 'Brand SPA', exact: true }).count()).toBe(1);
    expect(await apps.textContent()).toContain('Birthday and loyalty offers');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'account-en.png'), fullPage: true });

    // 1. Change an answer: the drink's "Change" link (described by its question), Coffee, Save.
    const change = drink.getByRole('link', { name: t['account.answers.change']!, exact: true });
    const describedBy = await change.getAttribute('aria-describedby');
    expect(await page.locator(`#${describedBy}`).textContent()).toBe('What do you like to drink?');
    await change.click();
    await page.getByRole('heading', { level: 1, name: t['title.account_edit_answer']!, exact: true }).waitFor();
    expect(await page.getByRole('radio', { name: 'Tea', exact: true }).isChecked()).toBe(true);
    await page.getByRole('radio', { name: 'Coffee', exact: true }).check();
    await page.getByRole('button', { name: t['account.edit.save']!, exact: true }).click();
    await page.waitForURL(`${server.issuer}/account?done=answer_saved#answers`);
    expect(await page.getByRole('status').textContent()).toBe(t['account.notice.answer_saved']);
    expect(await drink.locator('.answer__value').textContent()).toBe('Coffee');
    expect((await oidc.fetchUserInfo(spa.config, tokens.access_token, sub)).preferences)
      .toEqual({ favourite_drink: 'coffee', birthday: '1990-04-01' });

    // 2. Withdraw the offers consent, keeping the answers (the delete box stays unticked).
    const offers = card('Birthday and loyalty offers');
    expect(await offers.getByRole('checkbox').isChecked()).toBe(false);
    await offers.getByRole('button', { name: t['account.consent.withdraw']!, exact: true }).click();
    await page.waitForURL(`${server.issuer}/account?done=consent_withdrawn#consents`);
    expect(await page.getByRole('status').textContent()).toBe(t['account.notice.consent_withdrawn']);
    expect(await offers.textContent()).toContain(prefix(t['account.consent.withdrawn_on']!));
    expect(await offers.getByRole('button', { name: t['account.consent.grant']!, exact: true }).count()).toBe(1);
    expect(await offers.getByRole('button', { name: t['account.consent.withdraw']!, exact: true }).count()).toBe(0);
    // The other purpose is untouched, and the birthday answer is kept.
    expect(await card('Personalized recommendations').textContent()).toContain(prefix(t['account.consent.granted_since']!));
    expect(await answers.getByText('When is your birthday?', { exact: true }).count()).toBe(1);

    const latest = await db().selectFrom('consent_ledger').select(['action', 'source'])
      .where('subject', '=', sub).where('purpose', '=', 'offers').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(latest).toEqual({ action: 'withdrawn', source: 'preference_center' });
    // The token the SPA holds no longer carries the birthday, nor does a fresh authorization's.
    expect((await oidc.fetchUserInfo(spa.config, tokens.access_token, sub)).preferences).toEqual({ favourite_drink: 'coffee' });
    const again = await authorizationRequest(spa, { scope: SCOPE });
    await page.goto(again.url);
    const fresh = await exchange(spa, again, await callbackUrl(page, spa));
    const info = await oidc.fetchUserInfo(spa.config, fresh.access_token, sub);
    expect(info.preferences).toEqual({ favourite_drink: 'coffee' });
    expect(info.birthdate).toBeUndefined();

    // 3. A communication toggle, saved and still ticked after a reload.
    await openAccount(page, t);
    // The box's hidden label, formatted as the page does (its placeholders bidi-isolated).
    const newsByEmail = table.getByRole('checkbox', {
      name: translate('en', 'account.communication.toggle', { topic: 'News and product updates', channel: 'Email' }), exact: true,
    });
    // The box's label covers its whole table cell, so the cell is what a person clicks.
    await newsByEmail.locator('xpath=ancestor::td[1]').click();
    expect(await newsByEmail.isChecked()).toBe(true);
    await communication.getByRole('button', { name: t['account.communication.save']!, exact: true }).click();
    await page.waitForURL(`${server.issuer}/account?done=communication_saved#communication`);
    expect(await page.getByRole('status').textContent()).toBe(t['account.notice.communication_saved']);
    await page.goto(`${server.issuer}/account`);
    expect(await newsByEmail.isChecked()).toBe(true);
    expect(await table.getByRole('checkbox', { checked: true }).count()).toBe(1);
    const ledger = await db().selectFrom('communication_ledger').select(['channel', 'topic', 'enabled']).where('account_id', '=', sub).execute();
    expect(ledger).toEqual([{ channel: 'email', topic: 'news', enabled: true }]);
    await context.close();
  });

  it('is right to left in Arabic, and so is the page that deletes the account', async () => {
    const { context, page, t, email } = await registerThroughSpa('ar');
    await openAccount(page, t);
    expect(await htmlLangDir(page)).toEqual({ lang: 'ar', dir: 'rtl' });
    expect(await page.getByRole('heading', { level: 2, name: t['account.answers.heading']!, exact: true }).count()).toBe(1);
    const main = page.locator('main');
    const text = await main.textContent();
    expect(text).toContain(email);
    expect(text).toContain(WELCOME.ar.drink);
    expect(text).toContain(WELCOME.ar.tea);
    expect(text).toContain('عروض عيد الميلاد والولاء');
    expect(await page.getByRole('button', { name: t['account.consent.withdraw']!, exact: true }).count()).toBe(2);
    // One "change" link per answer (the header has its own, for the email address).
    expect(await page.locator('ul.answers').getByRole('link', { name: t['account.answers.change']!, exact: true }).count()).toBe(2);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'account-ar.png'), fullPage: true });

    await page.getByRole('link', { name: t['account.data.delete']!, exact: true }).click();
    await page.waitForURL(`${server.issuer}/account/delete`);
    await page.getByRole('heading', { level: 1, name: t['title.account_delete']!, exact: true }).waitFor();
    expect(await htmlLangDir(page)).toEqual({ lang: 'ar', dir: 'rtl' });
    // Signed in a moment ago: the page asks for the ticked box, not for another sign-in.
    expect(await page.getByRole('checkbox', { name: t['account.delete.confirm']!, exact: true }).count()).toBe(1);
    expect(await page.getByRole('button', { name: t['account.delete.submit']!, exact: true }).count()).toBe(1);
    expect(await main.textContent()).toContain(email);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'account-delete-ar.png'), fullPage: true });
    await context.close();
  });
});
