import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KyselyPlugin } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountError, AccountValidationError } from '../../src/accounts/errors.ts';
import { createPasswordHasher, type PasswordHasher } from '../../src/accounts/passwords.ts';
import { createAccounts, type Accounts } from '../../src/accounts/service.ts';
import { createThrottle, purgeStaleThrottles, type Throttle } from '../../src/accounts/throttle.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { readMailbox, type Mailer, type MailMessage } from '../../src/mail/mailer.ts';
import type { DB, Storage } from '../../src/storage/database.ts';
import { openTestStorage } from '../support/database.ts';
import { testMail, type TestMail } from '../support/mail.ts';

// Accounts against a real database (PGlite, or PostgreSQL when TEST_DATABASE_URL is set, then
// shared with other test files: every test uses its own addresses and client addresses).

const ISSUER = 'https://id.example.test';
const PASSWORD = 'a long and quiet river';
const CHEAP_ARGON2 = { memory_kib: 8192, iterations: 1, parallelism: 1 };
const silent = pino({ level: 'silent' });

let storage: Storage;
// A clock the tests move; every timestamp Parley writes follows it.
let now = new Date('2026-03-01T09:00:00Z');
const clock = () => now;
const advance = (seconds: number) => { now = new Date(now.getTime() + seconds * 1000); };

const mailboxDirs: string[] = [];

beforeAll(async () => { storage = await openTestStorage(); });
afterAll(async () => {
  await storage?.close();
  for (const dir of mailboxDirs) rmSync(dir, { recursive: true, force: true });
});

const uniqueEmail = (label = 'user') => `${label}-${randomUUID()}@example.com`;
const uniqueIp = () => `test-${randomUUID()}`;

interface Setup {
  config: Config;
  accounts: Accounts;
  throttle: Throttle;
  hasher: PasswordHasher;
  mail: TestMail;
  /** The mails sent to this address, once the mail queued so far has been sent. */
  mailsTo(email: string): Promise<MailMessage[]>;
  /** The token of the last link of this kind sent to the address. */
  tokenSentTo(email: string, kind: 'verify-email' | 'reset-password'): Promise<string>;
}

function setup(options: {
  overrides?: Record<string, unknown>;
  db?: DB;
  hasher?: PasswordHasher;
  mailer?: Mailer;
  logger?: pino.Logger;
} = {}): Setup {
  const mailboxDir = mkdtempSync(path.join(os.tmpdir(), 'parley-accounts-mail-'));
  mailboxDirs.push(mailboxDir);
  const config = loadConfig({
    env: {},
    overrides: deepMerge({
      env: 'test',
      issuer: ISSUER,
      mail: { mailbox_dir: mailboxDir },
      accounts: { argon2: CHEAP_ARGON2 },
    }, options.overrides ?? {}) as Record<string, unknown>,
  });
  const db = options.db ?? storage.db;
  const hasher = options.hasher ?? createPasswordHasher(config.accounts.argon2);
  const throttle = createThrottle(db, config.throttle, clock);
  const mail = testMail({ db, config, clock, ...(options.mailer ? { mailer: options.mailer } : {}), logger: options.logger ?? silent });
  const accounts = createAccounts({ db, config, clock, hasher, throttle, mail: mail.outbox, logger: options.logger ?? silent });
  const { mailsTo } = mail;
  return {
    config, accounts, throttle, hasher, mail, mailsTo,
    async tokenSentTo(email, kind) {
      const pattern = new RegExp(`^${ISSUER}/${kind}\\?token=([A-Za-z0-9_-]{43})$`, 'm');
      const tokens = (await mailsTo(email)).map((m) => pattern.exec(m.text)?.[1]).filter((t) => t !== undefined);
      const token = tokens.at(-1);
      if (!token) throw new Error(`no ${kind} link was sent to ${email}`);
      return token;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<AccountError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof AccountError)) throw new Error(`expected an AccountError, got ${String(error)}`);
  return error;
}

/** The cost parameters a PHC-format argon2 hash was made with. */
function argon2Params(hash: string): Record<string, number> {
  const params = hash.split('$')[3] ?? '';
  return Object.fromEntries(params.split(',').map((pair) => pair.split('=')).map(([key, value]) => [key, Number(value)]));
}

const accountByEmail = (email: string) =>
  storage.db.selectFrom('accounts').selectAll().where('email', '=', email).executeTakeFirst();

describe('registration and email verification', () => {
  it('registers, emails a verification link, and verifies once', async () => {
    const { accounts, mailsTo, tokenSentTo } = setup();
    const email = uniqueEmail('verify');
    const interactionUid = `uid-${randomUUID()}`;
    const registered = await accounts.register({ email: `  ${email.toUpperCase()} `, password: PASSWORD, name: ' Ann ', locale: 'en', interactionUid });
    expect(registered.outcome).toBe('signed_in');
    if (registered.outcome !== 'signed_in') return;
    expect(registered.account).toMatchObject({ email, name: 'Ann', locale: 'en', email_verified_at: null });
    expect(registered.account.password_hash).toMatch(/^\$argon2id\$/);

    const [mail] = await mailsTo(email);
    expect(mail?.subject).toBe('Confirm your email address');
    expect(mail?.text).not.toContain(PASSWORD);
    const token = await tokenSentTo(email, 'verify-email');
    expect(mail?.html).toContain(`href="${ISSUER}/verify-email?token=${token}"`);

    const verified = await accounts.verifyEmail(token);
    expect(verified.interactionUid).toBe(interactionUid);
    expect(verified.account.email_verified_at).toEqual(now);
    expect((await accounts.findById(registered.account.id))?.email_verified_at).toEqual(now);
    expect((await rejection(accounts.verifyEmail(token))).code).toBe('token_invalid');
  });

  it('refuses an expired verification link and leaves the address unverified', async () => {
    const { accounts, config, tokenSentTo } = setup();
    const email = uniqueEmail('expired');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    const token = await tokenSentTo(email, 'verify-email');
    advance(config.accounts.verification_ttl + 1);
    expect((await rejection(accounts.verifyEmail(token))).code).toBe('token_expired');
    expect((await accountByEmail(email))?.email_verified_at).toBeNull();
  });

  it('refuses malformed, unknown and wrong-purpose tokens as invalid', async () => {
    const { accounts, tokenSentTo } = setup();
    const email = uniqueEmail('purpose');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    await accounts.requestPasswordReset(email, 'en', uniqueIp());
    const resetToken = await tokenSentTo(email, 'reset-password');
    for (const token of ['', 'short', `${'A'.repeat(43)}`, resetToken]) {
      expect((await rejection(accounts.verifyEmail(token))).code, token).toBe('token_invalid');
    }
  });

  it('reports every field problem at once and creates nothing', async () => {
    const { accounts } = setup();
    const error = await rejection(accounts.register({ email: 'not an email', password: 'short', locale: 'en' }));
    expect(error).toBeInstanceOf(AccountValidationError);
    expect((error as AccountValidationError).fields).toEqual(new Map([['email', { code: 'invalid_email' }], ['password', { code: 'password_too_short' }]]));
    expect(error.code).toBe('invalid_email');
    expect(error.field).toBe('email');
    expect(await accountByEmail('not an email')).toBeUndefined();
  });

  it('refuses common passwords and the email address as a password', async () => {
    const { accounts } = setup();
    const email = uniqueEmail('context');
    const common = await rejection(accounts.register({ email, password: 'Password123', locale: 'en' }));
    expect((common as AccountValidationError).fields).toEqual(new Map([['password', { code: 'password_common' }]]));
    const own = await rejection(accounts.register({ email, password: email.toUpperCase(), locale: 'en' }));
    expect((own as AccountValidationError).fields).toEqual(new Map([['password', { code: 'password_common' }]]));
    expect(await accountByEmail(email)).toBeUndefined();
  });

  it('records account.created and the verification mail in the same transaction, without the password', async () => {
    const { accounts, mailsTo, tokenSentTo } = setup();
    const email = uniqueEmail('event');
    const registered = await accounts.register({ email, password: PASSWORD, locale: 'en' });
    if (registered.outcome !== 'signed_in') throw new Error('expected signed_in');
    const outbox = () => storage.db.selectFrom('outbox_events').selectAll().where('account_id', '=', registered.account.id).orderBy('seq').execute();
    const rows = await outbox();
    expect(rows.map((e) => ({ type: e.type, payload: e.payload, created_at: e.created_at }))).toEqual([
      { type: 'account.created', payload: { version: 1, account_id: registered.account.id, email_verified: false }, created_at: now },
      { type: 'mail.verify_email', payload: { kind: 'verify_email', to: email, locale: 'en', token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) }, created_at: now },
    ]);
    expect(JSON.stringify(rows)).not.toContain(PASSWORD);
    // Once sent, the mail's row keeps neither the address nor the token of the link.
    expect(await mailsTo(email)).toHaveLength(1);
    expect((rows[1]!.payload as { token: string }).token).toBe(await tokenSentTo(email, 'verify-email'));
    expect((await outbox())[1]!.payload).toEqual({ kind: 'verify_email', locale: 'en' });
  });

  it('leaves neither account nor event behind when registration fails part-way', async () => {
    // A database that fails the verification token insert, the last write of the registration.
    let insertedAccountId: string | undefined;
    const failTokenInsert: KyselyPlugin = {
      transformQuery(args) {
        const node = args.node as { kind: string; into?: { table?: { identifier?: { name?: string } } } };
        if (node.kind === 'InsertQueryNode' && node.into?.table?.identifier?.name === 'email_tokens') {
          throw new Error('simulated failure');
        }
        return args.node;
      },
      async transformResult(args) {
        const row = args.result.rows[0] as { id?: string; password_hash?: string } | undefined;
        if (row?.password_hash && row.id) insertedAccountId = row.id;
        return args.result;
      },
    };
    const { accounts } = setup({ db: storage.db.withPlugin(failTokenInsert) });
    const email = uniqueEmail('atomic');
    await expect(accounts.register({ email, password: PASSWORD, locale: 'en' })).rejects.toThrow('simulated failure');
    expect(insertedAccountId).toBeDefined(); // the account row was written, then rolled back
    expect(await accountByEmail(email)).toBeUndefined();
    const events = await storage.db.selectFrom('outbox_events').select('id').where('account_id', '=', insertedAccountId!).execute();
    expect(events).toEqual([]);
  });

  it('without required verification: says a taken address is taken, and creates nothing', async () => {
    const { accounts, mailsTo } = setup({ overrides: { accounts: { require_verified_email: false } } });
    const email = uniqueEmail('taken');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    const error = await rejection(accounts.register({ email: email.toUpperCase(), password: 'another long password', locale: 'en' }));
    expect(error.code).toBe('email_taken');
    expect(error.field).toBe('email');
    expect(await mailsTo(email)).toHaveLength(1);
    const rows = await storage.db.selectFrom('accounts').select('id').where('email', '=', email).execute();
    expect(rows).toHaveLength(1);
  });

  it('settles two registrations of one address racing each other as one account and one "taken"', async () => {
    const { accounts } = setup({ overrides: { accounts: { require_verified_email: false } } });
    const email = uniqueEmail('race');
    const results = await Promise.allSettled([
      accounts.register({ email, password: PASSWORD, locale: 'en' }),
      accounts.register({ email, password: PASSWORD, locale: 'en' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected.map((r) => (r.reason as AccountError).code)).toEqual(['email_taken']);
  });

  it('with required verification: answers a taken address as a new one, does the same hashing, and tells the owner', async () => {
    let hashes = 0;
    const real = createPasswordHasher(CHEAP_ARGON2);
    const counting: PasswordHasher = { ...real, hash: (password) => { hashes++; return real.hash(password); } };
    const { accounts, mailsTo } = setup({ overrides: { accounts: { require_verified_email: true } }, hasher: counting });
    const email = uniqueEmail('owner');

    const first = await accounts.register({ email, password: PASSWORD, locale: 'ja' });
    expect(first.outcome).toBe('verification_required');
    if (first.outcome !== 'verification_required') return;
    expect(first.accountId).toBe((await accountByEmail(email))?.id);
    expect(hashes).toBe(1);

    const second = await accounts.register({ email, password: 'somebody else entirely', locale: 'en' });
    expect(second).toEqual({ outcome: 'verification_required', accountId: undefined });
    expect(hashes).toBe(2);

    const mails = await mailsTo(email);
    expect(mails).toHaveLength(2);
    // In the owner's language, with a way back in.
    expect(mails[1]?.subject).toBe('お使いのメールアドレスでアカウントの作成が試みられました');
    expect(mails[1]?.text).toContain(`${ISSUER}/forgot-password`);
    const rows = await storage.db.selectFrom('accounts').select('password_hash').where('email', '=', email).execute();
    expect(rows).toHaveLength(1);
    expect(await real.verify(rows[0]!.password_hash!, PASSWORD)).toBe(true);
  });

  it('keeps registering when the mail server is down, sends the mail once it is back, and logs no token', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(line); } });
    const sent: MailMessage[] = [];
    let serverUp = false;
    const flaky: Mailer = {
      send: async (message) => {
        if (!serverUp) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ESOCKET' });
        sent.push(message);
      },
      close: async () => {},
    };
    const { accounts, config, mail } = setup({ mailer: flaky, logger });
    const email = uniqueEmail('nomail');
    const registered = await accounts.register({ email, password: PASSWORD, locale: 'en' });
    expect(registered.outcome).toBe('signed_in');
    const tokens = await storage.db.selectFrom('email_tokens').innerJoin('accounts', 'accounts.id', 'email_tokens.account_id')
      .select('token_hash').where('accounts.email', '=', email).execute();
    expect(tokens).toHaveLength(1);

    await mail.deliver();
    expect(sent).toEqual([]);
    expect(lines.some((l) => l.includes('mail delivery failed; will retry'))).toBe(true);
    // The mail server is back; the retry is due within backoff_base.
    serverUp = true;
    advance(config.events.backoff_base);
    await mail.deliver();
    expect(sent.map((m) => m.to)).toEqual([email]);
    expect(sent[0]!.text).toContain(`${ISSUER}/verify-email?token=`);
    expect(lines.join('\n')).not.toMatch(/token=|[A-Za-z0-9_-]{43}/);
    expect(lines.join('\n')).not.toContain(PASSWORD);
  });
});

describe('sign-in', () => {
  it('signs in with any spelling of the address', async () => {
    const { accounts } = setup();
    const email = uniqueEmail('signin');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    const account = await accounts.authenticate({ email: ` ${email.toUpperCase()}`, password: PASSWORD, ip: uniqueIp() });
    expect(account.email).toBe(email);
  });

  it('gives an unknown address and a wrong password the identical error', async () => {
    const { accounts } = setup();
    const email = uniqueEmail('known');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    const wrong = await rejection(accounts.authenticate({ email, password: 'not the password', ip: uniqueIp() }));
    const unknown = await rejection(accounts.authenticate({ email: uniqueEmail('nobody'), password: 'not the password', ip: uniqueIp() }));
    const shape = (e: AccountError) => ({ class: e.constructor, code: e.code, field: e.field, message: e.message, retryAfterSeconds: e.retryAfterSeconds });
    expect(shape(wrong)).toEqual(shape(unknown));
    expect(wrong.code).toBe('invalid_credentials');
  });

  it('throttles an address after free_attempts failures, even with the right password, and clears on success', async () => {
    const { accounts, throttle } = setup({
      overrides: { throttle: { account: { free_attempts: 3, base_delay: '2s', max_delay: '1m' }, ip: { free_attempts: 100 } } },
    });
    const email = uniqueEmail('throttled');
    const ip = uniqueIp();
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    for (let i = 0; i < 3; i++) {
      expect((await rejection(accounts.authenticate({ email, password: 'wrong guess', ip }))).code).toBe('invalid_credentials');
    }
    const blocked = await rejection(accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() }));
    expect(blocked.code).toBe('throttled');
    expect(blocked.retryAfterSeconds).toBe(2);

    advance(2);
    expect((await rejection(accounts.authenticate({ email, password: 'wrong guess', ip }))).code).toBe('invalid_credentials');
    expect((await rejection(accounts.authenticate({ email, password: PASSWORD, ip }))).retryAfterSeconds).toBe(4);

    advance(4);
    await accounts.authenticate({ email: email.toUpperCase(), password: PASSWORD, ip });
    await rejection(accounts.authenticate({ email, password: 'wrong guess', ip }));
    expect(await throttle.check({ email, ip })).toBeUndefined();
  });

  it('throttles an unknown address exactly like a known one', async () => {
    const overrides = { throttle: { account: { free_attempts: 2, base_delay: '5s', max_delay: '1m' }, ip: { free_attempts: 100 } } };
    const { accounts } = setup({ overrides });
    const known = uniqueEmail('known');
    await accounts.register({ email: known, password: PASSWORD, locale: 'en' });
    const outcome = async (email: string) => {
      const errors = [];
      for (let i = 0; i < 3; i++) errors.push(await rejection(accounts.authenticate({ email, password: 'wrong guess', ip: uniqueIp() })));
      return errors.map((e) => [e.code, e.retryAfterSeconds]);
    };
    const forKnown = await outcome(known);
    expect(forKnown).toEqual([['invalid_credentials', undefined], ['invalid_credentials', undefined], ['throttled', 5]]);
    expect(await outcome(uniqueEmail('unknown'))).toEqual(forKnown);
  });

  it('throttles a client address trying many accounts, and a success elsewhere does not clear it', async () => {
    const { accounts } = setup({ overrides: { throttle: { ip: { free_attempts: 3, base_delay: '10s', max_delay: '1m' } } } });
    const ip = uniqueIp();
    const email = uniqueEmail('victim');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    for (let i = 0; i < 3; i++) await rejection(accounts.authenticate({ email: uniqueEmail('spray'), password: 'wrong guess', ip }));
    const blocked = await rejection(accounts.authenticate({ email, password: PASSWORD, ip }));
    expect([blocked.code, blocked.retryAfterSeconds]).toEqual(['throttled', 10]);
    // From another address the account is fine, and that success leaves the first address blocked.
    await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() });
    expect((await rejection(accounts.authenticate({ email, password: PASSWORD, ip }))).code).toBe('throttled');
  });

  it('rehashes at sign-in when the argon2 parameters change, and only with the right password', async () => {
    const email = uniqueEmail('rehash');
    await setup().accounts.register({ email, password: PASSWORD, locale: 'en' });
    const before = (await accountByEmail(email))!.password_hash;
    expect(argon2Params(before!)).toEqual({ m: 8192, t: 1, p: 1 });

    const stronger = { memory_kib: 8192, iterations: 2, parallelism: 1 };
    const { accounts, hasher } = setup({ overrides: { accounts: { argon2: stronger } } });
    await rejection(accounts.authenticate({ email, password: 'wrong guess', ip: uniqueIp() }));
    expect((await accountByEmail(email))!.password_hash).toBe(before);

    const account = await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() });
    expect(argon2Params(account.password_hash!)).toEqual({ m: 8192, t: 2, p: 1 });
    expect((await accountByEmail(email))!.password_hash).toBe(account.password_hash);
    expect(hasher.needsRehash(account.password_hash!)).toBe(false);
    await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() });
  });

  it('with required verification: refuses an unverified account only after the right password, and sends a fresh link', async () => {
    const { accounts, mailsTo, tokenSentTo } = setup({ overrides: { accounts: { require_verified_email: true } } });
    const email = uniqueEmail('unverified');
    await accounts.register({ email, password: PASSWORD, locale: 'ar' });
    expect(await mailsTo(email)).toHaveLength(1);

    expect((await rejection(accounts.authenticate({ email, password: 'wrong guess', ip: uniqueIp() }))).code).toBe('invalid_credentials');
    expect(await mailsTo(email)).toHaveLength(1);

    expect((await rejection(accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() }))).code).toBe('email_not_verified');
    const mails = await mailsTo(email);
    expect(mails).toHaveLength(2);
    expect(mails[1]?.subject).toBe('تأكيد عنوان بريدك الإلكتروني');

    await accounts.verifyEmail(await tokenSentTo(email, 'verify-email'));
    expect((await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() })).email).toBe(email);
  });

  it('sends a verification link on request, and none once the address is verified', async () => {
    const { accounts, mailsTo, tokenSentTo } = setup();
    const email = uniqueEmail('resend');
    const registered = await accounts.register({ email, password: PASSWORD, locale: 'en' });
    if (registered.outcome !== 'signed_in') throw new Error('expected signed_in');
    await accounts.sendVerification(registered.account.id, { locale: 'ja', interactionUid: 'uid-resend' });
    const mails = await mailsTo(email);
    expect(mails.map((m) => m.subject)).toEqual(['Confirm your email address', 'メールアドレスの確認']);
    expect((await accounts.verifyEmail(await tokenSentTo(email, 'verify-email'))).interactionUid).toBe('uid-resend');
    await accounts.sendVerification(registered.account.id, { locale: 'en' });
    expect(await mailsTo(email)).toHaveLength(2);
  });
});

describe('throttle', () => {
  const rules = (account: Record<string, unknown>) => setup({ overrides: { throttle: { window: '1h', account, ip: { free_attempts: 1000 } } } }).throttle;

  it('doubles the delay with each further failure, up to max_delay', async () => {
    const throttle = rules({ free_attempts: 1, base_delay: '2s', max_delay: '10s' });
    const attempt = { email: uniqueEmail('doubling'), ip: uniqueIp() };
    const delays = [];
    for (let i = 0; i < 5; i++) {
      await throttle.recordFailure(attempt);
      const blocked = await throttle.check(attempt);
      delays.push(blocked?.retryAfterSeconds);
      advance(blocked?.retryAfterSeconds ?? 0);
    }
    expect(delays).toEqual([2, 4, 8, 10, 10]);
    expect(await throttle.check(attempt)).toBeUndefined();
  });

  it('forgets failures older than the window', async () => {
    const throttle = rules({ free_attempts: 3, base_delay: '2s', max_delay: '10s' });
    const attempt = { email: uniqueEmail('window'), ip: uniqueIp() };
    await throttle.recordFailure(attempt);
    await throttle.recordFailure(attempt);
    advance(3601);
    await throttle.recordFailure(attempt);
    await throttle.recordFailure(attempt);
    expect(await throttle.check(attempt)).toBeUndefined();
    await throttle.recordFailure(attempt);
    expect(await throttle.check(attempt)).toEqual({ retryAfterSeconds: 2 });
  });

  it('counts every one of many failures arriving at once', async () => {
    const throttle = rules({ free_attempts: 100, base_delay: '2s', max_delay: '10s' });
    const email = uniqueEmail('burst');
    await Promise.all(Array.from({ length: 12 }, () => throttle.recordFailure({ email, ip: uniqueIp() })));
    const row = await storage.db.selectFrom('login_throttle').select('failures').where('key', '=', `account:${email}`).executeTakeFirst();
    expect(row?.failures).toBe(12);
  });

  it('purges the rows that decide nothing any more: past the window and not blocking', async () => {
    const lenient = rules({ free_attempts: 5, base_delay: '2h', max_delay: '2h' });
    const throttle = rules({ free_attempts: 1, base_delay: '2h', max_delay: '2h' });
    const stale = { email: uniqueEmail('stale'), ip: uniqueIp() };
    const blocked = { email: uniqueEmail('blocked'), ip: uniqueIp() };
    await lenient.recordFailure(stale);
    await throttle.recordFailure(blocked);
    await throttle.recordFailure(blocked);
    advance(3601);
    await purgeStaleThrottles(storage.db, { signIn: 3600, secondFactor: 3600 }, clock());
    const keys = async (email: string) => (await storage.db.selectFrom('login_throttle').select('key').where('key', '=', `account:${email}`).execute()).length;
    // A free failure, past the window → gone. A delay still running → kept.
    expect(await keys(stale.email)).toBe(0);
    expect(await keys(blocked.email)).toBe(1);
    expect(await throttle.check(blocked)).toBeDefined();
  });
});

describe('password reset', () => {
  it('sends nothing for an unknown address, and does not throw', async () => {
    const { accounts, config, mail } = setup();
    await accounts.requestPasswordReset(uniqueEmail('ghost'), 'en', uniqueIp());
    await accounts.requestPasswordReset('not an address', 'en', uniqueIp());
    await mail.deliver();
    expect(await readMailbox(config.mail.mailbox_dir)).toEqual([]);
  });

  it('answers without calling the mail server: the delivery worker sends the mail afterwards', async () => {
    const email = uniqueEmail('slowmail');
    await setup().accounts.register({ email, password: PASSWORD, locale: 'en' });
    // A mail server that accepts each message only when the test lets it.
    const accepted: MailMessage[] = [];
    const waiting: (() => void)[] = [];
    const slow: Mailer = {
      send: (message) => new Promise((resolve) => { waiting.push(() => { accepted.push(message); resolve(); }); }),
      close: async () => {},
    };
    const { accounts, mail } = setup({ mailer: slow });
    await accounts.requestPasswordReset(email, 'en', uniqueIp());
    expect(waiting).toHaveLength(0);
    const delivering = mail.deliver();
    await expect.poll(() => waiting.length).toBe(1);
    waiting[0]!();
    await delivering;
    expect(accepted.map((m) => m.subject)).toEqual(['Reset your password']);
  });

  it('does the same database work for a known and an unknown address', async () => {
    // Each statement as the database receives it, without its values (an address, a token).
    const statements: string[] = [];
    const recorder: KyselyPlugin = {
      transformQuery(args) {
        statements.push(JSON.stringify(args.node, (key, value: unknown) => {
          if (key === 'value') return undefined;
          if (key === 'values' && Array.isArray(value) && value.every((v) => v === null || v instanceof Date || typeof v !== 'object')) return value.map(() => '?');
          return value;
        }));
        return args.node;
      },
      async transformResult(args) { return args.result; },
    };
    const known = uniqueEmail('known-reset');
    await setup().accounts.register({ email: known, password: PASSWORD, locale: 'en' });
    const { accounts, mailsTo } = setup({ db: storage.db.withPlugin(recorder) });
    const workOf = async (email: string) => {
      statements.length = 0;
      await accounts.requestPasswordReset(email, 'en', uniqueIp());
      return [...statements];
    };
    const forKnown = await workOf(known);
    const forUnknown = await workOf(uniqueEmail('unknown-reset'));
    expect(forKnown.length).toBeGreaterThan(0);
    expect(forUnknown).toEqual(forKnown);
    // Only the known address is mailed, by the worker.
    expect((await mailsTo(known)).map((m) => m.subject)).toEqual(['Reset your password']);
  });

  it('resets the password through the emailed link, once', async () => {
    const { accounts, config, tokenSentTo, throttle } = setup({ overrides: { throttle: { account: { free_attempts: 1 } } } });
    const email = uniqueEmail('reset');
    const ip = uniqueIp();
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    await rejection(accounts.authenticate({ email, password: 'forgotten it', ip }));
    expect(await throttle.check({ email, ip })).toBeDefined();

    await accounts.requestPasswordReset(email.toUpperCase(), 'en', uniqueIp());
    const token = await tokenSentTo(email, 'reset-password');
    // Looking at the link does not use it up.
    await accounts.checkResetToken(token);
    await accounts.checkResetToken(token);

    const weak = await rejection(accounts.resetPassword(token, 'short'));
    expect((weak as AccountValidationError).fields).toEqual(new Map([['password', { code: 'password_too_short' }]]));
    await accounts.checkResetToken(token);

    const account = await accounts.resetPassword(token, 'a brand new passphrase');
    expect(account.email_verified_at).toEqual(now);
    expect(await throttle.check({ email, ip })).toBeUndefined();
    expect((await rejection(accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() }))).code).toBe('invalid_credentials');
    advance(config.throttle.account.max_delay); // that failure set a delay again
    await accounts.authenticate({ email, password: 'a brand new passphrase', ip: uniqueIp() });

    expect((await rejection(accounts.resetPassword(token, 'yet another passphrase'))).code).toBe('token_invalid');
    expect((await rejection(accounts.checkResetToken(token))).code).toBe('token_invalid');
  });

  it('retires earlier reset links when one of them is used', async () => {
    const { accounts, mailsTo } = setup();
    const email = uniqueEmail('two-links');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    await accounts.requestPasswordReset(email, 'en', uniqueIp());
    await accounts.requestPasswordReset(email, 'en', uniqueIp());
    const [first, second] = (await mailsTo(email))
      .map((m) => /reset-password\?token=([A-Za-z0-9_-]{43})/.exec(m.text)?.[1])
      .filter((t) => t !== undefined);
    await accounts.resetPassword(second!, 'a brand new passphrase');
    expect((await rejection(accounts.checkResetToken(first!))).code).toBe('token_invalid');
  });

  it('refuses an expired reset link', async () => {
    const { accounts, config, tokenSentTo } = setup();
    const email = uniqueEmail('reset-expired');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    await accounts.requestPasswordReset(email, 'en', uniqueIp());
    const token = await tokenSentTo(email, 'reset-password');
    advance(config.accounts.reset_ttl + 1);
    expect((await rejection(accounts.checkResetToken(token))).code).toBe('token_expired');
    expect((await rejection(accounts.resetPassword(token, 'a brand new passphrase'))).code).toBe('token_expired');
    await accounts.authenticate({ email, password: PASSWORD, ip: uniqueIp() });
  });
});
