import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolmentOf } from '../../src/accounts/authentication-methods.ts';
import { CredentialError } from '../../src/accounts/credential-errors.ts';
import { createPasskeys, purgeExpiredChallenges, type Passkeys } from '../../src/accounts/passkeys.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import type { Storage } from '../../src/storage/database.ts';
import { insertAccount } from '../support/accounts.ts';
import { SoftwareAuthenticator } from '../support/authenticator.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';

// Passkey registration and sign-in against a real database, answered by an in-process
// authenticator that signs exactly what a browser's would.

const ISSUER = 'https://id.example.test';
const ORIGIN = 'https://id.example.test';

async function rejection(promise: Promise<unknown>): Promise<CredentialError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof CredentialError)) throw new Error(`expected a CredentialError, got ${String(error)}`);
  return error;
}

describe.each(BACKENDS)('passkeys on $name', (backend) => {
  let storage: Storage;
  let now = new Date('2026-03-01T09:00:00Z');
  const clock = () => now;
  const logLines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _encoding, done) { logLines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>); done(); },
  }));

  function passkeysWith(overrides: Record<string, unknown> = {}): Passkeys {
    const config = loadConfig({ env: {}, overrides: deepMerge({ env: 'test', issuer: ISSUER }, overrides) as Record<string, unknown> });
    return createPasskeys({ db: storage.db, config, clock, logger });
  }
  let passkeys: Passkeys;

  beforeAll(async () => {
    storage = await openTestStorage(backend);
    passkeys = passkeysWith();
  });
  afterAll(async () => { await storage.close(); });

  /** Registers a passkey for an existing account in a session of its own. */
  async function registerPasskey(authenticator: SoftwareAuthenticator, account: { id: string; email: string }, name?: string) {
    const binding = `session-${randomUUID()}`;
    const options = await passkeys.registrationOptions({ binding, user: { id: account.id, name: account.email } });
    return passkeys.register({ binding, accountId: account.id, response: authenticator.register(options, ORIGIN), name });
  }

  /** A sign-in by passkey (no account known beforehand): options, the authenticator's answer, verification. */
  async function signIn(authenticator: SoftwareAuthenticator, binding = `interaction-${randomUUID()}`) {
    const options = await passkeys.authenticationOptions({ binding });
    return passkeys.authenticate({ binding, response: authenticator.authenticate(options, ORIGIN) });
  }

  it('registers a discoverable passkey with user verification, then signs in with it and moves the counter on', async () => {
    const account = await insertAccount(storage.db, { now });
    const authenticator = new SoftwareAuthenticator();
    const binding = `session-${randomUUID()}`;
    const options = await passkeys.registrationOptions({ binding, user: { id: account.id, name: account.email, displayName: 'Ann' } });
    expect(options.rp).toEqual({ id: 'id.example.test', name: 'Parley' });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'required' });
    expect(options.attestation).toBe('none');
    expect(Buffer.from(options.user.id, 'base64url').toString('utf8')).toBe(account.id);

    const registered = await passkeys.register({ binding, accountId: account.id, response: authenticator.register(options, ORIGIN), name: '  Work laptop ' });
    expect(registered).toMatchObject({ accountId: account.id, name: 'Work laptop', deviceType: 'singleDevice', backedUp: false, lastUsedAt: null });
    expect(registered.transports).toEqual(['internal', 'hybrid']);

    now = new Date(now.getTime() + 60_000);
    const signedIn = await signIn(authenticator);
    expect(signedIn.accountId).toBe(account.id);
    expect(signedIn.passkey.lastUsedAt).toEqual(now);
    const row = await storage.db.selectFrom('webauthn_credentials').select(['counter', 'last_used_at']).where('id', '=', registered.id).executeTakeFirstOrThrow();
    expect(Number(row.counter)).toBe(1);
    expect((await signIn(authenticator)).accountId).toBe(account.id);
    expect(Number((await storage.db.selectFrom('webauthn_credentials').select('counter').where('id', '=', registered.id).executeTakeFirstOrThrow()).counter)).toBe(2);
    expect(await passkeys.list(account.id)).toEqual([expect.objectContaining({ id: registered.id, name: 'Work laptop' })]);
  });

  it('registers an account with a passkey alone: the account is created in the same transaction, before the passkey row', async () => {
    const accountId = randomUUID();
    const email = `passkey-only-${accountId}@example.com`;
    const binding = `interaction-${randomUUID()}`;
    const authenticator = new SoftwareAuthenticator({ synced: true });
    const options = await passkeys.registrationOptions({ binding, user: { id: accountId, name: email } });
    const passkey = await passkeys.register({ binding, accountId, response: authenticator.register(options, ORIGIN) }, async (trx) => {
      await trx.insertInto('accounts').values({ id: accountId, email, name: null, locale: 'en', password_hash: null, email_verified_at: null, created_at: now, updated_at: now }).execute();
    });
    expect(passkey.deviceType).toBe('multiDevice');
    expect(passkey.backedUp).toBe(true);
    expect((await signIn(authenticator)).accountId).toBe(accountId);
    expect(await enrolmentOf(storage.db, accountId)).toEqual({ password: false, passkeys: 1, totp: false, recoveryCodes: 0 });
  });

  it('writes nothing when the transaction alongside fails', async () => {
    const account = await insertAccount(storage.db, { now });
    const binding = `session-${randomUUID()}`;
    const options = await passkeys.registrationOptions({ binding, user: { id: account.id, name: account.email } });
    const failing = passkeys.register({ binding, accountId: account.id, response: new SoftwareAuthenticator().register(options, ORIGIN) }, async () => {
      throw new Error('outbox down');
    });
    await expect(failing).rejects.toThrow('outbox down');
    expect(await passkeys.list(account.id)).toEqual([]);
  });

  it('refuses a replayed answer: each challenge is answered once, for registration and for sign-in', async () => {
    const account = await insertAccount(storage.db, { now });
    const authenticator = new SoftwareAuthenticator();
    const binding = `session-${randomUUID()}`;
    const options = await passkeys.registrationOptions({ binding, user: { id: account.id, name: account.email } });
    const response = authenticator.register(options, ORIGIN);
    await passkeys.register({ binding, accountId: account.id, response });
    expect((await rejection(passkeys.register({ binding, accountId: account.id, response }))).code).toBe('challenge_invalid');

    const signInBinding = `interaction-${randomUUID()}`;
    const request = await passkeys.authenticationOptions({ binding: signInBinding });
    const assertion = authenticator.authenticate(request, ORIGIN);
    await passkeys.authenticate({ binding: signInBinding, response: assertion });
    expect((await rejection(passkeys.authenticate({ binding: signInBinding, response: assertion }))).code).toBe('challenge_invalid');
  });

  it('lets exactly one of twenty parallel answers to one challenge through', async () => {
    const account = await insertAccount(storage.db, { now });
    const authenticator = new SoftwareAuthenticator({ countsSignatures: false });
    await registerPasskey(authenticator, account);
    const binding = `interaction-${randomUUID()}`;
    const assertion = authenticator.authenticate(await passkeys.authenticationOptions({ binding }), ORIGIN);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => passkeys.authenticate({ binding, response: assertion })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const codes = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as CredentialError).code);
    expect(codes).toEqual(Array.from({ length: 19 }, () => 'challenge_invalid'));
  });

  it('refuses a challenge answered from another sign-in, after it expired, or for the other purpose', async () => {
    const account = await insertAccount(storage.db, { now });
    const authenticator = new SoftwareAuthenticator();
    await registerPasskey(authenticator, account);

    const binding = `interaction-${randomUUID()}`;
    const stolen = authenticator.authenticate(await passkeys.authenticationOptions({ binding }), ORIGIN);
    expect((await rejection(passkeys.authenticate({ binding: `interaction-${randomUUID()}`, response: stolen }))).code).toBe('challenge_invalid');
    // Answering it from the wrong place did not spend it for its own sign-in.
    expect((await passkeys.authenticate({ binding, response: stolen })).accountId).toBe(account.id);

    const late = `interaction-${randomUUID()}`;
    const lateAnswer = authenticator.authenticate(await passkeys.authenticationOptions({ binding: late }), ORIGIN);
    now = new Date(now.getTime() + 5 * 60_000 + 1000);
    expect((await rejection(passkeys.authenticate({ binding: late, response: lateAnswer }))).code).toBe('challenge_invalid');
    expect(await purgeExpiredChallenges(storage.db, now)).toBeGreaterThanOrEqual(1);

    const registrationBinding = `session-${randomUUID()}`;
    const creation = await passkeys.registrationOptions({ binding: registrationBinding, user: { id: account.id, name: account.email } });
    // A registration challenge (same binding, same account) signed as an assertion.
    const misused = authenticator.authenticate({ challenge: creation.challenge, rpId: 'id.example.test' }, ORIGIN);
    expect((await rejection(passkeys.authenticate({ binding: registrationBinding, accountId: account.id, response: misused }))).code).toBe('challenge_invalid');

    // A challenge handed out for a known account is not one for a passkey sign-in, nor the reverse.
    const secondFactor = `interaction-${randomUUID()}`;
    const forAccount = authenticator.authenticate(await passkeys.authenticationOptions({ binding: secondFactor, accountId: account.id }), ORIGIN);
    expect((await rejection(passkeys.authenticate({ binding: secondFactor, response: forAccount }))).code).toBe('challenge_invalid');
    const discoverable = `interaction-${randomUUID()}`;
    const forAnyone = authenticator.authenticate(await passkeys.authenticationOptions({ binding: discoverable }), ORIGIN);
    expect((await rejection(passkeys.authenticate({ binding: discoverable, accountId: account.id, response: forAnyone }))).code).toBe('challenge_invalid');
  });

  it("refuses another account's passkey when the sign-in already knows the account", async () => {
    const owner = await insertAccount(storage.db, { now });
    const victim = await insertAccount(storage.db, { now });
    const ownersAuthenticator = new SoftwareAuthenticator();
    await registerPasskey(ownersAuthenticator, owner);
    await registerPasskey(new SoftwareAuthenticator(), victim);

    const binding = `interaction-${randomUUID()}`;
    const options = await passkeys.authenticationOptions({ binding, accountId: victim.id });
    expect(options.allowCredentials).toHaveLength(1);
    // The authenticator ignores the allow list and signs with its own credential.
    const answer = ownersAuthenticator.authenticate({ ...options, allowCredentials: [] }, ORIGIN);
    expect((await rejection(passkeys.authenticate({ binding, accountId: victim.id, response: answer }))).code).toBe('passkey_unknown');
  });

  it('refuses an answer whose user handle names someone else, a wrong origin, and a missing user verification', async () => {
    const account = await insertAccount(storage.db, { now });
    const authenticator = new SoftwareAuthenticator();
    await registerPasskey(authenticator, account);

    const binding = `interaction-${randomUUID()}`;
    const answer = authenticator.authenticate(await passkeys.authenticationOptions({ binding }), ORIGIN);
    const forged = { ...answer, response: { ...answer.response, userHandle: Buffer.from(randomUUID()).toString('base64url') } };
    expect((await rejection(passkeys.authenticate({ binding, response: forged }))).code).toBe('passkey_not_verified');

    const phishing = `interaction-${randomUUID()}`;
    const phished = authenticator.authenticate(await passkeys.authenticationOptions({ binding: phishing }), 'https://id.example.test.evil.example');
    expect((await rejection(passkeys.authenticate({ binding: phishing, response: phished }))).code).toBe('passkey_not_verified');

    const presenceOnly = new SoftwareAuthenticator({ userVerification: false });
    const other = await insertAccount(storage.db, { now });
    const registration = `session-${randomUUID()}`;
    const creation = await passkeys.registrationOptions({ binding: registration, user: { id: other.id, name: other.email } });
    expect((await rejection(passkeys.register({ binding: registration, accountId: other.id, response: presenceOnly.register(creation, ORIGIN) }))).code)
      .toBe('passkey_not_verified');
  });

  it('refuses and logs a signature counter that goes backwards (a cloned authenticator)', async () => {
    const account = await insertAccount(storage.db, { now });
    const original = new SoftwareAuthenticator();
    const passkey = await registerPasskey(original, account);
    await signIn(original);
    const clone = original.clone();
    await signIn(original);
    // The clone's next counter is 2, which the original already used.
    expect((await rejection(signIn(clone))).code).toBe('passkey_counter_regressed');
    expect(logLines).toContainEqual(expect.objectContaining({
      level: 40, account_id: account.id, credential_id: passkey.id, stored_counter: 2, reported_counter: 2,
    }));
    expect((await signIn(original)).accountId).toBe(account.id);
  });

  it('accepts an authenticator that keeps no counter (always 0), time after time', async () => {
    const account = await insertAccount(storage.db, { now });
    const synced = new SoftwareAuthenticator({ countsSignatures: false, synced: true });
    await registerPasskey(synced, account);
    for (let i = 0; i < 3; i++) expect((await signIn(synced)).accountId).toBe(account.id);
  });

  it('refuses a counter that falls back to 0 once the authenticator has counted', async () => {
    const account = await insertAccount(storage.db, { now });
    const counting = new SoftwareAuthenticator();
    await registerPasskey(counting, account);
    await signIn(counting);
    const reset = new SoftwareAuthenticator({ countsSignatures: false });
    reset.credentials.push(...counting.credentials.map((c) => ({ ...c })));
    expect((await rejection(signIn(reset))).code).toBe('passkey_counter_regressed');
  });

  it('renames, and removes a passkey but never the last way to sign in', async () => {
    const account = await insertAccount(storage.db, { now, password: false });
    const first = await registerPasskey(new SoftwareAuthenticator(), account, 'Phone');
    const second = await registerPasskey(new SoftwareAuthenticator(), account, 'Laptop');
    expect((await passkeys.rename(account.id, first.id, 'My phone')).name).toBe('My phone');
    expect((await rejection(passkeys.rename(account.id, first.id, ' '))).code).toBe('name_invalid');
    expect((await rejection(passkeys.rename(account.id, first.id, 'x'.repeat(65)))).code).toBe('name_invalid');
    expect((await rejection(passkeys.rename(account.id, first.id, 'tab\there'))).code).toBe('name_invalid');
    const stranger = await insertAccount(storage.db, { now });
    expect((await rejection(passkeys.rename(stranger.id, first.id, 'Mine now'))).code).toBe('passkey_unknown');
    expect((await rejection(passkeys.remove(stranger.id, first.id))).code).toBe('passkey_unknown');

    // Removing both at once: the account row lock makes the second see that the first went.
    const results = await Promise.allSettled([passkeys.remove(account.id, first.id), passkeys.remove(account.id, second.id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as CredentialError).code).toBe('last_sign_in_method');
    expect(await passkeys.list(account.id)).toHaveLength(1);
  });

  it('removes the last passkey of an account that has a password', async () => {
    const account = await insertAccount(storage.db, { now });
    const only = await registerPasskey(new SoftwareAuthenticator(), account);
    const removed: string[] = [];
    await passkeys.remove(account.id, only.id, async (_trx, passkey) => { removed.push(passkey.id); });
    expect(removed).toEqual([only.id]);
    expect(await passkeys.list(account.id)).toEqual([]);
  });

  it('refuses a credential that is stored already, and a second passkey from the same authenticator', async () => {
    const account = await insertAccount(storage.db, { now });
    const authenticator = new SoftwareAuthenticator();
    const registered = await registerPasskey(authenticator, account);
    const binding = `session-${randomUUID()}`;
    const options = await passkeys.registrationOptions({ binding, user: { id: account.id, name: account.email } });
    expect(options.excludeCredentials).toEqual([expect.objectContaining({ id: registered.id })]);
    expect(() => authenticator.register(options, ORIGIN)).toThrow(/InvalidStateError/);

    // Someone who copied the credential id and key: the id is taken.
    const other = await insertAccount(storage.db, { now });
    const copyBinding = `session-${randomUUID()}`;
    const copyOptions = await passkeys.registrationOptions({ binding: copyBinding, user: { id: other.id, name: other.email } });
    const response = new SoftwareAuthenticator().register(copyOptions, ORIGIN);
    await storage.db.updateTable('webauthn_credentials').set({ id: response.id }).where('id', '=', registered.id).execute();
    expect((await rejection(passkeys.register({ binding: copyBinding, accountId: other.id, response }))).code).toBe('passkey_already_registered');
  });

  it('refuses malformed answers without touching the database', async () => {
    const binding = `interaction-${randomUUID()}`;
    await passkeys.authenticationOptions({ binding });
    const garbage = { id: 'x', rawId: 'x', type: 'public-key', clientExtensionResults: {}, response: { clientDataJSON: 'not base64 json', authenticatorData: '', signature: '' } } as const;
    expect((await rejection(passkeys.authenticate({ binding, response: garbage }))).code).toBe('passkey_not_verified');
    expect((await rejection(passkeys.authenticate({ binding, response: {} as never }))).code).toBe('passkey_not_verified');
  });

  it('is refused while turned off', async () => {
    const off = passkeysWith({ mfa: { passkeys: { enabled: false } } });
    expect((await rejection(off.authenticationOptions({ binding: 'b' }))).code).toBe('method_disabled');
  });
});
