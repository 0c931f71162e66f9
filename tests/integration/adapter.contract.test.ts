import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseAdapter, purgeExpired, revokeGrant } from '../../src/oidc/adapter.ts';
import type { Storage } from '../../src/storage/database.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';

// The storage contract oidc-provider relies on, run against every database Parley supports.
describe.each(BACKENDS)('oidc adapter contract on $name', (backend) => {
  let storage: Storage;
  let now = new Date('2026-01-01T00:00:00Z');
  const clock = () => now;
  const adapter = (model: string) => new DatabaseAdapter(storage.db, model, clock);

  beforeAll(async () => { storage = await openTestStorage(backend); });
  afterAll(async () => { await storage.close(); });

  it('stores, finds and replaces a payload', async () => {
    const id = randomUUID();
    await adapter('Session').upsert(id, { accountId: 'a1', uid: `uid-${id}` }, 60);
    expect(await adapter('Session').find(id)).toEqual({ accountId: 'a1', uid: `uid-${id}` });
    await adapter('Session').upsert(id, { accountId: 'a2', uid: `uid-${id}` }, 60);
    expect((await adapter('Session').find(id))?.accountId).toBe('a2');
  });

  it('keeps models apart: the same id under another model is not found', async () => {
    const id = randomUUID();
    await adapter('AccessToken').upsert(id, { grantId: 'g' }, 60);
    expect(await adapter('RefreshToken').find(id)).toBeUndefined();
  });

  it('never returns an expired row, even before the purge', async () => {
    const id = randomUUID();
    await adapter('AuthorizationCode').upsert(id, { grantId: 'g' }, 10);
    now = new Date(now.getTime() + 9_000);
    expect(await adapter('AuthorizationCode').find(id)).toBeDefined();
    now = new Date(now.getTime() + 2_000);
    expect(await adapter('AuthorizationCode').find(id)).toBeUndefined();
  });

  it('finds by uid and by user code, and not once expired', async () => {
    const id = randomUUID();
    const uid = `uid-${randomUUID()}`;
    await adapter('Session').upsert(id, { uid }, 5);
    expect((await adapter('Session').findByUid(uid))?.uid).toBe(uid);
    const deviceId = randomUUID();
    const userCode = `CODE-${randomUUID().slice(0, 8)}`;
    await adapter('DeviceCode').upsert(deviceId, { userCode }, 5);
    expect((await adapter('DeviceCode').findByUserCode(userCode))?.userCode).toBe(userCode);
    now = new Date(now.getTime() + 6_000);
    expect(await adapter('Session').findByUid(uid)).toBeUndefined();
    expect(await adapter('DeviceCode').findByUserCode(userCode)).toBeUndefined();
  });

  it('finds nothing, and does not fail, for a key with a NUL byte (a code or token from a request)', async () => {
    const id = randomUUID();
    await adapter('AuthorizationCode').upsert(id, { grantId: 'g', uid: `uid-${id}` }, 60);
    expect(await adapter('AuthorizationCode').find(`${id}\u0000`)).toBeUndefined();
    expect(await adapter('AuthorizationCode').findByUid(`uid-${id}\u0000`)).toBeUndefined();
    expect(await adapter('DeviceCode').findByUserCode('CODE\u0000')).toBeUndefined();
    expect(await adapter('AuthorizationCode').find(id)).toBeDefined();
  });

  it('marks a consumed row with the time it was consumed', async () => {
    const id = randomUUID();
    await adapter('AuthorizationCode').upsert(id, { grantId: `g-${id}` }, 60);
    await adapter('AuthorizationCode').consume(id);
    expect((await adapter('AuthorizationCode').find(id))?.consumed).toBe(Math.floor(now.getTime() / 1000));
  });

  it('lets exactly one of twenty parallel consumers win, and revokes the grant for the rest', async () => {
    const grantId = `grant-${randomUUID()}`;
    const code = randomUUID();
    await adapter('Grant').upsert(grantId, { accountId: 'a', clientId: 'c' }, 600);
    await adapter('AuthorizationCode').upsert(code, { grantId }, 60);
    await adapter('AccessToken').upsert(randomUUID(), { grantId }, 60);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => adapter('AuthorizationCode').consume(code)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failures).toHaveLength(19);
    for (const failure of failures) expect((failure.reason as { error?: string }).error).toBe('invalid_grant');
    expect(await adapter('Grant').find(grantId)).toBeUndefined();
  });

  it('destroys one row', async () => {
    const id = randomUUID();
    await adapter('Interaction').upsert(id, { uid: 'x' }, 60);
    await adapter('Interaction').destroy(id);
    expect(await adapter('Interaction').find(id)).toBeUndefined();
  });

  it('revokeByGrantId removes only that model\'s rows of that grant', async () => {
    const grantId = `grant-${randomUUID()}`;
    const other = `grant-${randomUUID()}`;
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await adapter('AccessToken').upsert(a, { grantId }, 60);
    await adapter('RefreshToken').upsert(b, { grantId }, 60);
    await adapter('AccessToken').upsert(c, { grantId: other }, 60);
    await adapter('AccessToken').revokeByGrantId(grantId);
    expect(await adapter('AccessToken').find(a)).toBeUndefined();
    expect(await adapter('RefreshToken').find(b)).toBeDefined();
    expect(await adapter('AccessToken').find(c)).toBeDefined();
    await revokeGrant(storage.db, grantId);
    expect(await adapter('RefreshToken').find(b)).toBeUndefined();
  });

  it('purges expired rows and keeps live ones', async () => {
    const [expired, live] = [randomUUID(), randomUUID()];
    await adapter('AccessToken').upsert(expired, { grantId: 'p' }, 1);
    await adapter('AccessToken').upsert(live, { grantId: 'p' }, 3600);
    now = new Date(now.getTime() + 5_000);
    const purged = await purgeExpired(storage.db, now, 2);
    expect(purged).toBeGreaterThanOrEqual(1);
    const remaining = await storage.db.selectFrom('oidc_payloads').select('id').where('id', 'in', [expired, live]).execute();
    expect(remaining.map((r) => r.id)).toEqual([live]);
  });
});
