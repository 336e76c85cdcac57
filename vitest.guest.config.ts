// The suite that runs inside the cgroup v2 guest (test/guest/run.mjs boots it; `npm test` and
// `npm run test:guest` run it there, never on the host): the guest's own tests, plus the host
// tests whose subject differs on cgroup v2 or on the guest's older kernel (Landlock ABI,
// legacy TIOCSTI, the i386 entry).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/guest/**/*.guest.test.ts',
      'test/sandbox/cgroup-limits.test.ts',
      'test/sandbox/default-limits.test.ts',
      'test/client/lifecycle.test.ts',
      'test/zygote/fork-failure.test.ts',
      'test/zygote/doctor.test.ts',
      'test/sandbox/attacks-processes.test.ts',
      'test/sandbox/attacks-syscalls.test.ts',
      // The output filesystem where tmpfs takes no idmapped mounts (6.1): the child's own.
      'test/sandbox/output-fs.test.ts',
      'test/client/pool.test.ts',
    ],
    pool: 'forks',
    // Under TCG everything is 10-20 times slower than on the host.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The guest has two vCPUs.
    maxWorkers: 2,
  },
});
