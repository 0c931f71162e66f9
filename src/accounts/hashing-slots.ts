import type { PasswordHasher } from './passwords.ts';

// argon2id is made to cost memory and CPU: each hash or check holds accounts.argon2.memory_kib
// (19 MiB by default) for its whole run on a thread of the pool. More of them at once than there
// are cores makes none finish sooner, only holds more memory at once and takes the cores from
// the rest of each sign-in. So at most `slots` run at once; the others wait their turn, in order.

export function withHashingSlots(hasher: PasswordHasher, slots: number): PasswordHasher {
  let running = 0;
  const waiting: (() => void)[] = [];

  async function inSlot<T>(work: () => Promise<T>): Promise<T> {
    if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, or is freed.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  }

  return {
    hash: (password) => inSlot(() => hasher.hash(password)),
    verify: (hash, password) => inSlot(() => hasher.verify(hash, password)),
    needsRehash: (hash) => hasher.needsRehash(hash),
    verifyDummy: (password) => inSlot(() => hasher.verifyDummy(password)),
  };
}
