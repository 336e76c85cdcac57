// The stress run: thousands of GC- and Arrow-heavy children forked one after another, then
// concurrently, each checked; plus the zygote's RSS before and after, and after each phase
// what it holds (fds, mounts, zombies, live children, cgroups: stress-leaks.ts), with or without
// a warm pool; and after close, that nothing of it is left.
import { startZygote, type Limits, type Zygote } from 'zygote';
import { countFds, readRssBytes } from './lib/procfs.js';
import { summarize, type Summary } from './lib/stats.js';
import { fixtureUrl } from './lib/paths.js';
import { runChild, type ChildResult, type Outcome } from './stress-child.js';
import { ExpectedDigests } from './stress-expected.js';
import { leftAfterClose, snapshotLeaks, zygoteProcesses, type LeakSnapshot, type LeftAfterClose } from './stress-leaks.js';

/** Every child's limits: a memory and a pids limit give it a cgroup, which a pool child needs to serve it. */
export const STRESS_LIMITS = { memoryBytes: 256 * 1024 * 1024, pids: 64 } as const satisfies Limits;

export interface StressOptions {
  /** Children run one after another. */
  sequential: number;
  /** Children run `concurrency` at a time, after the sequential ones. */
  concurrent: number;
  concurrency: number;
  /** A child still running this long after its spawn request is killed and counted hung. Default 20 s. */
  childTimeoutMs?: number;
  /** Children cycle through seeds 1..seeds, so expected digests are computed once each. Default 8. */
  seeds?: number;
  /** Children in the zygote's warm pool; 0 (the default): no pool, every spawn forks. */
  pool?: number;
  /** How long the zygote may take to settle after a phase (reap, remove cgroups, refill its pool) before it is counted. Default 10 s. */
  settleMs?: number;
  /** Called after each child. */
  onProgress?: (phase: PhaseName, done: number, total: number) => void;
  /** Called before each phase's leak check (tests plant a leak here to see it reported). */
  beforeLeakCheck?: (zygotePid: number, phase: PhaseName) => void | Promise<void>;
}

/** The options with their defaults filled in, as reported. */
export type ResolvedOptions = Required<Omit<StressOptions, 'onProgress' | 'beforeLeakCheck'>>;

export type PhaseName = 'sequential' | 'concurrent';
export type Counts = Record<Outcome, number>;

export interface PhaseReport {
  name: PhaseName;
  children: number;
  concurrency: number;
  durationMs: number;
  counts: Counts;
  /** Spawn request to exit, per child. */
  childWallMs: Summary;
  /** Of this phase's spawns, how many a pool child served and how many forked fresh. */
  spawns: { claimed: number; forked: number };
  /** What the zygote held once the phase was over and it had settled. */
  leaks: LeakSnapshot;
}

export interface ProcSnapshot {
  zygoteRssBytes: number;
  zygoteFds: number;
  /** This (the client) process's open fds: each child's stdio and pidfd pass through it. */
  clientFds: number;
}

export interface StressReport {
  options: ResolvedOptions;
  zygotePid: number;
  durationMs: number;
  phases: PhaseReport[];
  totals: Counts;
  before: ProcSnapshot;
  after: ProcSnapshot;
  /** Zombie children of the zygote once every child was reported reaped. */
  zombies: number[];
  /** What the zygote held after the warm-up, settled: each phase's check compares with it. */
  baseline: LeakSnapshot;
  /** What was still there (bounded wait) after the zygote closed: its cgroup trees, its processes. */
  afterClose: LeftAfterClose;
  /** Every child that was not ok (up to 100), with what went wrong. */
  failures: ChildResult[];
  /** Why the run failed; empty when it passed. */
  problems: string[];
}

const MAX_FAILURES_KEPT = 100;

export async function runStress(options: StressOptions): Promise<StressReport> {
  const opts: ResolvedOptions = {
    sequential: options.sequential,
    concurrent: options.concurrent,
    concurrency: options.concurrency,
    childTimeoutMs: options.childTimeoutMs ?? 20_000,
    seeds: options.seeds ?? 8,
    pool: options.pool ?? 0,
    settleMs: options.settleMs ?? 10_000,
  };
  for (const k of ['sequential', 'concurrent'] as const) {
    if (!Number.isSafeInteger(opts[k]) || opts[k] < 0) throw new TypeError(`Expected \`${k}\` to be a non-negative integer, got ${opts[k]}`);
  }
  if (!Number.isSafeInteger(opts.pool) || opts.pool < 0) throw new TypeError(`Expected \`pool\` to be a non-negative integer, got ${opts.pool}`);
  for (const k of ['concurrency', 'childTimeoutMs', 'seeds', 'settleMs'] as const) {
    if (!Number.isSafeInteger(opts[k]) || opts[k] <= 0) throw new TypeError(`Expected \`${k}\` to be a positive integer, got ${opts[k]}`);
  }
  const expected = await ExpectedDigests.load();
  const t0 = performance.now();
  const z = await startZygote({ main: fixtureUrl('stress-main.mjs'), preload: ['apache-arrow'], env: {}, name: 'stress', ...(opts.pool > 0 ? { pool: { size: opts.pool } } : {}) });
  let closed = false;
  try {
    const failures: ChildResult[] = [];
    // One child first, outside the counts: this process's loop opens a reserve fd (libuv's
    // EMFILE guard, /dev/null) when it creates its first stream, which is not a leak.
    const warmup = await runChild(z, 1, 'warm-up', expected.stdoutFor(1), opts.childTimeoutMs, STRESS_LIMITS);
    if (warmup.outcome !== 'ok') failures.push(warmup);
    const baseline = await snapshotLeaks(z, opts.settleMs);
    const before = snapshot(z.pid);
    const phases: PhaseReport[] = [];
    const plan: [PhaseName, number, number][] = [
      ['sequential', opts.sequential, 1],
      ['concurrent', opts.concurrent, opts.concurrency],
    ];
    let last = baseline;
    for (const [name, children, concurrency] of plan) {
      if (children === 0) continue;
      const phase = await runPhase(z, name, children, concurrency, opts, expected, failures, options.onProgress);
      await options.beforeLeakCheck?.(z.pid, name);
      const leaks = await snapshotLeaks(z, opts.settleMs);
      phases.push({ ...phase, spawns: { claimed: leaks.stats.claimed - last.stats.claimed, forked: leaks.stats.forked - last.stats.forked }, leaks });
      last = leaks;
    }
    // Let the client's stdio sockets finish closing before counting its fds.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = snapshot(z.pid);
    const zombies = last.zombies;
    const totals = sumCounts(phases.map((p) => p.counts));
    // What must be gone once the zygote has closed: its trees, its pool children, anything in its cgroups.
    const trees = Object.keys(last.cgroups);
    const processes = zygoteProcesses(last);
    closed = true;
    await z.close();
    const afterClose = await leftAfterClose(trees, processes, opts.settleMs);
    return {
      options: opts,
      zygotePid: z.pid,
      durationMs: performance.now() - t0,
      phases,
      totals,
      before,
      after,
      zombies,
      baseline,
      afterClose,
      failures,
      problems: [
        ...(warmup.outcome === 'ok' ? [] : [`the warm-up child was ${warmup.outcome}: ${warmup.detail}`]),
        ...(baseline.settled ? [] : [`after the warm-up the zygote did not settle within ${opts.settleMs} ms: ${unsettled(baseline)}`]),
        ...findProblems(opts, totals, before, after, phases, baseline, afterClose),
      ],
    };
  } finally {
    if (!closed) await z.close();
  }
}

async function runPhase(
  z: Zygote,
  name: PhaseName,
  children: number,
  concurrency: number,
  opts: ResolvedOptions,
  expected: ExpectedDigests,
  failures: ChildResult[],
  onProgress: StressOptions['onProgress'],
): Promise<Omit<PhaseReport, 'spawns' | 'leaks'>> {
  const t0 = performance.now();
  const counts = emptyCounts();
  const wall: number[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < children) {
      const i = next++;
      const seed = (i % opts.seeds) + 1;
      const r = await runChild(z, seed, `${name.slice(0, 3)}-${i}`, expected.stdoutFor(seed), opts.childTimeoutMs, STRESS_LIMITS);
      counts[r.outcome]++;
      wall.push(r.wallMs);
      if (r.outcome !== 'ok' && failures.length < MAX_FAILURES_KEPT) failures.push(r);
      onProgress?.(name, ++done, children);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, children) }, worker));
  return { name, children, concurrency, durationMs: performance.now() - t0, counts, childWallMs: summarize(wall) };
}

function snapshot(zygotePid: number): ProcSnapshot {
  return { zygoteRssBytes: readRssBytes(zygotePid), zygoteFds: countFds(zygotePid), clientFds: countFds(process.pid) };
}

function findProblems(
  opts: ResolvedOptions,
  totals: Counts,
  before: ProcSnapshot,
  after: ProcSnapshot,
  phases: PhaseReport[],
  baseline: LeakSnapshot,
  afterClose: LeftAfterClose,
): string[] {
  const problems: string[] = [];
  for (const k of ['hung', 'crashed', 'wrong', 'spawnFailed'] as const) {
    if (totals[k] > 0) problems.push(`${totals[k]} children ${k === 'wrong' ? 'wrote the wrong digest' : k === 'spawnFailed' ? 'failed to spawn' : k}`);
  }
  if (after.clientFds > before.clientFds) problems.push(`the client's open fds grew from ${before.clientFds} to ${after.clientFds}`);
  for (const p of phases) {
    const l = p.leaks;
    const at = `after the ${p.name} phase`;
    if (!l.settled) problems.push(`${at} the zygote did not settle within ${opts.settleMs} ms: ${unsettled(l)}`);
    if (l.zygoteFds > baseline.zygoteFds) problems.push(`${at} the zygote's open fds grew from ${baseline.zygoteFds} to ${l.zygoteFds}`);
    if (l.mounts > baseline.mounts) problems.push(`${at} the zygote's mounts grew from ${baseline.mounts} to ${l.mounts}`);
    if (l.zombies.length > 0) problems.push(`${at} ${l.zombies.length} zombie children of the zygote: ${l.zombies.slice(0, 10).join(', ')}`);
    if (l.leakedCgroups.length > 0) problems.push(`${at} ${l.leakedCgroups.length} cgroups left beyond the pool's ${l.stats.poolIdle} idle children: ${l.leakedCgroups.slice(0, 10).join(', ')}`);
    if (l.liveChildren.length > l.stats.poolIdle) problems.push(`${at} the zygote has ${l.liveChildren.length} live children, beyond the pool's ${l.stats.poolIdle} idle ones: ${l.liveChildren.slice(0, 10).join(', ')}`);
    const spawned = p.spawns.claimed + p.spawns.forked;
    if (spawned !== p.children) problems.push(`${at} the zygote counted ${spawned} spawns (claimed ${p.spawns.claimed}, forked ${p.spawns.forked}) for ${p.children} children`);
    // A pooled phase the pool has room for (at most half its size at once: a refill needs its
    // setup's time to be ready) must be served by it: one that mostly forks fresh measures
    // nothing of the pool. Closer to its size, under a load that keeps the CPUs busy, refills
    // cannot be ready in time and spawns fork fresh by design (reported, not a failure).
    if (opts.pool > 0 && p.concurrency * 2 <= opts.pool && p.spawns.claimed <= p.spawns.forked) problems.push(`the ${p.name} phase (${p.concurrency} at once) forked most spawns fresh with a pool of ${opts.pool}: claimed ${p.spawns.claimed}, forked ${p.spawns.forked}`);
  }
  if (afterClose.trees.length > 0) problems.push(`after close the zygote's cgroup trees are still there: ${afterClose.trees.join(', ')}`);
  if (afterClose.processes.length > 0) problems.push(`after close ${afterClose.processes.length} of the zygote's processes (pool children, or in its cgroups) are still alive: ${afterClose.processes.slice(0, 10).join(', ')}`);
  return problems;
}

/** Why a snapshot is not settled, in a line. */
function unsettled(l: LeakSnapshot): string {
  const dirs = Object.entries(l.cgroups).map(([t, d]) => `${d.length} in ${t}`).join(', ');
  return `busy ${l.stats.busy}, queued ${l.stats.queued}, pool ${l.stats.poolIdle} idle of ${l.stats.poolSize}, live children ${l.liveChildren.length}, zombies ${l.zombies.length}, child cgroups ${dirs || 'none'} (${l.leakedCgroups.length} leaked)`;
}

function emptyCounts(): Counts {
  return { ok: 0, hung: 0, crashed: 0, wrong: 0, spawnFailed: 0 };
}

function sumCounts(all: Counts[]): Counts {
  const total = emptyCounts();
  for (const c of all) for (const k of Object.keys(total) as Outcome[]) total[k] += c[k];
  return total;
}
