// The stress run's leak check on cgroup v2 (production's layout; the host is v1): it finds the
// zygote's one tree in the unified hierarchy, counts a pool child's cgroup as the pool's, reports
// a cgroup planted there, and sees the tree gone after close. Runs in the cgroup v2 guest only
// (vitest.guest.config.ts); the full stress is too slow under emulation.
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startZygote, type Zygote } from 'zygote';
import { childCgroups, zygoteCgroupTrees } from '../../dist/bench/lib/cgroup-tree.js';
import { leftAfterClose, snapshotLeaks, zygoteProcesses } from '../../dist/bench/stress-leaks.js';
import { ECHO_MAIN } from '../helpers/index.js';
import { cgroupV2, describeNeeds } from '../helpers/host.js';

/** Under emulation a zygote takes tens of seconds to warm up, and a pool child to get ready. */
const STARTUP = { startupTimeoutMs: 120_000, spawnTimeoutMs: 60_000 };

describeNeeds(cgroupV2(), "the stress run's leak check on cgroup v2", () => {
  let z: Zygote;
  let closed = false;
  beforeAll(async () => {
    z = await startZygote({ main: ECHO_MAIN, pool: { size: 1 }, ...STARTUP });
  });
  afterAll(async () => {
    if (!closed) await z?.close();
  });

  it("finds the zygote's tree beside its own cgroup, holding its pool child's cgroup with the child's processes", async () => {
    const own = readFileSync(`/proc/${z.pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
    const snap = await snapshotLeaks(z, 90_000);
    expect(snap.settled).toBe(true);
    const tree = join('/sys/fs/cgroup', own, `zygote-${z.pid}`);
    expect(zygoteCgroupTrees(z.pid)).toEqual([tree]);
    expect(Object.keys(snap.cgroups)).toEqual([tree]);
    const dirs = childCgroups(tree);
    expect(dirs).toHaveLength(1);
    expect(dirs[0].pids.length).toBeGreaterThan(0);
    expect(snap.leakedCgroups).toEqual([]);
  }, 120_000);

  it('reports a cgroup planted in the tree (positive control), and not once it is gone', async () => {
    const planted = join(zygoteCgroupTrees(z.pid)[0], 'child-planted-by-test');
    mkdirSync(planted);
    try {
      const snap = await snapshotLeaks(z, 500);
      expect(snap.settled).toBe(false);
      expect(snap.leakedCgroups).toEqual([planted]);
    } finally {
      rmdirSync(planted);
    }
    expect((await snapshotLeaks(z, 30_000)).leakedCgroups).toEqual([]);
  }, 60_000);

  it('after close, the tree and the pool child are gone', async () => {
    const snap = await snapshotLeaks(z, 30_000);
    const trees = Object.keys(snap.cgroups);
    const processes = zygoteProcesses(snap);
    expect(processes.length).toBeGreaterThan(0);
    closed = true;
    await z.close();
    expect(await leftAfterClose(trees, processes, 30_000)).toEqual({ trees: [], processes: [] });
    expect(trees.every((t) => !existsSync(t))).toBe(true);
  }, 60_000);
});
