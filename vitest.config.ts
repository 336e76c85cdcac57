import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig, type Plugin } from 'vitest/config';

const POOLED_CLIENT = fileURLToPath(new URL('./test/helpers/pooled-client.ts', import.meta.url));

/** In the "pool" project, the sandbox suites' client library starts every zygote with a pool. */
function pooledClient(): Plugin {
  return {
    name: 'zygote-pooled-client',
    enforce: 'pre',
    resolveId(source, importer) {
      if (/(^|\/)dist\/(client\/)?index\.js$/.test(source) && importer !== POOLED_CLIENT) return POOLED_CLIENT;
      return null;
    },
  };
}

const shared = {
  // Child processes, not worker threads: the tests fork, setuid and unshare for real,
  // which a worker thread of a multi-threaded runner cannot do.
  pool: 'forks' as const,
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // The machine has two cores; the stress test and the zygotes share them.
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: 'host',
          include: ['test/**/*.test.ts'],
          // The cgroup v2 guest's own tests run only inside it (vitest.guest.config.ts, test/guest/run.mjs).
          exclude: [...configDefaults.exclude, 'test/guest/**'],
        },
      },
      {
        // The sandbox's attacks again, against children claimed from a warm pool. The network
        // suite is left out: a networked spawn always forks fresh.
        plugins: [pooledClient()],
        test: {
          ...shared,
          name: 'pool',
          include: ['test/sandbox/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/sandbox/network.test.ts'],
        },
      },
    ],
  },
});
