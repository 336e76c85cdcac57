import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes, not worker threads: the tests fork, setuid and unshare for real,
    // which a worker thread of a multi-threaded runner cannot do.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The machine has two cores; the stress test and the zygotes share them.
    maxWorkers: 2,
  },
});
