import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecordParser } from '../../src/import/record.ts';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest, signIn, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Imported accounts signing in through the real sign-in page: each hash format's published
// vector (the same ones tests/unit/foreign-hashes.test.ts checks the formats with) goes in as the
// import's line format stores it, the user signs in with the vector's password, and the database
// then holds Parley's argon2id hash. An imported account without a hash asks the old system,
// played by a real HTTP server on loopback, once.

const FIREBASE = {
  signer_key: 'jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==',
  salt_separator: 'Bw==', rounds: 8, mem_cost: 14,
};
const LEGACY_SECRET = `whsec_${Buffer.from('legacy-verify-secret-for-the-tests').toString('base64')}`;
const LEGACY_PASSWORD = 'the old system knew this one';

// [name, the line format's password field, the password that matches it]
const VECTORS: [string, unknown, string][] = [
  ['bcrypt $2a$ (crypt_blowfish)', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', 'U*U'],
  ['bcrypt $2b$ (crypt_blowfish)', '$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', 'U*U'],
  ['bcrypt $2y$ (PHP manual)', '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a', 'rasmuslerdorf'],
  ['argon2i (phc-winner-argon2)', '$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8', 'password'],
  ['argon2id (phc-winner-argon2)', { format: 'argon2', hash: '$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc' }, 'password'],
  ['PBKDF2-SHA1 (RFC 6070)', `$pbkdf2-sha1$i=4096,l=20$${Buffer.from('salt').toString('base64').replace(/=+$/, '')}$${Buffer.from('4b007901b765489abead49d926f721d065a429c1', 'hex').toString('base64').replace(/=+$/, '')}`, 'password'],
  ['PBKDF2-SHA256 (passlib)', '$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M', 'password'],
  ['PBKDF2-SHA512 (published password/salt/1)', `$pbkdf2-sha512$i=1,l=64$${Buffer.from('salt').toString('base64').replace(/=+$/, '')}$${Buffer.from('867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce', 'hex').toString('base64').replace(/=+$/, '')}`, 'password'],
  ['Django pbkdf2_sha256 (Django test_hashers)', { format: 'django', hash: 'pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=' }, 'lètmein'],
  ['Django pbkdf2_sha1 (Django test_hashers)', 'pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I=', 'lètmein'],
  ['Keycloak pbkdf2-sha256 (RFC 7914)', {
    format: 'keycloak',
    secret_data: JSON.stringify({ value: Buffer.from('55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783', 'hex').toString('base64'), salt: Buffer.from('salt').toString('base64') }),
    credential_data: JSON.stringify({ hashIterations: 1, algorithm: 'pbkdf2-sha256' }),
  }, 'passwd'],
  ['Firebase scrypt (firebase/scrypt README sample)', { format: 'firebase-scrypt', hash: 'lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==', salt: '42xEC+ixf3L2lw==' }, 'user1password'],
  ['salted SHA-256 (FIPS 180-2 "abc")', { format: 'sha256', hash: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', hash_encoding: 'hex', salt: 'a', salt_position: 'prefix' }, 'bc'],
  ['salted SHA-512 (FIPS 180-2 "abc")', { format: 'sha512', hash: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f', hash_encoding: 'hex', salt: 'bc', salt_position: 'suffix' }, 'a'],
];

let server: TestServer;
let app: AppClient;
let legacy: http.Server;
const legacyRequests: { email: string; password: string }[] = [];
const held: http.ServerResponse[] = [];

beforeAll(async () => {
  // The old system: knows one password for every address, never answers for "slow-" addresses.
  legacy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { email: string; password: string };
      legacyRequests.push(body);
      if (body.email.startsWith('slow-')) return void held.push(res);
      if (body.email.startsWith('broken-')) return void res.writeHead(500).end('down');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ verified: body.password === LEGACY_PASSWORD }));
    });
  });
  await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve));
  server = await startTestServer({
    import: { firebase_scrypt: FIREBASE },
    // Every sign-in here comes from 127.0.0.1: only the per-account count is under test.
    throttle: { ip: { free_attempts: 1000 } },
    legacy_verify: { url: `http://127.0.0.1:${(legacy.address() as AddressInfo).port}/verify`, secret: LEGACY_SECRET, timeout: '1s' },
  });
  app = await appClient(server, 'spa');
});
afterAll(async () => {
  for (const res of held) res.destroy();
  await new Promise((resolve) => legacy?.close(resolve));
  await server?.close();
});

/** An account as the import stores it: the password field through the line format's parser. */
async function importedAccount(password: unknown, options: { externalId?: string | null; email?: string } = {}): Promise<string> {
  const email = options.email ?? uniqueEmail('imported');
  const parse = createRecordParser({ now: new Date(), firebaseScrypt: true });
  const parsed = parse({ email, ...(password === undefined ? {} : { password }) });
  if (!parsed.ok) throw new Error(parsed.error);
  const now = server.clock.now();
  await server.parley.storage.db.insertInto('accounts').values({
    id: randomUUID(), email, name: null, locale: 'en', password_hash: parsed.record.passwordHash ?? null,
    external_id: options.externalId === undefined ? `old-${randomUUID()}` : options.externalId,
    email_verified_at: now, created_at: now, updated_at: now,
  }).execute();
  return email;
}

const storedHash = async (email: string) => (await server.parley.storage.db.selectFrom('accounts').select('password_hash')
  .where('email', '=', email).executeTakeFirstOrThrow()).password_hash;

async function attempt(email: string, password: string) {
  const browser = new HttpBrowser();
  const page = await signIn(browser, await browser.navigate((await authorizationRequest(app)).url), email, app.redirectUri, password);
  return { signedIn: page.url.startsWith(app.redirectUri), status: page.status };
}

const failures = async (email: string) => (await server.parley.storage.db.selectFrom('login_throttle').select('failures')
  .where('key', '=', `account:${email}`).executeTakeFirst())?.failures ?? 0;

describe('signing in with an imported hash', () => {
  it.each(VECTORS)('%s: the right password signs in and leaves an argon2id hash; a wrong one does not', async (_name, field, password) => {
    const email = await importedAccount(field);
    const before = await storedHash(email);
    expect(before).toMatch(/^\$foreign\$/);

    expect(await attempt(email, `${password}!`)).toEqual({ signedIn: false, status: 401 });
    expect(await storedHash(email)).toBe(before);

    expect((await attempt(email, password)).signedIn).toBe(true);
    const after = await storedHash(email);
    expect(after).toMatch(/^\$argon2id\$/);
    // The new hash is Parley's: the same password still signs in, and the old format is gone.
    expect((await attempt(email, password)).signedIn).toBe(true);
    expect(await storedHash(email)).toBe(after);
  });
});

describe('legacy_verify', () => {
  it('asks the old system once: on its yes the password is stored as argon2id and it is not asked again', async () => {
    const email = await importedAccount(undefined);
    expect(await storedHash(email)).toBeNull();
    const asked = () => legacyRequests.filter((r) => r.email === email).length;

    expect((await attempt(email, LEGACY_PASSWORD)).signedIn).toBe(true);
    expect(asked()).toBe(1);
    expect(legacyRequests.at(-1)).toEqual({ email, password: LEGACY_PASSWORD });
    expect(await storedHash(email)).toMatch(/^\$argon2id\$/);

    expect((await attempt(email, LEGACY_PASSWORD)).signedIn).toBe(true);
    expect(await attempt(email, 'a guess')).toEqual({ signedIn: false, status: 401 });
    expect(asked()).toBe(1);
  });

  it('counts the old system\'s no as a failed sign-in, and keeps asking until it says yes', async () => {
    const email = await importedAccount(undefined);
    expect(await attempt(email, 'not it')).toEqual({ signedIn: false, status: 401 });
    expect(await failures(email)).toBe(1);
    expect(await storedHash(email)).toBeNull();
    expect((await attempt(email, LEGACY_PASSWORD)).signedIn).toBe(true);
  });

  it('counts a timeout or an error of the old system as a failed sign-in, never a 500, and throttles', async () => {
    const slow = await importedAccount(undefined, { email: `slow-${randomUUID()}@example.com` });
    const started = Date.now();
    expect(await attempt(slow, LEGACY_PASSWORD)).toEqual({ signedIn: false, status: 401 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await failures(slow)).toBe(1);
    expect(await storedHash(slow)).toBeNull();

    const broken = await importedAccount(undefined, { email: `broken-${randomUUID()}@example.com` });
    const limit = server.config.throttle.account.free_attempts;
    for (let i = 0; i < limit; i += 1) expect((await attempt(broken, LEGACY_PASSWORD)).status).toBe(401);
    const asked = legacyRequests.filter((r) => r.email === broken).length;
    expect(await attempt(broken, LEGACY_PASSWORD)).toEqual({ signedIn: false, status: 429 });
    // Throttled before anyone is asked.
    expect(legacyRequests.filter((r) => r.email === broken).length).toBe(asked);
  });

  it('is not asked for an account that did not come from an import', async () => {
    const email = await importedAccount(undefined, { externalId: null });
    const before = legacyRequests.length;
    expect(await attempt(email, LEGACY_PASSWORD)).toEqual({ signedIn: false, status: 401 });
    expect(legacyRequests.length).toBe(before);
  });
});
