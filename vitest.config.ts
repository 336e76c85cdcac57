import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The cgroup v2 guest's own tests run only inside it (vitest.guest.config.ts, test/guest/run.mjs).
    exclude: [...configDefaults.exclude, 'test/guest/**'],
    // Child processes, not worker threads: the tests fork, setuid and unshare for real,
    // which a worker thread of a multi-threaded runner cannot do.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The machine has two cores; the stress test and the zygotes share them.
    maxWorkers: 2,
  },
});
