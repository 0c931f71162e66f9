import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import { sql, type Transaction } from 'kysely';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';

// Signing keys live in the database so that every node serves the same JWKS and signs with the
// same key. Private parts are encrypted with a key derived from secrets.key_encryption; a
// database dump alone cannot forge tokens.

const ALG = 'RS256';
const FORMAT = 'v1';

function encryptionKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'parley', 'signing-key-encryption', 32));
}

export function encryptJwk(jwk: JWK, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(secret), iv);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()]);
  return [FORMAT, iv, cipher.getAuthTag(), ciphertext].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

export class KeyDecryptionError extends Error {
  constructor(kid: string) {
    super(`signing key ${kid} cannot be decrypted: secrets.key_encryption (PARLEY_KEY_ENCRYPTION_SECRET) differs from the one it was stored with`);
    this.name = 'KeyDecryptionError';
  }
}

export function decryptJwk(kid: string, encrypted: string, secret: string): JWK {
  const [format, iv, tag, ciphertext] = encrypted.split('.');
  if (format !== FORMAT || !iv || !tag || !ciphertext) throw new KeyDecryptionError(kid);
  try {
    const decipher = createDecipheriv('aes-256-gcm', encryptionKey(secret), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as JWK;
  } catch {
    throw new KeyDecryptionError(kid);
  }
}

async function newSigningKey(secret: string) {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' };
  return { kid, publicJwk: { ...publicJwk, kid, alg: ALG, use: 'sig' }, encrypted: encryptJwk(privateJwk, secret) };
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
  return rows.map((row) => decryptJwk(row.kid, row.private_jwk_encrypted, secret));
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
