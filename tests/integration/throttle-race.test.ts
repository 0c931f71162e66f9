import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountError } from '../../src/accounts/errors.ts';
import { createPasswordHasher, type PasswordHasher } from '../../src/accounts/passwords.ts';
import { createAccounts, type Accounts } from '../../src/accounts/service.ts';
import { createThrottle } from '../../src/accounts/throttle.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import type { Storage } from '../../src/storage/database.ts';
import { readMailbox } from '../../src/mail/mailer.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';
import { testMail } from '../support/mail.ts';

// Limits that parallel requests must not slip past: sign-in attempts are reserved before the
// password is checked, and reset mails are counted in the same statement that allows them.
// Every backend, since PostgreSQL runs the bursts truly in parallel and PGlite interleaves them.

const PASSWORD = 'a long and quiet river';
const BURST = 40;
const silent = pino({ level: 'silent' });
const uniqueEmail = (label: string) => `${label}-${randomUUID()}@example.com`;
const uniqueIp = () => `test-${randomUUID()}`;

/**
 * Counts every password check, and holds each one until `open()`: while the gate is shut, the
 * checks of a burst are all in flight at once, as on a busy server.
 */
function gatedHasher(inner: PasswordHasher) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  let checks = 0;
  const hasher: PasswordHasher = {
    ...inner,
    async verify(hash, password) {
      checks++;
      await gate;
      return inner.verify(hash, password);
    },
    async verifyDummy(password) {
      checks++;
      await gate;
      return inner.verifyDummy(password);
    },
  };
  return { hasher, open, checks: () => checks };
}

type Outcome = 'signed_in' | AccountError['code'];

describe.each(BACKENDS)('limits under parallel requests on $name', (backend) => {
  let storage: Storage;
  const mailboxDirs: string[] = [];
  let now = new Date('2026-03-01T09:00:00Z');
  const clock = () => now;

  beforeAll(async () => { storage = await openTestStorage(backend); });
  afterAll(async () => {
    await storage?.close();
    for (const dir of mailboxDirs) rmSync(dir, { recursive: true, force: true });
  });

  function setup(overrides: Record<string, unknown>, hasher?: PasswordHasher) {
    const mailboxDir = mkdtempSync(path.join(os.tmpdir(), 'parley-race-mail-'));
    mailboxDirs.push(mailboxDir);
    const config = loadConfig({
      env: {},
      overrides: deepMerge({
        env: 'test', issuer: 'https://id.example.test', mail: { mailbox_dir: mailboxDir },
        accounts: { argon2: { memory_kib: 8192, iterations: 1, parallelism: 1 } },
      }, overrides) as Record<string, unknown>,
    });
    const mail = testMail({ db: storage.db, config, clock });
    const accounts = createAccounts({
      db: storage.db, config, clock, logger: silent,
      hasher: hasher ?? createPasswordHasher(config.accounts.argon2),
      throttle: createThrottle(storage.db, config.throttle, clock),
      mail: mail.outbox,
    });
    /** Every mail sent so far, once the mail queued so far has gone out. */
    const mailbox = async () => {
      await mail.deliver();
      return readMailbox(mailboxDir);
    };
    return { accounts, config, mailbox };
  }

  async function registered(): Promise<string> {
    const email = uniqueEmail('race');
    await setup({}).accounts.register({ email, password: PASSWORD, locale: 'en' });
    return email;
  }

  /**
   * Sends `wrong` sign-ins at once with the checks held at the gate, waits until each is either
   * refused or being checked, then sends `right` (the correct password) the same way, and only
   * then lets the checks finish.
   */
  async function burst(accounts: Accounts, gate: ReturnType<typeof gatedHasher>, wrong: { email: string; ip: string }[], right: { email: string; ip: string }) {
    let refused = 0;
    const attempt = (input: { email: string; ip: string; password: string }): Promise<Outcome> =>
      accounts.authenticate(input).then(() => 'signed_in' as const, (error: unknown) => {
        if (!(error instanceof AccountError)) throw error;
        if (error.code === 'throttled') refused++;
        return error.code;
      });
    const wrongOutcomes = wrong.map((w) => attempt({ ...w, password: 'not the password' }));
    await expect.poll(() => gate.checks() + refused, { timeout: 20_000 }).toBe(wrong.length);
    const checkedBeforeRight = gate.checks();
    const rightOutcome = attempt({ ...right, password: PASSWORD });
    await expect.poll(() => gate.checks() + refused, { timeout: 20_000 }).toBe(wrong.length + 1);
    gate.open();
    return { checkedBeforeRight, wrong: await Promise.all(wrongOutcomes), right: await rightOutcome, checks: gate.checks() };
  }

  const tally = (outcomes: readonly string[]) => outcomes.reduce<Record<string, number>>((n, o) => ({ ...n, [o]: (n[o] ?? 0) + 1 }), {});

  it('checks at most free_attempts passwords of a burst on one address, and refuses the right one after them', async () => {
    const email = await registered();
    const gate = gatedHasher(createPasswordHasher({ memory_kib: 8192, iterations: 1, parallelism: 1 }));
    const { accounts } = setup({ throttle: { account: { free_attempts: 5, base_delay: '2s', max_delay: '1m' }, ip: { free_attempts: 1000 } } }, gate.hasher);

    const result = await burst(accounts, gate, Array.from({ length: BURST }, () => ({ email, ip: uniqueIp() })), { email, ip: uniqueIp() });

    expect(result.checkedBeforeRight).toBe(5);
    expect(result.checks).toBe(5);
    expect(tally(result.wrong)).toEqual({ invalid_credentials: 5, throttled: BURST - 5 });
    expect(result.right).toBe('throttled');
    // The five failures are on record: the address waits its delay, the right password too.
    const after = await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() }).catch((e: AccountError) => e);
    expect(after).toMatchObject({ code: 'throttled', retryAfterSeconds: 2 });
    now = new Date(now.getTime() + 2000);
    expect((await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() })).email).toBe(email);
  });

  it('throttles an unknown address under a burst exactly like a known one', async () => {
    const gate = gatedHasher(createPasswordHasher({ memory_kib: 8192, iterations: 1, parallelism: 1 }));
    const { accounts } = setup({ throttle: { account: { free_attempts: 3, base_delay: '2s', max_delay: '1m' }, ip: { free_attempts: 1000 } } }, gate.hasher);
    const email = uniqueEmail('nobody');
    const result = await burst(accounts, gate, Array.from({ length: BURST }, () => ({ email, ip: uniqueIp() })), { email, ip: uniqueIp() });
    expect(result.checks).toBe(3);
    expect(tally(result.wrong)).toEqual({ invalid_credentials: 3, throttled: BURST - 3 });
  });

  it('checks at most free_attempts passwords of a burst from one client address, across many accounts', async () => {
    const victim = await registered();
    const gate = gatedHasher(createPasswordHasher({ memory_kib: 8192, iterations: 1, parallelism: 1 }));
    const { accounts } = setup({ throttle: { account: { free_attempts: 1000 }, ip: { free_attempts: 4, base_delay: '10s', max_delay: '1m' } } }, gate.hasher);
    const ip = uniqueIp();

    const result = await burst(accounts, gate, Array.from({ length: BURST }, () => ({ email: uniqueEmail('spray'), ip })), { email: victim, ip });

    expect(result.checks).toBe(4);
    expect(tally(result.wrong)).toEqual({ invalid_credentials: 4, throttled: BURST - 4 });
    expect(result.right).toBe('throttled');
    // The account itself was never tried: from elsewhere it signs in at once.
    expect((await accounts.authenticate({ email: victim, password: PASSWORD, ip: uniqueIp() })).email).toBe(victim);
  });

  it('gives a success its reservation back: right passwords from one client address, one after another, are never refused', async () => {
    const emails = await Promise.all(Array.from({ length: 6 }, () => registered()));
    const { accounts } = setup({ throttle: { ip: { free_attempts: 2, base_delay: '10s', max_delay: '1m' } } });
    const ip = uniqueIp();
    for (const email of emails) expect((await accounts.authenticate({ email, password: PASSWORD, ip })).email).toBe(email);
    // Checks under way count until they settle: two at once are within free_attempts.
    const pair = await Promise.all(emails.slice(0, 2).map((email) => accounts.authenticate({ email, password: PASSWORD, ip })));
    expect(pair.map((a) => a.email)).toEqual(emails.slice(0, 2));
  });

  it('sends at most the per-address limit of reset mails for a burst of requests, and the per-client-address limit across addresses', async () => {
    const email = await registered();
    const { accounts, mailbox } = setup({ throttle: { password_reset: { per_email: 3, per_ip: 5, window: '1h' } } });
    await Promise.all(Array.from({ length: 20 }, () => accounts.requestPasswordReset(email, 'en', uniqueIp())));
    expect(await mailbox()).toHaveLength(3);

    const ip = uniqueIp();
    const others = await Promise.all(Array.from({ length: 8 }, () => registered()));
    await Promise.all(others.map((other) => accounts.requestPasswordReset(other, 'en', ip)));
    expect(await mailbox()).toHaveLength(3 + 5);
    // Another hour, another allowance.
    now = new Date(now.getTime() + 3600_000);
    await accounts.requestPasswordReset(email, 'en', uniqueIp());
    expect(await mailbox()).toHaveLength(9);
  });

  it('takes at most five email changes an hour from a burst of requests, and mails only those', async () => {
    const email = await registered();
    const { accounts, mailbox } = setup({});
    const account = await storage.db.selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => accounts.requestEmailChange(account.id, uniqueEmail('moved'), 'en')
      .then(() => 'accepted', (error: unknown) => (error instanceof AccountError ? error.code : Promise.reject(error)))));
    expect(tally(outcomes)).toEqual({ accepted: 5, too_many_requests: 15 });
    const tokens = await storage.db.selectFrom('email_tokens').select('token_hash').where('account_id', '=', account.id).where('purpose', '=', 'change_email').execute();
    expect(tokens).toHaveLength(5);
    expect((await mailbox()).filter((m) => m.subject === 'Confirm your new email address')).toHaveLength(5);
  });
});
