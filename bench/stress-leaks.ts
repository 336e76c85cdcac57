// What a zygote holds once every child of a stress phase is reaped: fds, mounts, zombies, live
// children and cgroups, each of which must be back to what it was (a full pool's worth, with a
// pool). The zygote refills its pool and removes dead children's cgroups only when idle, so the
// check waits (bounded) for it to settle before it counts.
import { existsSync } from 'node:fs';
import type { Zygote, ZygoteStats } from 'zygote';
import { childCgroups, zygoteCgroupTrees, type CgroupDir } from './lib/cgroup-tree.js';
import { countFds, countMounts, liveChildren, processStart, zombieChildren } from './lib/procfs.js';

export interface LeakSnapshot {
  /** Whether the zygote settled within the bound: nothing busy, the pool full, every count consistent. */
  settled: boolean;
  /** How long it took to settle (or the bound). */
  waitedMs: number;
  stats: ZygoteStats;
  zygoteFds: number;
  /** Lines of the zygote's /proc/PID/mountinfo. */
  mounts: number;
  zombies: number[];
  /** Children of the zygote still running: with a pool, its idle children's inits. */
  liveChildren: number[];
  /** The zygote's cgroup trees (zygote-PID, one per hierarchy) that exist, and the child cgroups in each. */
  cgroups: Record<string, CgroupDir[]>;
  /** Child cgroups that belong to no idle pool child: empty ones, and any beyond poolIdle in a tree. */
  leakedCgroups: string[];
}

/** What must be gone once the zygote has closed. */
export interface LeftAfterClose {
  /** Its cgroup trees still there. */
  trees: string[];
  /** Processes it had (pool children, whatever ran in its cgroups) still alive. */
  processes: string[];
}

const POLL_MS = 25;

/** Waits up to settleMs for the zygote to be idle and consistent, then counts what it holds. */
export async function snapshotLeaks(z: Zygote, settleMs: number): Promise<LeakSnapshot> {
  const t0 = performance.now();
  for (;;) {
    const s = await read(z);
    const waitedMs = performance.now() - t0;
    if (s.settled || waitedMs >= settleMs) return { ...s, waitedMs };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Waits up to boundMs for everything the zygote had to be gone, and returns what is left. */
export async function leftAfterClose(trees: string[], processes: string[], boundMs: number): Promise<LeftAfterClose> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    const left = { trees: trees.filter((t) => existsSync(t)), processes: processes.filter((p) => processStart(Number(p.split('@')[0])) === p) };
    if ((left.trees.length === 0 && left.processes.length === 0) || performance.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Every process the zygote has now (its live children, whatever runs in its cgroups), as pid@start. */
export function zygoteProcesses(snap: LeakSnapshot): string[] {
  const pids = new Set<number>(snap.liveChildren);
  for (const dirs of Object.values(snap.cgroups)) for (const d of dirs) for (const p of d.pids) pids.add(p);
  return [...pids].map(processStart).filter((p): p is string => p !== null);
}

async function read(z: Zygote): Promise<Omit<LeakSnapshot, 'waitedMs'>> {
  const stats = await z.stats();
  const cgroups: Record<string, CgroupDir[]> = {};
  const leakedCgroups: string[] = [];
  let consistent = true;
  for (const tree of zygoteCgroupTrees(z.pid)) {
    // Made at the first limited spawn or pool child; a hierarchy the zygote does not use has none.
    if (!existsSync(tree)) continue;
    const dirs = childCgroups(tree);
    cgroups[tree] = dirs;
    // An idle pool child has a cgroup in every tree (v1: each controller's) with its processes.
    const empty = dirs.filter((d) => d.pids.length === 0);
    const used = dirs.filter((d) => d.pids.length > 0);
    leakedCgroups.push(...empty.map((d) => d.path), ...used.slice(stats.poolIdle).map((d) => d.path));
    if (dirs.length !== stats.poolIdle) consistent = false;
  }
  const zombies = zombieChildren(z.pid);
  const live = liveChildren(z.pid);
  const settled = consistent && leakedCgroups.length === 0 && stats.busy === 0 && stats.queued === 0 && stats.poolIdle === stats.poolSize && live.length === stats.poolIdle && zombies.length === 0;
  return { settled, stats, zygoteFds: countFds(z.pid), mounts: countMounts(z.pid), zombies, liveChildren: live, cgroups, leakedCgroups };
}
