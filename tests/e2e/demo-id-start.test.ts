import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { DEFAULT_BACKEND } from '../support/database.ts';
import { startParleyProcess, type ParleyProcess } from '../support/parley-process.ts';
import { freePort } from '../support/server.ts';

// The quick start's social path: `parley start` in development runs Demo ID beside Parley, and the
// demo app signs in with it through "Continue with Demo ID", with no account anywhere.

let parley: ParleyProcess;
let demoIdPort: number;
beforeAll(async () => {
  demoIdPort = await freePort();
  parley = await startParleyProcess({
    env: 'development',
    database: { url: DEFAULT_BACKEND.url, data_dir: 'memory://' },
    demo: { enabled: true, client_id: 'demo-shop', demo_id_port: demoIdPort },
  });
  await parley.ready();
}, 60_000);
afterAll(async () => { await parley?.stop(); });

describe('npm start in development', () => {
  it('runs Demo ID, and the demo app signs in with it', async () => {
    expect(parley.logs().some((l) => typeof l.msg === 'string' && l.msg.includes(`Demo ID, a pretend identity provider, is running at http://localhost:${demoIdPort}`))).toBe(true);
    const browser = new HttpBrowser();
    const login = await browser.navigate(`${parley.issuer}/demo/login`);
    expect(login.html).toContain('Continue with');
    const href = /href="([^"]*\/upstream\/demo-id)"/.exec(login.html)![1]!;
    // Demo ID's page: a button per pretend person.
    const chooser = await browser.navigate(new URL(href, login.url).href);
    expect(chooser.url.startsWith(`http://localhost:${demoIdPort}/`)).toBe(true);
    expect(chooser.html).toContain('Continue as Ada Lovelace');
    const signedIn = await browser.submit(chooser, '/login', { sub: 'demo-ada' });
    expect(signedIn.url).toBe(`${parley.issuer}/demo`);
    expect(signedIn.html).toContain('ada@demo-id.test');
  });

  it('is not run outside development', async () => {
    const other = await startParleyProcess({ database: { url: DEFAULT_BACKEND.url, data_dir: 'memory://' }, demo: { enabled: true, client_id: 'demo-shop', demo_id_port: await freePort() } });
    try {
      await other.ready();
      const login = await new HttpBrowser().navigate(`${other.issuer}/demo/login`);
      expect(login.html).not.toContain('/upstream/demo-id');
    } finally {
      await other.stop();
    }
  }, 60_000);
});
