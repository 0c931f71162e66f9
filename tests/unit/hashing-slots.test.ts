import { describe, expect, it } from 'vitest';
import { withHashingSlots } from '../../src/accounts/hashing-slots.ts';
import { createPasswordHasher, type PasswordHasher } from '../../src/accounts/passwords.ts';

const real = createPasswordHasher({ memory_kib: 8192, iterations: 1, parallelism: 1 });

/** The real hasher, with how many of its computations run at once recorded. */
function observed(hasher: PasswordHasher) {
  const seen = { running: 0, most: 0, started: [] as string[] };
  const track = <T>(label: string, work: () => Promise<T>) => async () => {
    seen.started.push(label);
    seen.most = Math.max(seen.most, ++seen.running);
    try { return await work(); } finally { seen.running--; }
  };
  return {
    seen,
    hasher: {
      hash: (password: string) => track(`hash ${password}`, () => hasher.hash(password))(),
      verify: (hash: string, password: string) => track(`verify ${password}`, () => hasher.verify(hash, password))(),
      needsRehash: (hash: string) => hasher.needsRehash(hash),
      verifyDummy: (password: string) => track(`dummy ${password}`, () => hasher.verifyDummy(password))(),
    } satisfies PasswordHasher,
  };
}

describe('hashing slots', () => {
  it('runs at most as many argon2 computations at once as it has slots, the others in the order they came', async () => {
    const hash = await real.hash('right password');
    const { seen, hasher } = observed(real);
    const slotted = withHashingSlots(hasher, 2);
    const results = await Promise.all([
      slotted.verify(hash, 'right password'), slotted.verify(hash, 'wrong 1'), slotted.verifyDummy('dummy'),
      slotted.verify(hash, 'wrong 2'), slotted.hash('new'), slotted.verify(hash, 'right password'),
    ]);
    expect(seen.most).toBe(2);
    expect(seen.started).toEqual(['verify right password', 'verify wrong 1', 'dummy dummy', 'verify wrong 2', 'hash new', 'verify right password']);
    expect(results.map((r) => (typeof r === 'string' ? r.startsWith('$argon2id$') : r))).toEqual([true, false, undefined, false, true, true]);
  });

  it('frees a slot whose computation failed', async () => {
    // The computation's own error comes out unchanged, and the one slot is free again after it.
    const failure = new Error('the argon2 computation failed');
    const failing: typeof real = { ...real, verify: (hash, password) => (hash === 'not a hash' ? Promise.reject(failure) : real.verify(hash, password)) };
    const slotted = withHashingSlots(failing, 1);
    await expect(slotted.verify('not a hash', 'x')).rejects.toBe(failure);
    expect(await slotted.verify(await real.hash('after'), 'after')).toBe(true);
  });
});
