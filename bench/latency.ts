// `npm run bench`: spawn request → first stdout byte, zygote fork against a cold node, alternating.
//   node dist/bench/latency.js [--runs 200] [--warmup 5] [--memory-samples 20] [--timeout-ms 10000]
import { Command } from 'commander';
import { availableParallelism, release } from 'node:os';
import { nonNegativeInt, positiveInt } from './lib/flags.js';
import { formatMiB, formatMs, table } from './lib/format.js';
import { readRssBytes, type PrivateMemory } from './lib/procfs.js';
import { writeResults } from './lib/results.js';
import { median, summarize, type Summary } from './lib/stats.js';
import { stepMemory, timeToFirstByte } from './latency-measure.js';
import { BENCH_CONFIG, REFERENCE_VARIANT, VARIANTS, type RunningVariant, type Variant } from './latency-variants.js';

interface Options {
  runs: number;
  warmup: number;
  memorySamples: number;
  timeoutMs: number;
}

interface VariantResult {
  name: string;
  description: string;
  startupMs: number;
  /** Every measured sample, in run order (warm-up runs excluded). */
  firstByteMs: number[];
  warmupMs: number[];
  failures: string[];
  memory: PrivateMemory[];
  residentPid: number | null;
  residentRssBytes: { before: number; after: number } | null;
  summary: Summary;
}

const opts = new Command('latency')
  .description('Spawn request → first byte on stdout: zygote fork against cold node, alternating.')
  .option('--runs <n>', 'measured runs per variant', positiveInt, 200)
  .option('--warmup <n>', 'unmeasured runs per variant first', nonNegativeInt, 5)
  .option('--memory-samples <n>', 'steps per variant whose private memory is read', nonNegativeInt, 20)
  .option('--timeout-ms <ms>', 'deadline for each launch, first byte and exit', positiveInt, 10_000)
  .parse()
  .opts<Options>();

const startedAt = new Date();
const results = VARIANTS.map((v) => emptyResult(v));
const running: RunningVariant[] = [];
try {
  for (const [i, v] of VARIANTS.entries()) {
    const t0 = performance.now();
    running.push(await v.start());
    results[i].startupMs = performance.now() - t0;
    results[i].residentPid = running[i].residentPid;
  }
  const residentBefore = running.map((r) => (r.residentPid === null ? NaN : readRssBytes(r.residentPid)));

  await alternate(opts.warmup, 'warm-up', async (i) => results[i].warmupMs.push(await timeToFirstByte(running[i], opts.timeoutMs)));
  await alternate(opts.runs, 'first byte', async (i) => results[i].firstByteMs.push(await timeToFirstByte(running[i], opts.timeoutMs)));
  await alternate(opts.memorySamples, 'memory', async (i) => results[i].memory.push(await stepMemory(running[i], opts.timeoutMs)));

  running.forEach((r, i) => {
    if (r.residentPid !== null) results[i].residentRssBytes = { before: residentBefore[i], after: readRssBytes(r.residentPid) };
  });
} finally {
  await Promise.allSettled(running.map((r) => r.close()));
}
for (const r of results) r.summary = summarize(r.firstByteMs);

const ratios = ratiosToReference(results);
printReport(results, ratios);
const file = writeResults('latency', startedAt, {
  kind: 'latency',
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  node: process.version,
  kernel: release(),
  cpus: availableParallelism(),
  options: opts,
  config: { main: BENCH_CONFIG.main.href, preload: BENCH_CONFIG.preload, env: BENCH_CONFIG.env },
  ratios,
  variants: results,
});
console.log(`\nraw samples: ${file}`);
const failed = results.reduce((n, r) => n + r.failures.length, 0);
if (failed > 0) {
  console.error(`${failed} samples failed (see "failures" in the results file)`);
  process.exitCode = 1;
}

/** Runs sample(i) for every variant i, n rounds, variants interleaved (a, b, a, b ...). */
async function alternate(n: number, phase: string, sample: (i: number) => Promise<unknown>): Promise<void> {
  const every = Math.max(1, Math.round(n / 4));
  for (let round = 1; round <= n; round++) {
    for (let i = 0; i < running.length; i++) {
      try {
        await sample(i);
      } catch (err) {
        results[i].failures.push(`${phase} ${round}: ${(err as Error).message}`);
      }
    }
    if (round % every === 0 || round === n) process.stderr.write(`  ${phase}: ${round}/${n}\n`);
  }
}

function emptyResult(v: Variant): VariantResult {
  return {
    name: v.name,
    description: v.description,
    startupMs: NaN,
    firstByteMs: [],
    warmupMs: [],
    failures: [],
    memory: [],
    residentPid: null,
    residentRssBytes: null,
    summary: summarize([]),
  };
}

interface Ratio {
  variant: string;
  p50: number;
  p99: number;
}

/** How many times slower the reference (cold) is than each other variant. */
function ratiosToReference(all: VariantResult[]): Ratio[] {
  const ref = all.find((r) => r.name === REFERENCE_VARIANT);
  if (!ref) return [];
  return all.filter((r) => r !== ref).map((r) => ({ variant: r.name, p50: ref.summary.p50 / r.summary.p50, p99: ref.summary.p99 / r.summary.p99 }));
}

function printReport(all: VariantResult[], ratios: Ratio[]): void {
  const n = opts.runs;
  console.log(`\nSpawn request → first byte on stdout (${n} runs each, alternating; main ${BENCH_CONFIG.main.pathname.split('/').pop()}, preload ${BENCH_CONFIG.preload.join(', ')})\n`);
  console.log(
    table([
      ['variant', 'p50', 'p90', 'p99', 'min', 'max', 'failed', 'start-up'],
      ...all.map((r) => [r.name, ...[r.summary.p50, r.summary.p90, r.summary.p99, r.summary.min, r.summary.max].map(formatMs), String(r.failures.length), formatMs(r.startupMs)]),
    ]),
  );
  for (const r of ratios) console.log(`\n${REFERENCE_VARIANT} ÷ ${r.variant}: p50 ${r.p50.toFixed(1)}×, p99 ${r.p99.toFixed(1)}×`);
  console.log(`\nMemory (median of ${opts.memorySamples} live steps each, with the pid namespace's init where there is one; USS = Private_Clean + Private_Dirty)\n`);
  console.log(
    table([
      ['variant', 'step USS', 'step PSS', 'step RSS', 'resident RSS before', 'after'],
      ...all.map((r) => [
        r.name,
        formatMiB(median(r.memory.map((m) => m.ussBytes))),
        formatMiB(median(r.memory.map((m) => m.pssBytes))),
        formatMiB(median(r.memory.map((m) => m.rssBytes))),
        r.residentRssBytes ? `${formatMiB(r.residentRssBytes.before)} (pid ${r.residentPid})` : '—',
        r.residentRssBytes ? formatMiB(r.residentRssBytes.after) : '—',
      ]),
    ]),
  );
  for (const r of all) console.log(`  ${r.name}: ${r.description}`);
}
