import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { encodeForeignHash, parseBcrypt, parseDjango } from '../../src/accounts/foreign-hashes.ts';
import {
  createPasswordVerifier, foreignHashSettings, hasUsablePassword, NO_PASSWORD_HASH, parseStoredHash,
} from '../../src/accounts/password-verifier.ts';
import { createPasswordHasher } from '../../src/accounts/passwords.ts';
import { loadConfig } from '../../src/config/load.ts';

const cheap = { memory_kib: 8192, iterations: 1, parallelism: 1 };
const hasher = createPasswordHasher(cheap);
const verifier = createPasswordVerifier(hasher, {});

describe('verifyAny: one check for every stored password', () => {
  it('takes Parley\'s own argon2id hash as current, and asks for a rehash only when the parameters changed', async () => {
    const stored = await hasher.hash('tulip-garden-42');
    expect(parseStoredHash(stored)).toEqual({ kind: 'parley' });
    expect(await verifier.verifyAny(stored, 'tulip-garden-42')).toEqual({ ok: true, needsRehash: false });
    expect(await verifier.verifyAny(stored, 'tulip-garden-43')).toEqual({ ok: false, needsRehash: false });
    const stronger = createPasswordVerifier(createPasswordHasher({ ...cheap, iterations: 2 }), {});
    expect(await stronger.verifyAny(stored, 'tulip-garden-42')).toEqual({ ok: true, needsRehash: true });
  });

  it('verifies an imported hash and always asks for the argon2id rehash after it matched', async () => {
    const stored = encodeForeignHash(parseDjango('pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c='));
    expect(parseStoredHash(stored).kind).toBe('foreign');
    expect(await verifier.verifyAny(stored, 'lètmein')).toEqual({ ok: true, needsRehash: true });
    expect(await verifier.verifyAny(stored, 'letmein')).toEqual({ ok: false, needsRehash: false });
  });

  it('compares an imported hash with the password as typed, and Parley\'s own with its NFKC form', async () => {
    const typed = 'ｐａｓｓｗｏｒｄ１２';   // full-width; NFKC makes it "password12"
    const foreign = encodeForeignHash(parseBcrypt(await bcrypt.hash(typed, 4)));
    expect(await verifier.verifyAny(foreign, typed)).toEqual({ ok: true, needsRehash: true });
    expect(await verifier.verifyAny(foreign, 'password12')).toEqual({ ok: false, needsRehash: false });
    // After the rehash, both spellings are the same password, as for every Parley hash.
    const rehashed = await hasher.hash(typed);
    expect((await verifier.verifyAny(rehashed, 'password12')).ok).toBe(true);
  });

  it('tells an imported argon2id hash from Parley\'s own by its $foreign prefix', async () => {
    const reference = '$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4';
    expect(parseStoredHash(reference).kind).toBe('parley');
    expect(parseStoredHash(`$foreign${reference}`).kind).toBe('foreign');
    expect(await verifier.verifyAny(`$foreign${reference}`, 'password')).toEqual({ ok: true, needsRehash: true });
  });

  it('never matches an account without a usable password, or a value nobody wrote', async () => {
    for (const stored of [NO_PASSWORD_HASH, null, '', '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/', '$foreign$md5$x', 'password']) {
      expect(await verifier.verifyAny(stored, 'password'), String(stored)).toEqual({ ok: false, needsRehash: false });
      expect(hasUsablePassword(stored), String(stored)).toBe(false);
    }
    expect(parseStoredHash(NO_PASSWORD_HASH)).toEqual({ kind: 'none' });
    expect(parseStoredHash('$foreign$md5$x')).toMatchObject({ kind: 'invalid' });
  });

  it('verifies Firebase hashes with the parameters from import.firebase_scrypt, and none without them', async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        import: {
          firebase_scrypt: {
            signer_key: 'jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==',
            salt_separator: 'Bw==', rounds: 8, mem_cost: 14,
          },
        },
      },
    });
    const stored = `$foreign$firebase-scrypt$${'42xEC+ixf3L2lw'}$${'lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ'}`;
    const withFirebase = createPasswordVerifier(hasher, foreignHashSettings(config));
    expect(await withFirebase.verifyAny(stored, 'user1password')).toEqual({ ok: true, needsRehash: true });
    expect(foreignHashSettings(loadConfig({ env: {} }))).toEqual({});
    expect(await verifier.verifyAny(stored, 'user1password')).toEqual({ ok: false, needsRehash: false });
  });
});
