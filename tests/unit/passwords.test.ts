import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPasswordPolicy, createPasswordHasher, normalizePassword } from '../../src/accounts/passwords.ts';

const policy = { min: 8, max: 256 };
const cheap = { memory_kib: 8192, iterations: 1, parallelism: 1 };

describe('password policy (NIST SP 800-63B)', () => {
  it('requires a password', () => {
    expect(checkPasswordPolicy('', policy)).toBe('password_required');
  });

  it('refuses fewer than the minimum and accepts exactly the minimum', () => {
    expect(checkPasswordPolicy('tulip-7', policy)).toBe('password_too_short');
    expect(checkPasswordPolicy('tulip-79', policy)).toBeUndefined();
  });

  it('allows long passphrases up to the maximum, and no more', () => {
    const passphrase = 'correct horse battery staple '.repeat(3);
    expect(passphrase.length).toBeGreaterThan(64);
    expect(checkPasswordPolicy(passphrase, policy)).toBeUndefined();
    expect(checkPasswordPolicy('x'.repeat(256), policy)).toBeUndefined();
    expect(checkPasswordPolicy('x'.repeat(257), policy)).toBe('password_too_long');
  });

  it('has no composition rules: all lower-case letters, all digits or spaces are fine', () => {
    expect(checkPasswordPolicy('thunderstorms', policy)).toBeUndefined();
    expect(checkPasswordPolicy('40927316', policy)).toBeUndefined();
    expect(checkPasswordPolicy('a b c d e', policy)).toBeUndefined();
  });

  it('counts code points after NFKC, not UTF-16 units', () => {
    // Each "é" is written decomposed (two code points) and composes to one.
    const decomposedAccents = (n: number) => 'e\u0301'.repeat(n);
    expect(checkPasswordPolicy(decomposedAccents(7), policy)).toBe('password_too_short');
    expect(checkPasswordPolicy(decomposedAccents(8), policy)).toBeUndefined();
    // Astral characters are one code point but two UTF-16 units.
    expect(checkPasswordPolicy('🔑'.repeat(8), policy)).toBeUndefined();
    expect(checkPasswordPolicy('🔑'.repeat(7), policy)).toBe('password_too_short');
  });

  it('normalizes full-width forms, so they are the same password as ASCII', () => {
    expect(normalizePassword('ｐａｓｓｗｏｒｄ１２')).toBe('password12');
    expect(checkPasswordPolicy('ｐａｓｓｗｏｒｄ１２', policy)).toBe(checkPasswordPolicy('password12', policy));
    expect(normalizePassword('ｍｏｏｎｌｉｇｈｔ７')).toBe('moonlight7');
  });

  it('refuses common passwords whatever their case or width', () => {
    for (const common of ['password', '12345678', 'qwertyuiop', 'iloveyou1', 'passw0rd', 'PassWord1', 'ＱＷＥＲＴＹＵＩＯＰ']) {
      expect(checkPasswordPolicy(common, policy), common).toBe('password_common');
    }
  });

  it('refuses a password that is a disallowed word such as the email address', () => {
    const disallowed = ['ann.lee@example.com', 'ann.lee'];
    expect(checkPasswordPolicy('Ann.Lee@Example.com', { ...policy, disallowed })).toBe('password_common');
    expect(checkPasswordPolicy('ann.lee@example.com!', { ...policy, disallowed })).toBeUndefined();
  });

  it('ships a list with only entries long enough to matter, and no duplicates', () => {
    const entries = readFileSync(new URL('../../src/accounts/common-passwords.txt', import.meta.url), 'utf8')
      .split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(entries.length).toBeGreaterThan(200);
    expect(entries.filter((e) => [...e.normalize('NFKC')].length < 8)).toEqual([]);
    expect(new Set(entries.map((e) => e.normalize('NFKC').toLowerCase())).size).toBe(entries.length);
  });
});

describe('password hasher', () => {
  const hasher = createPasswordHasher(cheap);

  it('hashes with argon2id and the configured parameters, and verifies', async () => {
    const hash = await hasher.hash('tulip-79 in spring');
    const [, algorithm, version, params] = hash.split('$');
    expect([algorithm, version]).toEqual(['argon2id', 'v=19']);
    expect(params?.split(',').sort()).toEqual(['m=8192', 'p=1', 't=1']);
    expect(await hasher.verify(hash, 'tulip-79 in spring')).toBe(true);
    expect(await hasher.verify(hash, 'tulip-79 in summer')).toBe(false);
  });

  it('verifies the full-width spelling of a password against its ASCII hash', async () => {
    const hash = await hasher.hash('moonlight7');
    expect(await hasher.verify(hash, 'ｍｏｏｎｌｉｇｈｔ７')).toBe(true);
  });

  it('asks for a rehash when the parameters or the algorithm differ', async () => {
    const hash = await hasher.hash('tulip-79 in spring');
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(createPasswordHasher({ ...cheap, iterations: 2 }).needsRehash(hash)).toBe(true);
    expect(createPasswordHasher({ ...cheap, memory_kib: 16384 }).needsRehash(hash)).toBe(true);
    expect(hasher.needsRehash(hash.replace('$argon2id$', '$argon2i$'))).toBe(true);
  });

  it('spends a real verification on the dummy hash, with the same parameters', async () => {
    // A cheap hasher and an expensive one: the dummy must cost what the configured hash costs.
    const expensive = createPasswordHasher({ memory_kib: 65536, iterations: 3, parallelism: 1 });
    await expensive.verifyDummy('warm-up'); // makes the dummy hash once
    await hasher.verifyDummy('warm-up');
    const time = async (run: () => Promise<unknown>) => {
      const start = performance.now();
      for (let i = 0; i < 3; i++) await run();
      return performance.now() - start;
    };
    const dummyExpensive = await time(() => expensive.verifyDummy('guess'));
    const dummyCheap = await time(() => hasher.verifyDummy('guess'));
    expect(dummyExpensive).toBeGreaterThan(dummyCheap * 3);
  });
});
