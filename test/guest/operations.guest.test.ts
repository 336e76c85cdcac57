// Operations on cgroup v2 (the guest): health's cgroup check and the metrics' cgroup gauge
// read v2's single hierarchy, not v1's per-controller trees. Runs in the cgroup v2 guest only
// (vitest.guest.config.ts); the host's own tests are test/zygote/operations.test.ts and
// metrics.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/index.js';
import { ECHO_MAIN } from '../helpers/index.js';
import { cgroupV2, describeNeeds } from '../helpers/host.js';
import { scrape, value } from '../helpers/metrics.js';

const MiB = 2 ** 20;

describeNeeds(cgroupV2(), 'operations on cgroup v2', () => {
  let z: Zygote;
  const dir = mkdtempSync(join(tmpdir(), 'zygote-ops-guest-'));
  const target = { socketPath: join(dir, 'metrics.sock') };
  beforeAll(async () => {
    z = await startZygote({ main: ECHO_MAIN, metrics: `unix:${target.socketPath}`, startupTimeoutMs: 120_000, spawnTimeoutMs: 60_000 });
  });
  afterAll(async () => {
    await z?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('health checks its v2 cgroup parent and says healthy', async () => {
    const h = await z.health();
    expect(h).toMatchObject({ healthy: true, problems: [] });
    expect(h.checks).toContain('cgroups');
  });

  it("counts a limited child's cgroup while it runs, and none once it is reaped and removed", async () => {
    const ch = await z.spawn({ args: ['hang'], limits: { memoryBytes: 64 * MiB, pids: 16 } });
    expect(value(await scrape(target), 'zygote_cgroups')).toBe(1);
    expect(value(await scrape(target), 'zygote_children')).toBe(1);
    ch.kill('SIGKILL');
    await ch.exited;
    // Removed when the zygote is idle (an empty cgroup's rmdir can wait for its last charges).
    const deadline = Date.now() + 60_000;
    while (value(await scrape(target), 'zygote_cgroups') !== 0) {
      if (Date.now() > deadline) throw new Error('the cgroup was not removed within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(value(await scrape(target), 'zygote_spawns_total{reason="signal"}')).toBe(1);
  });
});
