import { randomUUID } from 'node:crypto';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialError } from '../../src/accounts/credential-errors.ts';
import { createEmailCodes, purgeExpiredEmailCodes, type EmailCodes } from '../../src/accounts/email-codes.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import type { DB, Storage } from '../../src/storage/database.ts';
import { insertAccount } from '../support/accounts.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';

// One-time email codes against a real database: six digits, ten minutes, five tries, single use,
// and the same work for an address with or without an account.

async function rejection(promise: Promise<unknown>): Promise<CredentialError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof CredentialError)) throw new Error(`expected a CredentialError, got ${String(error)}`);
  return error;
}

/** A code that is not `code`: the same six digits, one changed. */
const wrong = (code: string) => `${(Number(code[0]) + 1) % 10}${code.slice(1)}`;

describe.each(BACKENDS)('email codes on $name', (backend) => {
  let storage: Storage;
  let now = new Date('2026-03-01T09:00:00Z');
  const clock = () => now;
  const advance = (seconds: number) => { now = new Date(now.getTime() + seconds * 1000); };

  const emailCodesWith = (overrides: Record<string, unknown> = {}, db?: DB): EmailCodes => createEmailCodes({
    db: db ?? storage.db,
    config: loadConfig({ env: {}, overrides: deepMerge({ env: 'test' }, overrides) as Record<string, unknown> }),
    clock,
  });
  let codes: EmailCodes;

  beforeAll(async () => {
    storage = await openTestStorage(backend);
    codes = emailCodesWith();
  });
  afterAll(async () => { await storage.close(); });

  it('issues six digits for ten minutes, used once, and finds the account by its address', async () => {
    const account = await insertAccount(storage.db, { now });
    const issued = await codes.issue(`  ${account.email.toUpperCase()} `);
    expect(issued).toMatchObject({ email: account.email, accountId: account.id, expiresAt: new Date(now.getTime() + 600_000) });
    expect(issued.code).toMatch(/^\d{6}$/);
    const stored = await storage.db.selectFrom('email_codes').selectAll().where('email', '=', account.email).execute();
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(issued.code);

    expect(await codes.verify(account.email, ` ${issued.code.slice(0, 3)} ${issued.code.slice(3)} `)).toEqual({ email: account.email, accountId: account.id });
    expect((await rejection(codes.verify(account.email, issued.code))).code).toBe('code_invalid');
  });

  it('does the same for an address without an account, and says so only to the caller', async () => {
    const email = `nobody-${randomUUID()}@example.com`;
    const queries: string[] = [];
    const counting: KyselyPlugin = {
      transformQuery: (args) => { queries.push(args.node.kind); return args.node; },
      transformResult: async (args) => args.result,
    };
    const watched = emailCodesWith({}, storage.db.withPlugin(counting));
    const issued = await watched.issue(email);
    const withoutAccount = [...queries];
    queries.length = 0;
    const account = await insertAccount(storage.db, { now });
    await watched.issue(account.email);
    expect(queries).toEqual(withoutAccount);
    expect(issued.accountId).toBeNull();
    expect(await codes.verify(email, issued.code)).toEqual({ email, accountId: null });
  });

  it('refuses even the right code after five wrong tries', async () => {
    const account = await insertAccount(storage.db, { now });
    const { code } = await codes.issue(account.email);
    for (let i = 0; i < 5; i++) expect((await rejection(codes.verify(account.email, wrong(code)))).code).toBe('code_invalid');
    expect((await rejection(codes.verify(account.email, code))).code).toBe('code_exhausted');
    // A typo that could never be a code spends no try.
    const fresh = await codes.issue(account.email);
    for (let i = 0; i < 10; i++) expect((await rejection(codes.verify(account.email, 'abc'))).code).toBe('code_invalid');
    await codes.verify(account.email, fresh.code);
  });

  it('expires after ten minutes', async () => {
    const account = await insertAccount(storage.db, { now });
    const { code } = await codes.issue(account.email);
    advance(600);
    expect((await rejection(codes.verify(account.email, code))).code).toBe('code_expired');
  });

  it('counts only the newest code of an address', async () => {
    const account = await insertAccount(storage.db, { now });
    const first = await codes.issue(account.email);
    advance(1);
    const second = await codes.issue(account.email);
    if (first.code !== second.code) expect((await rejection(codes.verify(account.email, first.code))).code).toBe('code_invalid');
    await codes.verify(account.email, second.code);
  });

  it('lets exactly one of twenty parallel tries with the right code win', async () => {
    const account = await insertAccount(storage.db, { now });
    const { code } = await codes.issue(account.email);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => codes.verify(account.email, code)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as CredentialError).code);
    expect(failures).toEqual(Array.from({ length: 19 }, () => 'code_invalid'));
  });

  it('counts every one of twenty parallel wrong tries: the right code is refused after them', async () => {
    const account = await insertAccount(storage.db, { now });
    const { code } = await codes.issue(account.email);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => codes.verify(account.email, wrong(code))));
    const failures = results.map((r) => (r.status === 'rejected' ? (r.reason as CredentialError).code : 'accepted'));
    expect(failures.filter((c) => c === 'code_invalid')).toHaveLength(5);
    expect(failures.filter((c) => c === 'code_exhausted')).toHaveLength(15);
    expect((await rejection(codes.verify(account.email, code))).code).toBe('code_exhausted');
    const row = await storage.db.selectFrom('email_codes').select('attempts').where('email', '=', account.email).executeTakeFirstOrThrow();
    expect(row.attempts).toBe(5);
  });

  it('sends at most five codes an hour to an address, counted alike with or without an account', async () => {
    const account = await insertAccount(storage.db, { now });
    const nobody = `nobody-${randomUUID()}@example.com`;
    for (const email of [account.email, nobody]) {
      for (let i = 0; i < 5; i++) { await codes.issue(email); advance(60); }
      const refused = await rejection(codes.issue(email));
      expect(refused.code).toBe('too_many_requests');
      expect(refused.retryAfterSeconds).toBe(3600 - 5 * 60);
    }
    // Parallel requests cannot all slip under the limit.
    const parallel = `parallel-${randomUUID()}@example.com`;
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => codes.issue(parallel)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    advance(3600);
    await codes.issue(account.email);
  });

  it('runs the transaction alongside with the code, and issues nothing when it fails', async () => {
    const account = await insertAccount(storage.db, { now });
    await expect(codes.issue(account.email, async () => { throw new Error('outbox down'); })).rejects.toThrow('outbox down');
    expect(await storage.db.selectFrom('email_codes').select('id').where('email', '=', account.email).execute()).toEqual([]);
    const mailed: string[] = [];
    const issued = await codes.issue(account.email, async (_trx, { code }) => { mailed.push(code); });
    expect(mailed).toEqual([issued.code]);
    // A failing step after the right code undoes its use: the code still works.
    await expect(codes.verify(account.email, issued.code, async () => { throw new Error('session store down'); })).rejects.toThrow('session store down');
    await codes.verify(account.email, issued.code);
  });

  it('refuses an invalid address, and everything while turned off', async () => {
    expect((await rejection(codes.issue('not an address'))).code).toBe('email_invalid');
    const off = emailCodesWith({ mfa: { email_codes: { enabled: false } } });
    expect((await rejection(off.issue('someone@example.com'))).code).toBe('method_disabled');
  });

  it('purges codes that can no longer be used nor count', async () => {
    const account = await insertAccount(storage.db, { now });
    await codes.issue(account.email);
    advance(3601);
    expect(await purgeExpiredEmailCodes(storage.db, now)).toBeGreaterThanOrEqual(1);
    expect(await storage.db.selectFrom('email_codes').select('id').where('email', '=', account.email).execute()).toEqual([]);
  });
});
