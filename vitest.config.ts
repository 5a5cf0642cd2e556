import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    // Child processes rather than threads: tests start PostgreSQL servers and
    // install exit handlers that must see real signals.
    pool: 'forks',
    // The machine has 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
  },
});
