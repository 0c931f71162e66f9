import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { authorizationRequest, PASSWORD, uniqueEmail, type AppClient, type AuthorizationRequest } from './oidc-app.ts';

// Debian's Chromium, driven by playwright-core, for the tests that click through pages as people do.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.resolve('test-results/screenshots');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium or set CHROMIUM_PATH`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

export type UiLocale = 'en' | 'ar' | 'ja' | 'he' | 'th';

/** The UI strings, from the same message files the pages are rendered with. */
export function uiMessages(locale: UiLocale): Record<string, string> {
  return JSON.parse(readFileSync(path.resolve(`src/views/locales/${locale}.json`), 'utf8')) as Record<string, string>;
}

export const BROWSER_LOCALE: Record<UiLocale, string> = { en: 'en-US', ar: 'ar', ja: 'ja-JP', he: 'he-IL', th: 'th-TH' };

export async function htmlLangDir(page: Page): Promise<{ lang: string | null; dir: string | null }> {
  const html = page.locator('html');
  return { lang: await html.getAttribute('lang'), dir: await html.getAttribute('dir') };
}

export interface RegisteredInBrowser {
  context: BrowserContext;
  page: Page;
  request: AuthorizationRequest;
  t: Record<string, string>;
  email: string;
}

/**
 * A new browser in `locale` starts the app's authorization, registers through the login page's
 * link as a person would, and waits for the page headed `heading` (the question screen).
 */
export async function registerInBrowser(browser: Browser, app: AppClient, locale: UiLocale, heading: string, scope: string): Promise<RegisteredInBrowser> {
  const t = uiMessages(locale);
  const context = await browser.newContext({ locale: BROWSER_LOCALE[locale] });
  // Nothing serves the app's redirect URI: answer it with an empty page so the URL can be read.
  await context.route(`${app.redirectUri}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
  // Short enough that a missing element fails at its step rather than at the test's timeout.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const email = uniqueEmail(`browser-${locale}`);
  const request = await authorizationRequest(app, { scope, ui_locales: locale });
  await page.goto(request.url);
  await page.getByRole('link', { name: t['login.register']!, exact: true }).click();
  await page.getByLabel(t['form.email']!).fill(email);
  await page.getByLabel(t['form.password']!, { exact: true }).fill(PASSWORD);
  await page.getByLabel(t['form.password']!, { exact: true }).press('Enter');
  await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
  return { context, page, request, t, email };
}

/** The "I agree to my answers being used for: …" boxes of a question screen, found by their label. */
export function consentBoxes(page: Page, t: Record<string, string>) {
  const label = t['profile.consent_label']!.split('{')[0]!.trim();
  return page.getByRole('checkbox', { name: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) });
}

/** Waits for the browser to reach the app's redirect URI; its URL carries the code. */
export async function callbackUrl(page: Page, app: AppClient): Promise<string> {
  await page.waitForURL((url) => url.href.startsWith(app.redirectUri));
  return page.url();
}

/** Saves a full-page screenshot as test-results/screenshots/<name>.png and tells what does not fit on the page (layoutProblems). */
export async function screenshotProblems(page: Page, name: string): Promise<string[]> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  return layoutProblems(page);
}

/**
 * What does not fit on the page as laid out: the page scrolling sideways, and every element whose
 * content is wider or taller than its box (text running out of a button, a label or a cell, or
 * clipped by it). Empty when everything wraps as it should.
 */
export async function layoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    // Runs in the page; the project compiles without the DOM library, so the little it uses is typed here.
    interface Box { left: number; right: number; width: number }
    interface Element {
      tagName: string; className: string; textContent: string | null; classList: { contains(name: string): boolean };
      scrollWidth: number; clientWidth: number; scrollHeight: number; clientHeight: number;
      getBoundingClientRect(): Box; closest(selector: string): Element | null;
    }
    const { document, getComputedStyle } = globalThis as unknown as {
      document: { documentElement: Element; body: { querySelectorAll(selector: string): Iterable<Element> } };
      getComputedStyle(element: Element): { display: string; overflowY: string };
    };
    const problems: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) problems.push(`the page scrolls sideways: ${root.scrollWidth}px of content in ${root.clientWidth}px`);
    for (const element of document.body.querySelectorAll('*')) {
      const style = getComputedStyle(element);
      // Inline boxes have no width of their own, and the visually hidden text is meant to be clipped.
      if (style.display === 'inline' || style.display === 'none' || element.classList.contains('visually-hidden')) continue;
      if (element.tagName === 'svg' || element.closest('svg')) continue;
      // A text field scrolls what is typed into it; that is how it is meant to work.
      if (['INPUT', 'TEXTAREA', 'SELECT'].includes(element.tagName)) continue;
      // Off the screen on either side: a right-to-left page overflows to the left, which scrollWidth does not count.
      const box = element.getBoundingClientRect();
      if (box.width > 0 && (box.left < -1 || box.right > root.clientWidth + 1)) {
        problems.push(`<${element.tagName.toLowerCase()} class="${element.className}"> is off the screen (${Math.round(box.left)}px to ${Math.round(box.right)}px)`);
        continue;
      }
      const wide = element.scrollWidth > element.clientWidth + 1;
      const tall = style.overflowY !== 'visible' && element.scrollHeight > element.clientHeight + 1;
      if (wide || tall) {
        const text = (element.textContent ?? '').trim().replace(/\s+/g, ' ').slice(0, 60);
        problems.push(`<${element.tagName.toLowerCase()} class="${element.className}"> ${wide ? `${element.scrollWidth}px wide in ${element.clientWidth}px` : `${element.scrollHeight}px tall in ${element.clientHeight}px`}: ${text}`);
      }
    }
    return problems;
  });
}
