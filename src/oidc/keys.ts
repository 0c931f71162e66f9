import { exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import { sql, type Transaction } from 'kysely';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { seal, unseal } from '../storage/sealed.ts';

// Signing keys live in the database so that every node serves the same JWKS and signs with the
// same key. Private parts are sealed under secrets.key_encryption (storage/sealed.ts); a database
// dump alone cannot forge tokens.

const ALG = 'RS256';

async function newSigningKey(secret: string) {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' };
  return { kid, publicJwk: { ...publicJwk, kid, alg: ALG, use: 'sig' }, encrypted: seal(privateJwk, secret) };
}

// One node at a time creates or rotates keys; the others wait and then read what it wrote.
async function lockKeys(trx: Transaction<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(7251820411)`.execute(trx);
}

/**
 * The private keys the provider signs with and publishes: the active key first (it signs),
 * then retired keys still within their publication window (they only verify).
 * Creates the first key when there is none.
 */
export async function loadSigningKeys(db: DB, secret: string, now: Date): Promise<JWK[]> {
  await db.transaction().execute(async (trx) => {
    await lockKeys(trx);
    const active = await trx.selectFrom('signing_keys').select('kid').where('retired_at', 'is', null).executeTakeFirst();
    if (active) return;
    const key = await newSigningKey(secret);
    await trx.insertInto('signing_keys').values({
      kid: key.kid, alg: ALG, public_jwk: JSON.stringify(key.publicJwk), private_jwk_encrypted: key.encrypted, created_at: now,
      retired_at: null, publish_until: null,
    }).execute();
  });
  const rows = await db.selectFrom('signing_keys')
    .select(['kid', 'private_jwk_encrypted', 'retired_at'])
    .where((eb) => eb.or([eb('publish_until', 'is', null), eb('publish_until', '>', now)]))
    .orderBy(sql`retired_at is null`, 'desc')
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map((row) => unseal<JWK>(`signing key ${row.kid}`, row.private_jwk_encrypted, secret));
}

/**
 * Adds a new active key and retires the current one. The retired public key stays published for
 * `keepPublishedSeconds` (the longest lifetime of anything it signed), so tokens issued just
 * before the rotation still verify.
 */
export async function rotateSigningKey(db: DB, secret: string, now: Date, keepPublishedSeconds: number): Promise<{ kid: string; retired: string[] }> {
  const key = await newSigningKey(secret);
  return db.transaction().execute(async (trx) => {
    await lockKeys(trx);
    const retired = await trx.updateTable('signing_keys')
      .set({ retired_at: now, publish_until: new Date(now.getTime() + keepPublishedSeconds * 1000) })
      .where('retired_at', 'is', null)
      .returning('kid')
      .execute();
    await trx.insertInto('signing_keys').values({
      kid: key.kid, alg: ALG, public_jwk: JSON.stringify(key.publicJwk), private_jwk_encrypted: key.encrypted, created_at: now,
      retired_at: null, publish_until: null,
    }).execute();
    return { kid: key.kid, retired: retired.map((r) => r.kid) };
  });
}
