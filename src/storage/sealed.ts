import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DomainError } from '../errors.ts';

// Values kept encrypted at rest under secrets.key_encryption (PARLEY_KEY_ENCRYPTION_SECRET): the
// private signing keys, and the accounts' authenticator-app secrets. A database dump alone then
// reveals neither. AES-256-GCM with a fresh 96-bit IV per value; the format is versioned
// ("v1.<iv>.<tag>.<ciphertext>", base64url) so that a later scheme can sit beside it.

const FORMAT = 'v1';

// The HKDF label predates the secrets other than signing keys: changing it would make every value
// sealed so far unreadable, so it stays as it is.
function encryptionKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'parley', 'signing-key-encryption', 32));
}

/** Seals a JSON value under the secret. */
export function seal(value: unknown, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(secret), iv);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return [FORMAT, iv, cipher.getAuthTag(), ciphertext].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

/** A sealed value that the configured secret does not open: it was sealed under another one. */
export class SealedValueError extends DomainError<'storage'> {
  constructor(what: string) {
    super('storage', 'sealed_value_unreadable', {
      message: `${what} cannot be decrypted: secrets.key_encryption (PARLEY_KEY_ENCRYPTION_SECRET) differs from the one it was stored with`,
    });
  }
}

/**
 * Opens a sealed value. `what` names it for the operator's log ("signing key <kid>"); it must
 * not be a secret or personal data.
 */
export function unseal<T>(what: string, sealed: string, secret: string): T {
  const [format, iv, tag, ciphertext] = sealed.split('.');
  if (format !== FORMAT || !iv || !tag || !ciphertext) throw new SealedValueError(what);
  try {
    const decipher = createDecipheriv('aes-256-gcm', encryptionKey(secret), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as T;
  } catch {
    throw new SealedValueError(what);
  }
}
