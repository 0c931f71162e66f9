import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountError } from '../../src/accounts/errors.ts';
import { createPasswordHasher, type PasswordHasher } from '../../src/accounts/passwords.ts';
import { createAccounts } from '../../src/accounts/service.ts';
import { createThrottle } from '../../src/accounts/throttle.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Storage } from '../../src/storage/database.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';
import { testMail } from '../support/mail.ts';

// An account registered with a passkey alone (or, later, through an upstream provider) has no
// password hash. A password sign-in to it must look exactly like a wrong password: same work,
// same answer, counted by the same throttle.
describe.each(BACKENDS)('an account without a password on $name', (backend) => {
  let storage: Storage;
  const now = new Date('2026-03-01T09:00:00Z');
  const config = loadConfig({ env: {}, overrides: { env: 'test', accounts: { argon2: { memory_kib: 8192, iterations: 1, parallelism: 1 } } } });

  beforeAll(async () => { storage = await openTestStorage(backend); });
  afterAll(async () => { await storage.close(); });

  it('refuses a password sign-in as invalid_credentials, after the dummy verification, and counts the failure', async () => {
    const real = createPasswordHasher(config.accounts.argon2);
    const calls: string[] = [];
    const hasher: PasswordHasher = {
      ...real,
      verify: async (hash, password) => { calls.push('verify'); return real.verify(hash, password); },
      verifyDummy: async (password) => { calls.push('verifyDummy'); return real.verifyDummy(password); },
    };
    const throttle = createThrottle(storage.db, config.throttle, () => now);
    const accounts = createAccounts({
      db: storage.db, config, clock: () => now, hasher, throttle,
      mail: testMail({ db: storage.db, config, clock: () => now }).outbox, logger: pino({ level: 'silent' }),
    });
    const email = `passkey-only-${randomUUID()}@example.com`;
    await storage.db.insertInto('accounts').values({
      id: randomUUID(), email, name: null, locale: 'en', password_hash: null, email_verified_at: now, created_at: now, updated_at: now,
    }).execute();

    const error = await accounts.authenticate({ email, password: 'any password at all', ip: `test-${randomUUID()}` }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(AccountError);
    expect((error as AccountError).code).toBe('invalid_credentials');
    expect(calls).toEqual(['verifyDummy']);
    const counted = await storage.db.selectFrom('login_throttle').select('failures').where('key', '=', `account:${email}`).executeTakeFirst();
    expect(counted?.failures).toBe(1);
  });
});
