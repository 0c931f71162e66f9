import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { register, uniqueEmail } from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// The quick start's promise, with the screen-sets that ship in screensets/: the demo app's
// first sign-in after registering asks the language onboarding's first two questions, and the
// answers come back to the app in its userinfo.

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ screensets: { dir: 'screensets' }, demo: { enabled: true, client_id: 'demo-shop' } });
});
afterAll(async () => { await server?.close(); });

describe('the demo with the shipped screen-sets', () => {
  it('asks the onboarding questions after registration and shows the answers the shop received', async () => {
    const browser = new HttpBrowser();
    const login = await browser.navigate(`${server.issuer}/demo/login`);
    const questions = await register(browser, login, uniqueEmail('demo'), `${server.issuer}/never`);
    expect(questions.html).toContain('Let&#x27;s tailor your lessons');
    expect([...questions.html.matchAll(/name="decline" value="([^"]+)"/g)].map((m) => m[1])).toEqual(['learning_motivation', 'target_level']);

    const done = await browser.submit(questions, '/profile', {
      'answer.learning_motivation': ['travel', 'culture'], consent: 'personalization',
    }, `${server.issuer}/never`);
    expect(done.url).toBe(`${server.issuer}/demo`);
    expect(done.html).toContain('&quot;preferences&quot;');
    expect(done.html).toMatch(/&quot;learning_motivation&quot;: \[\s*&quot;travel&quot;,\s*&quot;culture&quot;/);
  });
});
