// `npm run bench`: runStep() side by side with its peers, in one run. The identity step on 10
// rows and on 1M rows x 2 columns, without and with memory+pids limits, through a zygote with
// a warm pool (when startZygote has one), a zygote without, a cold node, node under
// bubblewrap, a node startup snapshot and an isolated-vm isolate; interleaved round by round,
// ratios against the cold node. Then runStep's own per-part breakdown (its `timings`),
// throughput at concurrency 1, 4 and 16, steps after quiet spells (bench/run-step-quiet.ts),
// and memory: the zygote's RSS, a running step's USS.
// Raw samples and summaries go to bench/results/run-step-<time>.json, the plot to
// bench/results/run-step.svg and the summary table to bench/results/run-step.md.
//   node dist/bench/run-step-bench.js [--quick] [--runs 200] [--big-runs 40] ...
import { Command } from 'commander';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, type Table } from 'apache-arrow';
import { BenchCgroups } from './lib/cgroup.js';
import { nonNegativeInt, positiveInt } from './lib/flags.js';
import { formatMiB, formatMs, table } from './lib/format.js';
import { RESULTS_DIR } from './lib/paths.js';
import { readPrivateMemory, readRssBytes, readTreePrivateMemory, type PrivateMemory } from './lib/procfs.js';
import { writeResults } from './lib/results.js';
import { median, shuffled, summarize, type Summary } from './lib/stats.js';
import { chart, type Panel } from './lib/svg.js';
import { isolatePeer } from './run-step-isolate.js';
import { STEP_LIMITS, type Held, type Peer, type RunningPeer, type Sample, type StepCase } from './run-step-peer.js';
import { bubblewrapPeer, coldPeer, snapshotPeer } from './run-step-process.js';
import { QUIET_PAUSE_MS, quietSpells, type QuietResult } from './run-step-quiet.js';
import { zygotePeer } from './run-step-zygote.js';

interface Options {
  quick: boolean;
  runs: number;
  bigRuns: number;
  bigRows: number;
  warmup: number;
  breakdownRuns: number;
  throughputSteps: number;
  coldThroughputSteps: number;
  memorySamples: number;
  quietSteps: number;
  peers?: string;
  replot?: string;
}

const QUICK: Partial<Options> = { runs: 5, bigRuns: 2, warmup: 1, breakdownRuns: 5, throughputSteps: 16, coldThroughputSteps: 8, memorySamples: 2, quietSteps: 2 };
const CONCURRENCY = [1, 4, 16];
const BASELINE = 'cold';

const cli = new Command('run-step-bench')
  .description('runStep side by side with a cold node, bubblewrap, a startup snapshot and isolated-vm; breakdown, throughput, memory.')
  .option('--quick', `a fast smoke run (${Object.entries(QUICK).map(([k, v]) => `${k} ${v}`).join(', ')}); results named *-quick`, false)
  .option('--runs <n>', 'measured runs per peer and cell on 10 rows', positiveInt, 200)
  .option('--big-runs <n>', 'measured runs per peer and cell on the big table', positiveInt, 40)
  .option('--big-rows <n>', 'rows of the big table (2 columns)', positiveInt, 1_000_000)
  .option('--warmup <n>', 'unmeasured runs per peer and cell first', nonNegativeInt, 5)
  .option('--breakdown-runs <n>', 'timed runStep calls (timings: true) per zygote peer on 10 rows', positiveInt, 200)
  .option('--throughput-steps <n>', 'steps per zygote peer and concurrency', positiveInt, 200)
  .option('--cold-throughput-steps <n>', 'steps of the cold node at concurrency 4', positiveInt, 100)
  .option('--memory-samples <n>', 'held steps per peer whose memory is read', nonNegativeInt, 20)
  .option('--quiet-steps <n>', `steps per zygote peer after a quiet spell (${QUIET_PAUSE_MS} ms without a step)`, nonNegativeInt, 20)
  .option('--peers <names>', 'only these peers, comma-separated (the cold baseline is always run)')
  .option('--replot <json>', 'run nothing: print the report and write the plot and table again from a results file')
  .parse();
const opts: Options = { ...cli.opts<Options>(), ...(cli.opts<Options>().quick ? QUICK : {}) };
/** A results file to draw again, instead of a run. */
const saved = opts.replot ? (JSON.parse(readFileSync(opts.replot, 'utf8')) as Saved) : null;
if (saved) Object.assign(opts, { ...saved.options, replot: opts.replot });

interface CellResult {
  peer: string;
  case: string;
  samples: number[];
  warmup: number[];
  failures: string[];
  faultsMinor: number[];
  parts: Record<string, number[]>;
  summary: Summary;
  faults: Summary;
  /** The host's load averages when the cell's runs ended (the host may be shared). */
  loadavg?: number[];
  /** cold p50 ÷ this p50 (and p99): how many times faster than a cold node. */
  vsCold: { p50: number; p99: number } | null;
}

interface Breakdown {
  peer: string;
  case: string;
  runs: number;
  parts: Record<string, Summary>;
  raw: Record<string, (number | null)[]>;
}

interface Throughput {
  peer: string;
  case: string;
  concurrency: number;
  steps: number;
  wallMs: number;
  stepsPerSec: number;
  latency: Summary;
  failures: string[];
}

interface MemoryResult {
  peer: string;
  samples: PrivateMemory[];
  heapBytes: number[];
  processes: number[];
  failures: string[];
}

interface Resident {
  peer: string;
  pid: number;
  rssBefore: number;
  rssAfter: number;
  idleChildren: { pid: number; uss: number }[];
  stats: unknown;
}

interface PeerInfo {
  name: string;
  description: string;
  startupMs: number | null;
}

/** What a results file holds (and --replot reads). */
interface Saved {
  kind: 'run-step';
  startedAt: string;
  finishedAt: string;
  node: string;
  kernel: string;
  cpus: number;
  loadavgAtEnd: number[];
  options: Options;
  limits: typeof STEP_LIMITS;
  peers: PeerInfo[];
  skipped: { peer: string; why: string }[];
  notes: string[];
  cells: Omit<CellResult, 'warmup'>[];
  breakdowns: Breakdown[];
  throughputs: Throughput[];
  /** Absent in results from before the quiet-spells part. */
  quiet?: QuietResult[];
  memory: (MemoryResult & { uss: Summary; heap: Summary })[];
  resident: Resident[];
}

interface PeerState {
  peer: Peer;
  running: RunningPeer;
  startupMs: number;
}

const startedAt = saved ? new Date(saved.startedAt) : new Date();
const suffix = opts.quick ? '-quick' : '';
const small = makeTable(10);
const big = makeTable(opts.bigRows);
const CASES: StepCase[] = [
  { label: '10 rows', table: small, limited: false },
  { label: '10 rows, limits', table: small, limited: true },
  { label: `${short(opts.bigRows)} rows`, table: big, limited: false },
  { label: `${short(opts.bigRows)} rows, limits`, table: big, limited: true },
];
const caseKey = (c: StepCase) => c.label;

const cgroups = saved ? { unavailable: 'not measuring' } : BenchCgroups.open();
const blobDir = saved ? '' : mkdtempSync(join(tmpdir(), 'zygote-bench-snapshot-'));
const wanted = opts.peers?.split(',').map((s) => s.trim());
const PEERS: Peer[] = [zygotePeer('zygote-pool', true), zygotePeer('zygote-pool-metrics', true, true), zygotePeer('zygote', false), coldPeer(cgroups), bubblewrapPeer(cgroups), snapshotPeer(cgroups, blobDir), isolatePeer()].filter(
  (p) => !wanted || wanted.includes(p.name) || p.name === BASELINE,
);

const live: PeerState[] = [];
const skipped: { peer: string; why: string }[] = [];
const cells: CellResult[] = [];
const breakdowns: Breakdown[] = [];
const throughputs: Throughput[] = [];
const quiet: QuietResult[] = [];
const memory: MemoryResult[] = [];
const resident: Resident[] = [];
const notes: string[] = [];
if (!saved && 'unavailable' in cgroups) notes.push(`the process peers get no memory+pids cgroup here (${cgroups.unavailable}): their limited cells are skipped`);

if (saved) {
  skipped.push(...saved.skipped);
  notes.push(...saved.notes);
  cells.push(...saved.cells.map((c) => ({ ...c, warmup: [] })));
  breakdowns.push(...saved.breakdowns);
  throughputs.push(...saved.throughputs);
  quiet.push(...(saved.quiet ?? []));
  memory.push(...saved.memory);
  resident.push(...saved.resident);
} else await measure();

async function measure(): Promise<void> {
try {
  for (const peer of PEERS) {
    const t0 = performance.now();
    process.stderr.write(`starting ${peer.name}\n`);
    const r = await peer.start().catch((err: Error) => ({ skipped: `it failed to start: ${err.message}` }));
    if ('skipped' in r) {
      skipped.push({ peer: peer.name, why: r.skipped });
      process.stderr.write(`  ${peer.name}: skipped: ${r.skipped}\n`);
    } else live.push({ peer, running: r, startupMs: performance.now() - t0 });
  }
  const rssBefore = new Map(live.filter((p) => p.running.residentPid !== null).map((p) => [p.peer.name, readRssBytes(p.running.residentPid!)]));

  // ---- latency: per table, every peer with and without limits, interleaved round by round ----
  // (so the limits' cost and the ratios are differences measured under the same load)
  for (const size of [small, big]) {
    const n = size === small ? opts.runs : opts.bigRuns;
    const pairs = CASES.filter((c) => c.table === size).flatMap((c) => live.filter((p) => !(c.limited && p.running.noLimits)).map((p) => ({ p, c, cell: emptyCell(p.peer.name, caseKey(c)) })));
    const results = pairs.map((x) => x.cell);
    cells.push(...results);
    const label = `${short(size.numRows)} rows`;
    await rounds(opts.warmup, `${label}: warm-up`, pairs.length, async (i) => {
      results[i].warmup.push((await pairs[i].p.running.run(pairs[i].c)).ms);
    }, results);
    await rounds(n, label, pairs.length, async (i) => record(results[i], await pairs[i].p.running.run(pairs[i].c)), results);
    for (const r of results) r.loadavg = loadavg();
  }

  // ---- runStep's own breakdown (timings: true) ----------------------------------------------
  for (const p of live.filter((s) => s.peer.name.startsWith('zygote'))) {
    for (const [c, n] of [[CASES[1], opts.breakdownRuns], [CASES[3], opts.bigRuns]] as const) {
      const raw: Record<string, (number | null)[]> = {};
      let failed = 0;
      for (let i = 0; i < n; i++) {
        try {
          const s = await p.running.run(c, { timings: true });
          for (const [k, v] of Object.entries(s.timings ?? {})) (raw[k] ??= []).push(v);
        } catch {
          failed++;
        }
      }
      if (failed) notes.push(`breakdown ${p.peer.name} ${c.label}: ${failed} of ${n} runs failed`);
      const parts = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, summarize(v.filter((x): x is number => x !== null))]));
      breakdowns.push({ peer: p.peer.name, case: caseKey(c), runs: n, parts, raw });
      process.stderr.write(`  breakdown ${p.peer.name} ${c.label}: ${n} runs\n`);
    }
  }

  // ---- throughput ----------------------------------------------------------------------------
  const limitedSmall = CASES[1];
  for (const p of live.filter((s) => s.peer.name.startsWith('zygote'))) {
    for (const k of CONCURRENCY) throughputs.push(await throughput(p, limitedSmall, Math.max(opts.throughputSteps, k), k));
  }
  const cold = live.find((s) => s.peer.name === BASELINE);
  if (cold && !cold.running.noLimits) throughputs.push(await throughput(cold, limitedSmall, Math.max(opts.coldThroughputSteps, 4), 4));

  // ---- steps after a quiet spell (the zygote trims its idle heap; a renderer's sporadic load) ----
  const zygotes = live.filter((s) => s.peer.name.startsWith('zygote')).map((s) => ({ name: s.peer.name, running: s.running }));
  if (opts.quietSteps > 0 && zygotes.length > 0) quiet.push(...(await quietSpells(zygotes, limitedSmall, opts.quietSteps)));

  // ---- memory: a running step of each peer; the zygote's RSS and idle children ---------------
  const holders = live.filter((s) => s.running.hold);
  const mem = holders.map((s) => ({ peer: s.peer.name, samples: [] as PrivateMemory[], heapBytes: [] as number[], processes: [] as number[], failures: [] as string[] }));
  memory.push(...mem);
  await rounds(opts.memorySamples, 'memory', holders.length, async (i) => {
    await holders[i].running.hold!(limitedSmall, (h: Held) => {
      if (h.heapBytes !== undefined) mem[i].heapBytes.push(h.heapBytes);
      if (h.pid !== null) {
        mem[i].samples.push(readTreePrivateMemory(h.pid));
        mem[i].processes.push(treeSize(h.pid));
      }
    });
  }, mem);
  for (const s of live) {
    const pid = s.running.residentPid;
    if (pid === null) continue;
    resident.push({
      peer: s.peer.name,
      pid,
      rssBefore: rssBefore.get(s.peer.name) ?? NaN,
      rssAfter: readRssBytes(pid),
      idleChildren: childrenOf(pid).map((c) => ({ pid: c, uss: safeUss(c) })),
      // zygote.stats() answers over the control socket: awaited before the handle closes.
      stats: s.running.stats ? await s.running.stats() : null,
    });
  }
} finally {
  await Promise.allSettled(live.map((s) => s.running.close()));
  if (!('unavailable' in cgroups)) cgroups.close();
  rmSync(blobDir, { recursive: true, force: true });
}
}

// ---- summaries, ratios, output ---------------------------------------------------------------
for (const cell of cells) {
  cell.summary = summarize(cell.samples);
  cell.faults = summarize(cell.faultsMinor);
}
for (const cell of cells) {
  const base = cells.find((c) => c.peer === BASELINE && c.case === cell.case);
  cell.vsCold = base && cell.samples.length ? { p50: base.summary.p50 / cell.summary.p50, p99: base.summary.p99 / cell.summary.p99 } : null;
}
const peerInfo: PeerInfo[] = saved ? saved.peers : PEERS.map((p) => ({ name: p.name, description: p.description, startupMs: live.find((s) => s.peer === p)?.startupMs ?? null }));
const peerNames = peerInfo.map((p) => p.name);
printReport();
const svg = plot();
const svgPath = join(RESULTS_DIR, `run-step${suffix}.svg`);
writeFileSync(svgPath, svg);
const md = markdownTable();
const mdPath = join(RESULTS_DIR, `run-step${suffix}.md`);
writeFileSync(mdPath, md);
const results: Saved = {
  kind: 'run-step',
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  node: process.version,
  kernel: release(),
  cpus: availableParallelism(),
  loadavgAtEnd: loadavg(),
  options: opts,
  limits: STEP_LIMITS,
  peers: peerInfo,
  skipped,
  notes,
  cells: cells.map(({ warmup: _w, ...c }) => c),
  breakdowns,
  throughputs,
  quiet,
  memory: memory.map((m) => ({ ...m, uss: summarize(m.samples.map((s) => s.ussBytes)), heap: summarize(m.heapBytes) })),
  resident,
};
const jsonPath = saved ? opts.replot! : writeResults(`run-step${suffix}`, startedAt, results);
console.log(`\nraw samples and summaries: ${jsonPath}\nplot: ${svgPath}\ntable: ${mdPath}`);
const failed =
  cells.reduce((n, c) => n + c.failures.length, 0) +
  throughputs.reduce((n, t) => n + t.failures.length, 0) +
  quiet.reduce((n, q) => n + q.failures.length, 0) +
  memory.reduce((n, m) => n + m.failures.length, 0);
if (failed > 0) {
  console.error(`${failed} steps failed (see "failures" in the results file)`);
  process.exitCode = 1;
}

// ---- helpers -------------------------------------------------------------------------------

function makeTable(rows: number): Table {
  const id = new Int32Array(rows);
  const value = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    id[i] = i;
    value[i] = i * 0.5;
  }
  return tableFromArrays({ id, value });
}

function short(n: number): string {
  return n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n);
}

function emptyCell(peer: string, c: string): CellResult {
  return { peer, case: c, samples: [], warmup: [], failures: [], faultsMinor: [], parts: {}, summary: summarize([]), faults: summarize([]), vsCold: null };
}

function record(cell: CellResult, s: Sample): void {
  cell.samples.push(s.ms);
  if (s.faults) cell.faultsMinor.push(s.faults.minor);
  for (const [k, v] of Object.entries(s.parts ?? {})) (cell.parts[k] ??= []).push(v);
}

/**
 * n rounds of sample(i) for each of count peers, one after another, in an order shuffled each
 * round, so that no peer always runs right after another; a failure is recorded, not fatal.
 * (A rotation is not enough: it keeps who follows whom, and a
 * zygote peer that runs right after another pays for that one's pool refill on the same cores:
 * measured, the metrics peer, always right after the pool peer, was 20 ms slower at p50 than
 * the pool peer in every interleaved cell and as fast or faster run on its own.)
 */
async function rounds(n: number, phase: string, count: number, sample: (i: number) => Promise<void>, sinks: { failures: string[] }[]): Promise<void> {
  const every = Math.max(1, Math.round(n / 4));
  for (let r = 0; r < n; r++) {
    for (const i of shuffled(count)) {
      try {
        await sample(i);
      } catch (err) {
        sinks[i].failures.push(`${phase} ${r + 1}: ${(err as Error).message.slice(0, 2000)}`);
      }
    }
    if ((r + 1) % every === 0 || r + 1 === n) process.stderr.write(`  ${phase}: ${r + 1}/${n}\n`);
  }
}


async function throughput(p: PeerState, c: StepCase, steps: number, concurrency: number): Promise<Throughput> {
  // A short warm-up at this concurrency first.
  await Promise.allSettled(Array.from({ length: concurrency }, () => p.running.run(c)));
  const latency: number[] = [];
  const failures: string[] = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < steps) {
        started++;
        try {
          latency.push((await p.running.run(c)).ms);
        } catch (err) {
          failures.push((err as Error).message.slice(0, 2000));
        }
      }
    }),
  );
  const wallMs = performance.now() - t0;
  process.stderr.write(`  throughput ${p.peer.name} ${c.label} x${concurrency}: ${steps} steps\n`);
  return { peer: p.peer.name, case: caseKey(c), concurrency, steps, wallMs, stepsPerSec: latency.length / (wallMs / 1000), latency: summarize(latency), failures };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function treeSize(pid: number): number {
  return 1 + childrenOf(pid).reduce((n, c) => n + treeSize(c), 0);
}

function safeUss(pid: number): number {
  try {
    return readPrivateMemory(pid).ussBytes;
  } catch {
    return NaN;
  }
}

function cellOf(peer: string, c: string): CellResult | undefined {
  return cells.find((r) => r.peer === peer && r.case === c);
}

/** A ratio as "12.3x". */
function x(v: number | undefined): string {
  return v !== undefined && Number.isFinite(v) ? `${v.toFixed(1)}x` : '—';
}

function printReport(): void {
  console.log(`\nrunStep, identity step: ${opts.runs} runs per peer on 10 rows, ${opts.bigRuns} on ${short(opts.bigRows)} rows x 2 columns (after ${opts.warmup} warm-up), every peer with and without limits interleaved round by round; limits: memory ${STEP_LIMITS.memoryBytes / 2 ** 20} MiB + pids ${STEP_LIMITS.pids}; ${availableParallelism()} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const c of CASES) {
    console.log(`\n${c.label}`);
    console.log(
      table([
        ['peer', 'n', 'p50', 'p90', 'p99', 'min', 'max', 'cold÷ p50', 'cold÷ p99', 'faults p50', 'failed'],
        ...cells
          .filter((r) => r.case === caseKey(c))
          .map((r) => [r.peer, String(r.summary.n), ...[r.summary.p50, r.summary.p90, r.summary.p99, r.summary.min, r.summary.max].map(formatMs), x(r.vsCold?.p50), x(r.vsCold?.p99), Number.isFinite(r.faults.p50) ? String(r.faults.p50) : '—', String(r.failures.length)]),
      ]),
    );
  }
  const iso = cells.filter((c) => c.peer === 'isolated-vm' && c.parts.isolateStartMs);
  for (const c of iso) console.log(`isolated-vm ${c.case}: ${Object.entries(c.parts).map(([k, v]) => `${k} p50 ${formatMs(median(v))}`).join(', ')}`);
  for (const b of breakdowns) {
    console.log(`\nWhere runStep's time goes: ${b.peer}, ${b.case} (${b.runs} runs with timings: true; p50 and p99 of each part)`);
    console.log(table([['part', 'p50', 'p99', 'max'], ...Object.entries(b.parts).map(([k, s]) => [k, formatMs(s.p50), formatMs(s.p99), formatMs(s.max)])]));
  }
  console.log('\nThroughput (10 rows, limits): steps/s and per-step latency');
  console.log(table([['peer', 'concurrency', 'steps', 'steps/s', 'p50', 'p99', 'failed'], ...throughputs.map((t) => [t.peer, String(t.concurrency), String(t.steps), t.stepsPerSec.toFixed(1), formatMs(t.latency.p50), formatMs(t.latency.p99), String(t.failures.length)])]));
  if (quiet.length > 0) {
    console.log(`\nAfter a quiet spell (10 rows, limits; each step ${quiet[0].pauseMs} ms after the last, so after the zygote's idle heap trim), against back to back (the breakdown and the latency cell)`);
    const backToBack = (peer: string) => ({ fb: breakdowns.find((b) => b.peer === peer && b.case === quiet[0].case)?.parts.firstByteMs?.p50, faults: cellOf(peer, quiet[0].case)?.faults.p50 });
    console.log(
      table([
        ['peer', 'steps', 'total p50', 'total p99', 'first byte p50', 'back to back', 'faults p50', 'back to back', 'failed'],
        ...quiet.map((q) => [q.peer, String(q.steps), formatMs(q.total.p50), formatMs(q.total.p99), formatMs(q.firstByte.p50), formatMs(backToBack(q.peer).fb ?? NaN), q.faults.n ? q.faults.p50.toFixed(0) : '—', Number.isFinite(backToBack(q.peer).faults) ? backToBack(q.peer).faults!.toFixed(0) : '—', String(q.failures.length)]),
      ]),
    );
  }
  console.log(`\nMemory of a running step (10 rows, limits; median of ${opts.memorySamples}; USS = Private_Clean + Private_Dirty of its processes, from smaps_rollup)`);
  console.log(
    table([
      ['peer', 'processes', 'USS', 'PSS', 'RSS', 'isolate heap', 'failed'],
      ...memory.map((m) => [m.peer, m.processes.length ? String(median(m.processes)) : '—', formatMiB(median(m.samples.map((s) => s.ussBytes))), formatMiB(median(m.samples.map((s) => s.pssBytes))), formatMiB(median(m.samples.map((s) => s.rssBytes))), m.heapBytes.length ? formatMiB(median(m.heapBytes)) : '—', String(m.failures.length)]),
    ]),
  );
  for (const r of resident) {
    console.log(`${r.peer}: zygote RSS ${formatMiB(r.rssBefore)} at start, ${formatMiB(r.rssAfter)} after all runs; idle children: ${r.idleChildren.length ? r.idleChildren.map((c) => formatMiB(c.uss)).join(', ') + ' USS' : 'none'}${r.stats ? `; stats ${JSON.stringify(r.stats)}` : ''}`);
  }
  console.log('');
  for (const p of peerInfo) console.log(`  ${p.name}: ${p.description}`);
  for (const s of skipped) console.log(`  SKIPPED ${s.peer}: ${s.why}`);
  for (const n of notes) console.log(`  note: ${n}`);
}

function plot(): string {
  const latency: Panel = {
    title: 'runStep, identity step: median (bar) and p99 (whisker), ms',
    unit: 'ms',
    log: true,
    groups: CASES.map((c) => ({ label: c.label, bars: peerNames.map((p) => ({ series: p, value: cellOf(p, caseKey(c))?.summary.p50 ?? null, high: cellOf(p, caseKey(c))?.summary.p99 ?? null })) })),
  };
  const tput: Panel = {
    title: 'Throughput, 10 rows with limits: steps/s by concurrency',
    unit: 'steps/s',
    log: false,
    series: [...new Set(throughputs.map((t) => t.peer))].concat(skipped.some((s) => s.peer === 'zygote-pool') ? ['zygote-pool'] : []),
    groups: CONCURRENCY.map((k) => ({ label: `concurrency ${k}`, bars: peerNames.map((p) => ({ series: p, value: throughputs.find((t) => t.peer === p && t.concurrency === k)?.stepsPerSec ?? null })) })),
  };
  const sub = `${startedAt.toISOString().slice(0, 16)}Z, node ${process.version}, ${availableParallelism()} CPUs; ${opts.runs} runs (10 rows), ${opts.bigRuns} (${short(opts.bigRows)} rows) per bar${skipped.length ? `; skipped: ${skipped.map((s) => s.peer).join(', ')}` : ''}`;
  return chart('zygote runStep and its peers', sub, peerNames, [latency, tput]);
}

function markdownTable(): string {
  const head = ['peer', ...CASES.map((c) => `${c.label}: p50 / p99 (cold÷p50)`)];
  const rows = peerNames.map((p) => [
    p,
    ...CASES.map((c) => {
      const r = cellOf(p, caseKey(c));
      if (!r || r.samples.length === 0) return skipped.some((s) => s.peer === p) ? 'skipped' : '—';
      return `${r.summary.p50.toFixed(1)} / ${r.summary.p99.toFixed(1)} ms (${x(r.vsCold?.p50)})`;
    }),
  ]);
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  return `${lines.join('\n')}\n`;
}
