import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import argon2 from 'argon2';
import type { Config } from '../config/schema.ts';
import type { AccountErrorCode } from './errors.ts';

// Passwords follow NIST SP 800-63B §5.1.1.2: a minimum length, long passphrases allowed, no
// composition rules, and a check against passwords known from breaches.

/**
 * NFKC, so that the same password typed on different keyboards (full-width forms, composed or
 * decomposed accents) is one password. SP 800-63B §5.1.1.2 asks for normalization before hashing.
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

let commonPasswords: Set<string> | undefined;

function isCommonPassword(normalized: string): boolean {
  commonPasswords ??= new Set(
    readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => normalizePassword(line).toLowerCase()),
  );
  return commonPasswords.has(normalized.toLowerCase());
}

export interface PasswordPolicy {
  min: number;
  max: number;
  /** Words the whole password must not be, such as the account's email address (SP 800-63B: context-specific words). */
  disallowed?: readonly string[];
}

/** The first rule the password breaks, or undefined when it is acceptable. Lengths count code points after NFKC. */
export function checkPasswordPolicy(password: string, policy: PasswordPolicy): AccountErrorCode | undefined {
  if (password === '') return 'password_required';
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < policy.min) return 'password_too_short';
  if (length > policy.max) return 'password_too_long';
  const folded = normalized.toLowerCase();
  if (isCommonPassword(folded)) return 'password_common';
  if (policy.disallowed?.some((word) => normalizePassword(word).toLowerCase() === folded)) return 'password_common';
  return undefined;
}

export interface PasswordHasher {
  /** An argon2id hash (PHC string) of the normalized password. */
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /** True when the hash was made with other parameters or another algorithm than the configured ones. */
  needsRehash(hash: string): boolean;
  /** Costs what verify costs, for sign-ins with an unknown email, so their timing reveals nothing. */
  verifyDummy(password: string): Promise<void>;
}

export function createPasswordHasher(params: Config['accounts']['argon2']): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memory_kib,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  } as const;
  // Made on first use, with the current parameters, from a password nobody knows.
  let dummyHash: Promise<string> | undefined;

  return {
    hash: (password) => argon2.hash(normalizePassword(password), options),
    verify: (hash, password) => argon2.verify(hash, normalizePassword(password)),
    needsRehash: (hash) => !hash.startsWith('$argon2id$') || argon2.needsRehash(hash, options),
    async verifyDummy(password) {
      dummyHash ??= argon2.hash(randomBytes(32).toString('base64url'), options);
      await argon2.verify(await dummyHash, normalizePassword(password));
    },
  };
}
