// The stress run at test scale: heavy children forked in sequence and concurrently all succeed,
// and the zygote leaks no fds, mounts, zombies, cgroups or processes; with a warm pool too, whose
// children serve the spawns. And the leak check itself: a cgroup planted in the zygote's tree is
// reported.
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runStress, zygoteCgroupTrees, type StressReport } from '../../dist/bench/stress.js';

/** The checks every clean run passes, pool or not. */
function itLeaksNothing(get: () => StressReport, total: number, phases: [string, number][]): void {
  const failures = () => JSON.stringify(get().failures.slice(0, 5), null, 2);

  it('runs every child to a clean exit with the expected digest', () => {
    expect(get().totals, failures()).toEqual({ ok: total, hung: 0, crashed: 0, wrong: 0, spawnFailed: 0 });
  });

  it('runs both phases in full', () => {
    expect(get().phases.map((p) => [p.name, p.children, p.counts.ok])).toEqual(phases.map(([name, n]) => [name, n, n]));
  });

  it('settles after every phase with no more fds, mounts, zombies, live children or cgroups than after the warm-up', () => {
    const r = get();
    expect(r.baseline.settled).toBe(true);
    for (const p of r.phases) {
      const l = p.leaks;
      expect(l.settled, p.name).toBe(true);
      expect(l.zygoteFds, p.name).toBeLessThanOrEqual(r.baseline.zygoteFds);
      expect(l.mounts, p.name).toBeLessThanOrEqual(r.baseline.mounts);
      expect(l.zombies, p.name).toEqual([]);
      expect(l.liveChildren.length, p.name).toBe(l.stats.poolIdle);
      expect(l.leakedCgroups, p.name).toEqual([]);
    }
  });

  it('leaves the client with no more open fds than before', () => {
    expect(get().after.clientFds).toBeLessThanOrEqual(get().before.clientFds);
  });

  it('leaves neither cgroup trees nor processes of the zygote after close', () => {
    expect(get().afterClose).toEqual({ trees: [], processes: [] });
  });

  it('reports no problems', () => {
    expect(get().problems).toEqual([]);
  });
}

describe('a zygote under stress (150 children in sequence, then 100 at concurrency 8)', () => {
  let report: StressReport;

  beforeAll(async () => {
    report = await runStress({ sequential: 150, concurrent: 100, concurrency: 8 });
  }, 600_000);

  itLeaksNothing(() => report, 250, [
    ['sequential', 150],
    ['concurrent', 100],
  ]);

  it('forks every spawn fresh, and made a cgroup for each (its limits) that is gone again', () => {
    expect(report.phases.map((p) => p.spawns)).toEqual([
      { claimed: 0, forked: 150 },
      { claimed: 0, forked: 100 },
    ]);
    // The tree was made (each child had memory and pids limits) and holds no child now.
    expect(Object.keys(report.baseline.cgroups).length).toBeGreaterThan(0);
    for (const p of report.phases) for (const dirs of Object.values(p.leaks.cgroups)) expect(dirs).toEqual([]);
  });
});

describe('a zygote with a warm pool of 2 under stress (100 children in sequence, then 50 at concurrency 2)', () => {
  let report: StressReport;

  beforeAll(async () => {
    report = await runStress({ sequential: 100, concurrent: 50, concurrency: 2, pool: 2 });
  }, 600_000);

  itLeaksNothing(() => report, 150, [
    ['sequential', 100],
    ['concurrent', 50],
  ]);

  it('serves most spawns from the pool', () => {
    for (const p of report.phases) {
      expect(p.spawns.claimed + p.spawns.forked, p.name).toBe(p.children);
      expect(p.spawns.claimed, p.name).toBeGreaterThan(p.spawns.forked);
    }
  });

  it('keeps a full pool between phases, one cgroup per pool child in each tree, each with its processes', () => {
    for (const l of [report.baseline, ...report.phases.map((p) => p.leaks)]) {
      expect(l.stats).toMatchObject({ poolIdle: 2, poolSize: 2, busy: 0 });
      for (const dirs of Object.values(l.cgroups)) {
        expect(dirs).toHaveLength(2);
        for (const d of dirs) expect(d.pids.length).toBeGreaterThan(0);
      }
    }
  });
});

describe("the stress run's leak check (positive control)", () => {
  let report: StressReport;
  const planted: string[] = [];

  beforeAll(async () => {
    report = await runStress({
      sequential: 3,
      concurrent: 2,
      concurrency: 1,
      pool: 1,
      // The planted cgroup never goes: the check waits this long for it.
      settleMs: 1_000,
      beforeLeakCheck: (pid, phase) => {
        if (phase === 'sequential') {
          // An empty cgroup in each of the zygote's trees, as a child's that was never removed would be.
          for (const tree of zygoteCgroupTrees(pid).filter((t) => existsSync(t))) {
            const dir = join(tree, 'child-planted-by-test');
            mkdirSync(dir);
            planted.push(dir);
          }
        } else {
          // Gone before the next check, so that only the sequential phase's check sees it and
          // the zygote can remove its trees at close.
          for (const dir of planted) rmdirSync(dir);
        }
      },
    });
  }, 600_000);

  it('planted a cgroup in at least one tree', () => {
    expect(planted.length).toBeGreaterThan(0);
  });

  it("reports the planted cgroup after the phase that had it, as a problem, and the phase as not settled", () => {
    const [seq, conc] = report.phases;
    expect([...seq.leaks.leakedCgroups].sort()).toEqual([...planted].sort());
    expect(seq.leaks.settled).toBe(false);
    expect(report.problems).toContain(`after the sequential phase ${planted.length} cgroups left beyond the pool's 1 idle children: ${seq.leaks.leakedCgroups.join(', ')}`);
    expect(conc.leaks.leakedCgroups).toEqual([]);
    expect(conc.leaks.settled).toBe(true);
  });

  it('reports nothing else', () => {
    expect(report.problems.filter((p) => !p.startsWith('after the sequential phase'))).toEqual([]);
    expect(report.afterClose).toEqual({ trees: [], processes: [] });
  });
});
