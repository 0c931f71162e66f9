// The passkey scenario of npm run bench:login: the same whole sign-in as the password scenario
// (authorization request → sign-in page → code → token exchange with PKCE), with the sign-in
// page's passkey form instead of the password: the options fetched with the form's token, the
// challenge signed by an in-process authenticator (tests/support/authenticator.ts, P-256 as a
// platform authenticator), the answer posted. No argon2 anywhere on the way.
import { createHash, randomBytes } from 'node:crypto';
import { HttpBrowser, type Page } from '../tests/support/browser.ts';
import { SoftwareAuthenticator } from '../tests/support/authenticator.ts';

export interface PasskeyBench {
  issuer: string;
  clientId: string;
  redirectUri: string;
  password: string;
}

export interface PasskeyResult {
  sign_ins: number;
  failures: number;
  sign_ins_per_second: number;
  latency_ms: { p50: number; p99: number };
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

async function authorize(bench: PasskeyBench, browser: HttpBrowser, scope: string) {
  const { verifier, challenge } = pkce();
  const url = new URL(`${bench.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: bench.clientId, response_type: 'code', scope, redirect_uri: bench.redirectUri,
    code_challenge: challenge, code_challenge_method: 'S256', state: randomBytes(16).toString('base64url'),
  }).toString();
  return { verifier, page: await browser.navigate(url.href) };
}

/** What the page's script does: fetch the options of the form at `optionsPath` with its CSRF token. */
async function optionsOf(browser: HttpBrowser, page: Page, optionsPattern: RegExp): Promise<never> {
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)?.[1];
  const options = optionsPattern.exec(page.html)?.[1];
  if (!csrf || !options) throw new Error(`no passkey form on ${page.url} (${page.status})`);
  const response = await browser.request(new URL(options, page.url).href, { form: { csrf } });
  if (!response.ok) throw new Error(`passkey options refused: ${response.status}`);
  return await response.json() as never;
}

/** Signs in with the password once and adds a passkey in /account/security, as a person would. */
export async function enrolPasskey(bench: PasskeyBench, email: string): Promise<SoftwareAuthenticator> {
  const browser = new HttpBrowser();
  const { page } = await authorize(bench, browser, 'openid');
  await browser.submit(page, '/login', { email, password: bench.password }, bench.redirectUri);
  const security = await browser.navigate(`${bench.issuer}/account/security`);
  const authenticator = new SoftwareAuthenticator();
  const created = authenticator.register(await optionsOf(browser, security, /data-options="(\/account\/security\/passkeys\/options)"/), bench.issuer);
  const added = await browser.submit(security, '/account/security/passkeys', { response: JSON.stringify(created) });
  if (!added.html.includes('passkey')) throw new Error(`adding the passkey failed: ${added.status}`);
  return authenticator;
}

/** One whole passkey sign-in in a fresh cookie jar; returns its duration in milliseconds. */
export async function passkeySignIn(bench: PasskeyBench, authenticator: SoftwareAuthenticator): Promise<number> {
  const started = performance.now();
  const browser = new HttpBrowser();
  const { verifier, page } = await authorize(bench, browser, 'openid email');
  const answer = authenticator.authenticate(await optionsOf(browser, page, /data-options="([^"]*\/passkey\/options)"/), bench.issuer);
  const callback = await browser.submit(page, '/passkey', { response: JSON.stringify(answer) }, bench.redirectUri);
  const code = new URL(callback.url).searchParams.get('code');
  if (!code) throw new Error(`passkey sign-in did not reach the callback: ${callback.status} ${callback.url}`);
  const token = await fetch(`${bench.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: bench.redirectUri, client_id: bench.clientId, code_verifier: verifier }),
  });
  const body = await token.json() as { id_token?: string };
  if (!token.ok || !body.id_token) throw new Error(`token exchange failed: ${token.status} ${JSON.stringify(body)}`);
  return performance.now() - started;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** Passkey sign-ins back to back for `seconds`, one virtual user per authenticator. */
export async function measurePasskeySignIns(bench: PasskeyBench, authenticators: SoftwareAuthenticator[], seconds: number): Promise<PasskeyResult> {
  for (const authenticator of authenticators) await passkeySignIn(bench, authenticator); // warm-up
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(authenticators.map(async (authenticator) => {
    while (performance.now() < until) {
      try {
        latencies.push(await passkeySignIn(bench, authenticator));
      } catch (error) {
        failures++;
        if (failures <= 3) console.error((error as Error).message);
      }
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    sign_ins: latencies.length,
    failures,
    sign_ins_per_second: Number((latencies.length / elapsed).toFixed(1)),
    latency_ms: { p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)) },
  };
}
