import { defineConfig } from 'vitest/config';

// `.ci/run` first runs only the deliberately failing fixture, through this
// same config and global setup, to prove that its gate sees a failure.
const selfCheck = process.env.TRACEGRES_CI_SELF_CHECK === '1';

export default defineConfig({
  test: {
    include: selfCheck
      ? ['.ci/fixtures/*.test.ts']
      : [
          'db/tests/**/*.test.ts',
          'ts/**/*.test.ts',
          'server/**/*.test.ts',
          'cli/**/*.test.ts',
          'bench/**/*.test.ts',
          'dashboard/**/*.test.ts',
        ],
    globalSetup: ['db/tests/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores: more workers only contend for the one Postgres.
    maxWorkers: 2,
  },
});
