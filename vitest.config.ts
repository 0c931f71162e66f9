import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: the e2e files each start a server and hash passwords, so run files two at a time.
    maxWorkers: 2,
  },
});
