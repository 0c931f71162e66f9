import { createHmac, hkdfSync } from 'node:crypto';

// Short secrets (six-digit codes, recovery codes) are stored as an HMAC under a key derived from
// secrets.key_encryption rather than as a plain hash: a copy of the table alone cannot be
// searched offline, because the key is not in the database.

const keys = new Map<string, Buffer>();

function derivedKey(secret: string, purpose: string): Buffer {
  const id = `${purpose}\u0000${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', secret, 'parley', `keyed-hash:${purpose}`, 32));
    keys.set(id, key);
  }
  return key;
}

/** HMAC-SHA-256 of `value`, hex, under a key for this purpose (one key per purpose, so hashes of one kind never match another). */
export function keyedHash(secret: string, purpose: string, value: string): string {
  return createHmac('sha256', derivedKey(secret, purpose)).update(value, 'utf8').digest('hex');
}
