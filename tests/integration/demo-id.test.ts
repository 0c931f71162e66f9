import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ID_USERS, startDemoId, type RunningDemoId } from '../../src/oidc/demo-id.ts';
import { resolveUpstreamSettings } from '../../src/federation/settings.ts';
import { UpstreamClient } from '../../src/federation/upstream.ts';
import { loadConfig } from '../../src/config/load.ts';
import { REDIRECT_URI, authorize, loopbackFetch } from '../support/upstreams.ts';

// Demo ID as a developer meets it: its own demo people, a page to choose one, nothing to type.

describe('Demo ID', () => {
  let demo: RunningDemoId;
  let upstream: UpstreamClient;

  beforeAll(async () => {
    demo = await startDemoId({ clients: [{ client_id: 'parley', client_secret: 'demo-secret', redirect_uris: [REDIRECT_URI] }] });
    const config = loadConfig({ env: {}, overrides: { identity_providers: [
      { id: 'demo-id', type: 'oidc', name: 'Demo ID', issuer: demo.url, client_id: 'parley', client_secret: 'demo-secret', trust_email_verified: true },
    ] } });
    upstream = new UpstreamClient(resolveUpstreamSettings(config.identity_providers, { env: {} })[0]!, { redirectUri: REDIRECT_URI, fetch: loopbackFetch() });
  });
  afterAll(() => demo.close());

  it('shows its demo people under a clear name, and signs in as the one chosen', async () => {
    const { url, transaction } = await upstream.begin({ interactionUid: 'i-1' });
    let shown = '';
    const callback = await authorize(url, {
      act: async (browser, page) => {
        shown = page.html;
        expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
        const form = [...page.html.matchAll(/<form method="post" action="([^"]+)">\s*<input type="hidden" name="sub" value="demo-layla">/g)][0]!;
        return browser.navigate(new URL(form[1]!, page.url).href, { form: { sub: 'demo-layla' } }, REDIRECT_URI);
      },
    });
    expect(shown).toContain('<h1>Demo ID</h1>');
    expect(shown).toMatch(/not real and have no passwords/);
    for (const user of DEMO_ID_USERS) expect(shown).toContain(user.email);
    expect(await upstream.complete(transaction, callback.params)).toEqual({
      provider: 'demo-id', subject: 'demo-layla', email: 'layla@demo-id.test', emailVerified: true, emailVerifiedClaimed: true,
      name: 'ليلى حداد', locale: 'ar',
    });
  });

  it('has a person whose address it never verified', async () => {
    const { url, transaction } = await upstream.begin({ interactionUid: 'i-2' });
    const callback = await authorize(url, {
      act: (browser, page) => browser.navigate(new URL(`/interaction/${/\/interaction\/([^/"]+)\/login/.exec(page.html)![1]}/login`, page.url).href, { form: { sub: 'demo-sam' } }, REDIRECT_URI),
    });
    expect(await upstream.complete(transaction, callback.params)).toMatchObject({ subject: 'demo-sam', emailVerified: false, emailVerifiedClaimed: false });
  });
});
