import { afterAll, beforeAll, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest, exchange, PASSWORD, signIn, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// The SQL statements of one password sign-in, counted by the server's own counter (the one
// /metrics exposes and bench:login reads), BEGIN and COMMIT included. The number is held where it
// is: a change that adds a statement to every sign-in fails here and says which one, and a change
// that removes one lowers the number below.

let server: TestServer;
let app: AppClient;

beforeAll(async () => {
  // No background polling of the outbox while statements are counted.
  server = await startTestServer({ events: { poll_interval: '1h' } });
  app = await appClient(server, 'spa');
});
afterAll(async () => { await server?.close(); });

/** The statements the server sent while `task` ran, by kind ("select accounts"). */
async function statementsOf(task: () => Promise<void>): Promise<Record<string, number>> {
  const counts = server.parley.storage.statementCounts();
  const before = new Map(counts);
  await task();
  return Object.fromEntries([...counts].map(([kind, n]) => [kind, n - (before.get(kind) ?? 0)] as const).filter(([, n]) => n > 0));
}

/** A whole sign-in in a new browser: authorization request, login form, credentials, code, tokens. */
async function passwordSignIn(email: string, accountId: string): Promise<void> {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(app, { scope: 'openid email' });
  const login = await browser.navigate(request.url);
  const callback = await signIn(browser, login, email, app.redirectUri);
  const tokens = await exchange(app, request, callback.url);
  expect(tokens.claims()?.sub).toBe(accountId);
}

it('a returning user\'s password sign-in, from the authorization request to the tokens, sends 22 statements', async () => {
  const email = uniqueEmail('statements');
  const registered = await server.parley.accounts.register({ email, password: PASSWORD, locale: 'en' });
  const accountId = registered.outcome === 'signed_in' ? registered.account.id : '';
  await passwordSignIn(email, accountId); // the first sign-in makes the account's grant to the app
  await server.deliverMail();

  const statements = await statementsOf(() => passwordSignIn(email, accountId));
  expect(statements).toEqual({
    // authorization request, login page, login form, the authorization resumed, token exchange:
    // Interaction ×6 (create, 3 reads, result, delete), Grant (found by account, then by the
    // code), Session (write, read by the code), AuthorizationCode (write, read, consume),
    // AccessToken (write).
    'insert oidc_payloads': 5,
    'select oidc_payloads': 7,
    'update oidc_payloads': 1,
    'delete oidc_payloads': 1,
    // the throttle's reservation and its settlement
    'insert login_throttle': 2,
    // by email for the password; by id once per request that needs it (resume, tokens)
    'select accounts': 3,
    // the profiling check: is a question screen due?
    'with prompt_log': 1,
    // the second-factor check: what the account has set up (passkeys, authenticator app, recovery
    // codes), one statement whose first table is webauthn_credentials
    'select webauthn_credentials': 1,
    // where the session is used from, for the sessions list in /account/security
    'insert session_devices': 1,
  });
  expect(Object.values(statements).reduce((a, b) => a + b, 0)).toBe(22);
});
