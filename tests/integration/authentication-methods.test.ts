import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolmentOf, purgeSignInLeftovers } from '../../src/accounts/authentication-methods.ts';
import { createEmailCodes } from '../../src/accounts/email-codes.ts';
import { createPasskeys } from '../../src/accounts/passkeys.ts';
import { createRecoveryCodes } from '../../src/accounts/recovery-codes.ts';
import { createSecondFactorThrottle } from '../../src/accounts/second-factor-throttle.ts';
import { createTotp } from '../../src/accounts/totp.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Storage } from '../../src/storage/database.ts';
import { insertAccount } from '../support/accounts.ts';
import { SoftwareAuthenticator } from '../support/authenticator.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';

// What an account has set up, as the MFA policy and the account page read it, and the purge of
// what sign-ins leave behind.
describe.each(BACKENDS)('authentication methods on $name', (backend) => {
  let storage: Storage;
  let now = new Date('2026-03-01T09:00:00Z');
  const clock = () => now;
  const config = loadConfig({ env: {}, overrides: { env: 'test', issuer: 'https://id.example.test' } });

  beforeAll(async () => { storage = await openTestStorage(backend); });
  afterAll(async () => { await storage.close(); });

  it('sums up password, passkeys, a confirmed authenticator app and unused recovery codes', async () => {
    const db = storage.db;
    const throttle = createSecondFactorThrottle(db, config.mfa.throttle, clock);
    const totp = createTotp({ db, config, clock, throttle });
    const recovery = createRecoveryCodes({ db, config, clock, throttle });
    const passkeys = createPasskeys({ db, config, clock, logger: pino({ level: 'silent' }) });
    const account = await insertAccount(db, { now });
    expect(await enrolmentOf(db, account.id)).toEqual({ password: true, passkeys: 0, totp: false, recoveryCodes: 0 });

    const { secret } = await totp.begin(account.id, account.email);
    expect((await enrolmentOf(db, account.id)).totp).toBe(false);
    await totp.confirm(account.id, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: now.getTime() }));
    const [code] = await recovery.generate(account.id);
    await recovery.verify(account.id, code!);
    for (let i = 0; i < 2; i++) {
      const binding = `session-${randomUUID()}`;
      const options = await passkeys.registrationOptions({ binding, user: { id: account.id, name: account.email } });
      await passkeys.register({ binding, accountId: account.id, response: new SoftwareAuthenticator().register(options, 'https://id.example.test') });
    }
    expect(await enrolmentOf(db, account.id)).toEqual({ password: true, passkeys: 2, totp: true, recoveryCodes: 9 });
    expect(await enrolmentOf(db, randomUUID())).toEqual({ password: false, passkeys: 0, totp: false, recoveryCodes: 0 });

    // Deleting the account takes everything with it.
    await db.deleteFrom('accounts').where('id', '=', account.id).execute();
    for (const table of ['webauthn_credentials', 'totp_secrets', 'recovery_codes'] as const) {
      expect(await db.selectFrom(table).select('account_id').where('account_id', '=', account.id).execute()).toEqual([]);
    }
  });

  it('purges expired challenges and spent email codes, and keeps live ones', async () => {
    const db = storage.db;
    const passkeys = createPasskeys({ db, config, clock, logger: pino({ level: 'silent' }) });
    const codes = createEmailCodes({ db, config, clock });
    const account = await insertAccount(db, { now });
    const stale = { binding: `old-${randomUUID()}` };
    await passkeys.authenticationOptions(stale);
    await codes.issue(account.email);
    now = new Date(now.getTime() + 2 * 3600_000);
    const live = { binding: `new-${randomUUID()}` };
    await passkeys.authenticationOptions(live);
    expect(await purgeSignInLeftovers(db, now)).toBeGreaterThanOrEqual(2);
    expect(await db.selectFrom('webauthn_challenges').select('binding').where('binding', 'in', [stale.binding, live.binding]).execute()).toEqual([live]);
    expect(await db.selectFrom('email_codes').select('id').where('email', '=', account.email).execute()).toEqual([]);
  });
});
