import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['db/tests/**/*.test.ts', 'ts/**/*.test.ts', 'server/**/*.test.ts', 'bench/**/*.test.ts', 'dashboard/**/*.test.ts'],
    globalSetup: ['db/tests/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores: more workers only contend for the one Postgres.
    maxWorkers: 2,
  },
});
