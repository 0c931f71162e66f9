import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueEmail, PASSWORD } from '../support/oidc-app.ts';
import { launchChromium, SCREENSHOTS } from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// A real browser through the demo app, by label and button text, as a person would.

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the demo app in Chromium', () => {
  it('registers, signs in through Parley and shows the claims', async () => {
    const page = await browser.newPage({ locale: 'en-US' });
    const email = uniqueEmail('browser');
    await page.goto(`${server.issuer}/demo`);
    await page.getByRole('link', { name: 'Sign in with Parley' }).click();
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'register-en.png'), fullPage: true });
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(`${server.issuer}/demo`);
    expect(await page.locator('body').textContent()).toContain(email);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'demo-signed-in.png'), fullPage: true });

    // Sign out, then sign in again with the password.
    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(`${server.issuer}/demo`);
    await page.getByRole('link', { name: 'Sign in with Parley' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'login-en.png'), fullPage: true });
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${server.issuer}/demo`);
    expect(await page.locator('body').textContent()).toContain('"email_verified": false');
    await page.close();
  });
});
