import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../storage/schema.ts';
import type { DB } from '../storage/database.ts';

// oidc-provider's storage contract (its example/my_adapter.js documents each method), kept in
// one table for every model. Three rules matter beyond the contract's letter:
// - find* never returns an expired row, whatever the purge job has or has not done yet;
// - consume is one conditional UPDATE, so of N parallel redemptions of a code exactly one wins;
// - a key no row can have finds nothing, and is not sent to the database (see storableKey);
//   the other methods are only ever given keys that find* returned.

/**
 * Keys arrive from requests (a code, a refresh token, a client_id, a uid) and may hold NUL, which
 * PostgreSQL text cannot: a query with one fails instead of matching nothing. No stored key holds
 * one (the provider makes its own ids), so such a key is simply not found.
 */
const storableKey = (key: string) => !key.includes('\u0000');

export class DatabaseAdapter implements Adapter {
  readonly #db: DB;
  readonly #model: string;
  readonly #now: () => Date;

  constructor(db: DB, model: string, now: () => Date) {
    this.#db = db;
    this.#model = model;
    this.#now = now;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const expiresAt = expiresIn ? new Date(this.#now().getTime() + expiresIn * 1000) : null;
    const row = {
      model: this.#model,
      id,
      payload: JSON.stringify(payload),
      grant_id: payload.grantId ?? null,
      account_id: payload.accountId ?? null,
      user_code: payload.userCode ?? null,
      uid: payload.uid ?? null,
      expires_at: expiresAt,
    };
    await this.#db.insertInto('oidc_payloads').values({ ...row, consumed_at: null })
      .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet({
        payload: row.payload, grant_id: row.grant_id, account_id: row.account_id, user_code: row.user_code, uid: row.uid, expires_at: row.expires_at,
      }))
      .execute();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('id', id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('uid', uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('user_code', userCode);
  }

  async #findBy(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    if (!storableKey(value)) return undefined;
    const row = await this.#db.selectFrom('oidc_payloads')
      .select(['payload', 'consumed_at'])
      .where('model', '=', this.#model)
      .where(column, '=', value)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', this.#now())]))
      .executeTakeFirst();
    if (!row) return undefined;
    const payload = row.payload as AdapterPayload;
    return row.consumed_at ? { ...payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : payload;
  }

  async consume(id: string): Promise<void> {
    const won = await this.#db.updateTable('oidc_payloads')
      .set({ consumed_at: this.#now() })
      .where('model', '=', this.#model)
      .where('id', '=', id)
      .where('consumed_at', 'is', null)
      .returning('id')
      .executeTakeFirst();
    if (won) return;
    // Another request redeemed this code or refresh token between its find() and here. That is
    // a replay, so treat it as oidc-provider treats a sequential one: revoke the whole grant.
    const row = await this.#db.selectFrom('oidc_payloads').select('grant_id')
      .where('model', '=', this.#model).where('id', '=', id).executeTakeFirst();
    if (row?.grant_id) await revokeGrant(this.#db, row.grant_id);
    throw new errors.InvalidGrant(`${this.#model === 'RefreshToken' ? 'refresh token' : 'authorization code'} already consumed`);
  }

  async destroy(id: string): Promise<void> {
    await this.#db.deleteFrom('oidc_payloads').where('model', '=', this.#model).where('id', '=', id).execute();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#db.deleteFrom('oidc_payloads').where('model', '=', this.#model).where('grant_id', '=', grantId).execute();
  }
}

/**
 * The newest live grant an account gave a client, in any session, as the adapter's find returns
 * it: its id and stored payload, so that the caller need not read it again by id.
 */
export async function findGrant(db: DB, accountId: string, clientId: string, now: Date): Promise<{ id: string; payload: AdapterPayload } | undefined> {
  const row = await db.selectFrom('oidc_payloads').select(['id', 'payload'])
    .where('model', '=', 'Grant')
    .where('account_id', '=', accountId)
    .where(sql<string>`payload->>'clientId'`, '=', clientId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('expires_at', 'desc')
    .executeTakeFirst();
  return row && { id: row.id, payload: row.payload as AdapterPayload };
}

/** The live grants an account gave, with the client and the OpenID scopes of each. */
export async function accountGrants(db: DB, accountId: string, now: Date): Promise<{ grantId: string; clientId: string; scopes: string[] }[]> {
  const rows = await db.selectFrom('oidc_payloads').select(['id', 'payload'])
    .where('model', '=', 'Grant')
    .where('account_id', '=', accountId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .execute();
  return rows.map((row) => {
    const payload = row.payload as { clientId?: string; openid?: { scope?: string } };
    return { grantId: row.id, clientId: payload.clientId ?? '', scopes: (payload.openid?.scope ?? '').split(' ').filter(Boolean) };
  });
}

/** Removes every token of a grant and the grant itself: nothing issued under it works again. */
export async function revokeGrant(db: DB, grantId: string): Promise<void> {
  await db.deleteFrom('oidc_payloads')
    .where((eb) => eb.or([eb('grant_id', '=', grantId), eb.and([eb('model', '=', 'Grant'), eb('id', '=', grantId)])]))
    .execute();
}

/** Ends an account's sessions and revokes all its grants and tokens, in the caller's transaction. */
export async function revokeAccountSessions(trx: Transaction<Database>, accountId: string): Promise<void> {
  await trx.deleteFrom('oidc_payloads').where('account_id', '=', accountId).execute();
}

/**
 * Ends sessions of an account: one (by uid), or every one but this browser's, and then also the
 * account's grants and the tokens issued under them, so that no app keeps a way in. Returns how
 * many sessions ended.
 */
export async function revokeSessionsOf(trx: Transaction<Database>, accountId: string, selection: { only: string } | { allBut: string }): Promise<number> {
  const sessions = await trx.deleteFrom('oidc_payloads')
    .where('model', '=', 'Session').where('account_id', '=', accountId)
    .where('uid', 'only' in selection ? '=' : '!=', 'only' in selection ? selection.only : selection.allBut)
    .returning('id').execute();
  if ('allBut' in selection) {
    await trx.deleteFrom('oidc_payloads').where('account_id', '=', accountId).where('model', '!=', 'Session').execute();
  }
  return sessions.length;
}

/** Deletes expired rows in bounded batches, so a large backlog never holds a long lock. */
export async function purgeExpired(db: DB, now: Date, batchSize = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql<{ id: string }>`
      delete from oidc_payloads where ctid in (
        select ctid from oidc_payloads where expires_at < ${now} limit ${batchSize}
      ) returning id`.execute(db);
    total += result.rows.length;
    if (result.rows.length < batchSize) return total;
  }
}
