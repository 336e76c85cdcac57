// The stress run: thousands of GC- and Arrow-heavy children forked one after another, then
// concurrently, each checked; plus the zygote's fds, RSS and zombies before and after.
import { startZygote, type Zygote } from 'zygote';
import { countFds, readRssBytes, zombieChildren } from './lib/procfs.js';
import { summarize, type Summary } from './lib/stats.js';
import { fixtureUrl } from './lib/paths.js';
import { runChild, type ChildResult, type Outcome } from './stress-child.js';
import { ExpectedDigests } from './stress-expected.js';

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
  /** Called after each child. */
  onProgress?: (phase: PhaseName, done: number, total: number) => void;
}

/** The options with their defaults filled in, as reported. */
export type ResolvedOptions = Required<Omit<StressOptions, 'onProgress'>>;

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
  };
  for (const k of ['sequential', 'concurrent'] as const) {
    if (!Number.isSafeInteger(opts[k]) || opts[k] < 0) throw new TypeError(`Expected \`${k}\` to be a non-negative integer, got ${opts[k]}`);
  }
  for (const k of ['concurrency', 'childTimeoutMs', 'seeds'] as const) {
    if (!Number.isSafeInteger(opts[k]) || opts[k] <= 0) throw new TypeError(`Expected \`${k}\` to be a positive integer, got ${opts[k]}`);
  }
  const expected = await ExpectedDigests.load();
  const t0 = performance.now();
  const z = await startZygote({ main: fixtureUrl('stress-main.mjs'), preload: ['apache-arrow'], env: {}, name: 'stress' });
  try {
    const failures: ChildResult[] = [];
    // One child first, outside the counts: this process's loop opens a reserve fd (libuv's
    // EMFILE guard, /dev/null) when it creates its first stream, which is not a leak.
    const warmup = await runChild(z, 1, 'warm-up', expected.stdoutFor(1), opts.childTimeoutMs);
    if (warmup.outcome !== 'ok') failures.push(warmup);
    const before = snapshot(z.pid);
    const phases: PhaseReport[] = [];
    const plan: [PhaseName, number, number][] = [
      ['sequential', opts.sequential, 1],
      ['concurrent', opts.concurrent, opts.concurrency],
    ];
    for (const [name, children, concurrency] of plan) {
      if (children === 0) continue;
      phases.push(await runPhase(z, name, children, concurrency, opts, expected, failures, options.onProgress));
    }
    // Let the client's stdio sockets finish closing before counting its fds.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = snapshot(z.pid);
    const zombies = zombieChildren(z.pid);
    const totals = sumCounts(phases.map((p) => p.counts));
    return {
      options: opts,
      zygotePid: z.pid,
      durationMs: performance.now() - t0,
      phases,
      totals,
      before,
      after,
      zombies,
      failures,
      problems: [...(warmup.outcome === 'ok' ? [] : [`the warm-up child was ${warmup.outcome}: ${warmup.detail}`]), ...findProblems(totals, before, after, zombies)],
    };
  } finally {
    await z.close();
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
): Promise<PhaseReport> {
  const t0 = performance.now();
  const counts = emptyCounts();
  const wall: number[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < children) {
      const i = next++;
      const seed = (i % opts.seeds) + 1;
      const r = await runChild(z, seed, `${name.slice(0, 3)}-${i}`, expected.stdoutFor(seed), opts.childTimeoutMs);
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

function findProblems(totals: Counts, before: ProcSnapshot, after: ProcSnapshot, zombies: number[]): string[] {
  const problems: string[] = [];
  for (const k of ['hung', 'crashed', 'wrong', 'spawnFailed'] as const) {
    if (totals[k] > 0) problems.push(`${totals[k]} children ${k === 'wrong' ? 'wrote the wrong digest' : k === 'spawnFailed' ? 'failed to spawn' : k}`);
  }
  if (after.zygoteFds > before.zygoteFds) problems.push(`the zygote's open fds grew from ${before.zygoteFds} to ${after.zygoteFds}`);
  if (after.clientFds > before.clientFds) problems.push(`the client's open fds grew from ${before.clientFds} to ${after.clientFds}`);
  if (zombies.length > 0) problems.push(`${zombies.length} zombie children of the zygote: ${zombies.slice(0, 10).join(', ')}`);
  return problems;
}

function emptyCounts(): Counts {
  return { ok: 0, hung: 0, crashed: 0, wrong: 0, spawnFailed: 0 };
}

function sumCounts(all: Counts[]): Counts {
  const total = emptyCounts();
  for (const c of all) for (const k of Object.keys(total) as Outcome[]) total[k] += c[k];
  return total;
}
