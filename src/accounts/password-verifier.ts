// One question asked at every password sign-in: does this password match what the account has
// stored, and should the stored value be replaced by a fresh argon2id hash of it? The stored
// value is one of
//
//   $argon2id$…   Parley's own hash (over the NFKC form), rehashed when the parameters change
//   $foreign$…    a hash imported from another system (src/accounts/foreign-hashes.ts), always
//                 replaced after its first successful sign-in
//   NULL          no password: registered with a passkey or an upstream provider only, or
//                 imported without a hash (then, with an external id, legacy_verify may answer
//                 for it until it has one). The one way "no password" is stored: the column is
//                 nullable for exactly this, and every "has a password" check reads NULL.
//   $none$        read as NULL for safety; Parley writes it nowhere (a second spelling of "no
//                 password" would be counted as a password by every `is not null` check)
import type { Config } from '../config/schema.ts';
import {
  FOREIGN_PREFIX, ForeignHashError, parseStoredForeignHash, verifyForeignHash,
  type FirebaseScryptParams, type ForeignHash,
} from './foreign-hashes.ts';
import type { PasswordHasher } from './passwords.ts';

export const NO_PASSWORD_HASH = '$none$';

export type StoredHash =
  | { kind: 'parley' }
  | { kind: 'foreign'; hash: ForeignHash }
  | { kind: 'none' }
  /** Written by nothing Parley knows: such a value never matches. */
  | { kind: 'invalid'; reason: string };

export function parseStoredHash(stored: string | null | undefined): StoredHash {
  if (stored === null || stored === undefined || stored === '' || stored === NO_PASSWORD_HASH) return { kind: 'none' };
  if (stored.startsWith('$argon2id$')) return { kind: 'parley' };
  if (stored.startsWith(`${FOREIGN_PREFIX}$`)) {
    try {
      return { kind: 'foreign', hash: parseStoredForeignHash(stored) };
    } catch (error) {
      if (error instanceof ForeignHashError) return { kind: 'invalid', reason: error.message };
      throw error;
    }
  }
  return { kind: 'invalid', reason: 'not a hash format Parley stores' };
}

/** Whether a password sign-in can be checked locally (otherwise: legacy_verify, or no password sign-in). */
export function hasUsablePassword(stored: string | null | undefined): boolean {
  const kind = parseStoredHash(stored).kind;
  return kind === 'parley' || kind === 'foreign';
}

export interface PasswordCheck {
  ok: boolean;
  /** Store hasher.hash(password) in place of the stored value (only ever true when ok). */
  needsRehash: boolean;
}

export interface PasswordVerifier {
  verifyAny(stored: string | null | undefined, password: string): Promise<PasswordCheck>;
}

export interface ForeignHashSettings {
  /** Absent: Firebase hashes are refused at import and never match. */
  firebaseScrypt?: FirebaseScryptParams | undefined;
}

/** The project parameters from config (import.firebase_scrypt), when a signer key is set. */
export function foreignHashSettings(config: Pick<Config, 'import'>): ForeignHashSettings {
  const firebase = config.import.firebase_scrypt;
  if (firebase.signer_key === '') return {};
  return {
    firebaseScrypt: {
      signerKey: Buffer.from(firebase.signer_key, 'base64'),
      saltSeparator: Buffer.from(firebase.salt_separator, 'base64'),
      rounds: firebase.rounds,
      memCost: firebase.mem_cost,
    },
  };
}

export function createPasswordVerifier(hasher: PasswordHasher, settings: ForeignHashSettings): PasswordVerifier {
  return {
    async verifyAny(stored, password) {
      const parsed = parseStoredHash(stored);
      switch (parsed.kind) {
        case 'parley': {
          const ok = await hasher.verify(stored!, password);
          return { ok, needsRehash: ok && hasher.needsRehash(stored!) };
        }
        case 'foreign': {
          const ok = await verifyForeignHash(parsed.hash, password, settings.firebaseScrypt);
          return { ok, needsRehash: ok };
        }
        default:
          return { ok: false, needsRehash: false };
      }
    },
  };
}
