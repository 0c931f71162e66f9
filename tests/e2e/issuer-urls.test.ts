import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { authorizationRequest, register, registerAndAuthorize, serveForTests, uniqueEmail } from '../support/oidc-app.ts';
import { TEST_CLIENTS, type TestServer } from '../support/server.ts';

// Every URL Parley publishes comes from the configured issuer, never from the request's Host or
// X-Forwarded-Host: a shared cache could otherwise serve an attacker's version to everyone.

const EVIL = 'evil.example';

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

/** One request with a Host header of our choosing (fetch always sends the URL's own). */
function requestAs(url: string, host: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { headers: { ...headers, host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** A request in absolute form (`GET http://evil.example/... HTTP/1.1`), which Node accepts. */
function requestAbsoluteForm(server: TestServer, target: string): Promise<string> {
  const { port } = new URL(server.issuer);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.end(`GET ${target} HTTP/1.1\r\nHost: ${EVIL}\r\nConnection: close\r\n\r\n`);
    });
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => { raw += chunk; });
    socket.on('end', () => resolve(raw));
    socket.on('error', reject);
  });
}

/** Every absolute http(s) URL in a text. */
function urlsIn(text: string): string[] {
  return [...text.matchAll(/https?:\/\/[^\s"'<>\\]+/g)].map((m) => m[0]);
}

for (const proxy of [false, true]) {
  describe(`with a forged Host header${proxy ? ' and X-Forwarded-Host behind a proxy' : ''}`, () => {
    const t = serveForTests({ proxy }, { app: 'web-app' });
    const forged = () => ({ ...(proxy ? { 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'http' } : {}) });


    it('publishes discovery and the JWKS URL under the issuer', async () => {
      const discovery = await requestAs(`${t.server.issuer}/.well-known/openid-configuration`, EVIL, forged());
      expect(discovery.status).toBe(200);
      const document = JSON.parse(discovery.body) as Record<string, unknown>;
      expect(document.issuer).toBe(t.server.issuer);
      expect(document.jwks_uri).toBe(`${t.server.issuer}/jwks`);
      expect(document.authorization_endpoint).toBe(`${t.server.issuer}/auth`);
      const urls = urlsIn(discovery.body);
      expect(urls.length).toBeGreaterThan(5);
      for (const url of urls) expect(url === t.server.issuer || url.startsWith(`${t.server.issuer}/`), url).toBe(true);
      expect((await requestAs(`${t.server.issuer}/jwks`, EVIL, forged())).status).toBe(200);
    });

    it('sends the browser to the sign-in page, and back to the authorization, under the issuer', async () => {
      const request = await authorizationRequest(t.app);
      const answer = await requestAs(request.url, EVIL, forged());
      expect(answer.status).toBe(303);
      expect(answer.headers.location).toMatch(new RegExp(`^${t.server.issuer}/interaction/`));

      // The interaction began under the forged Host; where it returns after sign-in is still the issuer.
      const browser = new HttpBrowser();
      for (const line of answer.headers['set-cookie'] ?? []) {
        const [pair] = line.split(';');
        browser.cookies.set(pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1));
      }
      const login = await browser.navigate(answer.headers.location!);
      expect(login.status).toBe(200);
      // Stop at the first redirect after the form: it must not lead anywhere but the issuer.
      const next = await register(browser, login, uniqueEmail('host'), 'http');
      expect(next.url).toMatch(new RegExp(`^${t.server.issuer}/auth/`));
    });

    it('shows the logout page with its form posting to the issuer', async () => {
      const { browser, tokens } = await registerAndAuthorize(t.server, t.app);
      const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const url = `${t.server.issuer}/session/end?${new URLSearchParams({ id_token_hint: tokens.id_token! })}`;
      const page = await requestAs(url, EVIL, { ...forged(), cookie });
      expect(page.status).toBe(200);
      expect(page.body).toContain(`action="${t.server.issuer}/session/end/confirm"`);
      for (const found of urlsIn(page.body)) expect(found.startsWith(`${t.server.issuer}/`), found).toBe(true);
    });

    it('ignores the authority of a request in absolute form', async () => {
      const raw = await requestAbsoluteForm(t.server, `http://${EVIL}/.well-known/openid-configuration`);
      expect(raw).toMatch(/^HTTP\/1.1 200/);
      expect(raw).not.toContain(EVIL);
      expect(raw).toContain(`"jwks_uri":"${t.server.issuer}/jwks"`);
    });
  });
}

describe('behind a TLS-terminating proxy, with an https issuer', () => {
  const publicIssuer = 'https://parley.test';
  const proxied = serveForTests({ proxy: true, issuer: publicIssuer, clients: TEST_CLIENTS(publicIssuer) }, {});

  it('advertises https endpoints under the issuer\'s name, whatever X-Forwarded-Host says', async () => {
    const discovery = await requestAs(`${proxied.server.issuer}/.well-known/openid-configuration`, '127.0.0.1', {
      'x-forwarded-proto': 'https', 'x-forwarded-host': EVIL,
    });
    const document = JSON.parse(discovery.body) as Record<string, string>;
    expect(document.authorization_endpoint).toBe(`${publicIssuer}/auth`);
    expect(document.jwks_uri).toBe(`${publicIssuer}/jwks`);
    for (const url of urlsIn(discovery.body)) expect(url === publicIssuer || url.startsWith(`${publicIssuer}/`), url).toBe(true);
  });
});
