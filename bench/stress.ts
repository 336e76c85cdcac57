// `npm run stress`: forks many heavy children from one zygote and fails on any hang, crash,
// wrong digest, fd leak or zombie. The core is runStress (stress-run.ts), which tests call.
//   node dist/bench/stress.js [--sequential 10000] [--concurrent 2000] [--concurrency 16] [--child-timeout-ms 20000]
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { nonNegativeInt, positiveInt } from './lib/flags.js';
import { formatDuration, formatMiB, formatMs, table } from './lib/format.js';
import { writeResults } from './lib/results.js';
import { runStress, type StressReport } from './stress-run.js';

export { runStress, type StressOptions, type StressReport, type PhaseReport, type ProcSnapshot } from './stress-run.js';

interface Flags {
  sequential: number;
  concurrent: number;
  concurrency: number;
  childTimeoutMs: number;
  seeds: number;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

async function main(): Promise<void> {
  const flags = new Command('stress')
    .description('Fork many GC- and Arrow-heavy children from one zygote; fail on any hang, crash, wrong output, fd leak or zombie.')
    .option('--sequential <n>', 'children run one after another', nonNegativeInt, 10_000)
    .option('--concurrent <n>', 'children run concurrently afterwards', nonNegativeInt, 2_000)
    .option('--concurrency <n>', 'children alive at once in the concurrent phase', positiveInt, 16)
    .option('--child-timeout-ms <ms>', 'a child running longer is killed and counted hung', positiveInt, 20_000)
    .option('--seeds <n>', 'distinct inputs the children cycle through', positiveInt, 8)
    .parse()
    .opts<Flags>();
  const startedAt = new Date();
  const report = await runStress({ ...flags, onProgress: progressPrinter() });
  print(report);
  const file = writeResults('stress', startedAt, { kind: 'stress', startedAt: startedAt.toISOString(), node: process.version, ...report });
  console.log(`\nsummary: ${file}`);
  if (report.problems.length > 0) {
    console.error(`\nFAILED:\n${report.problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log('\nPASSED');
  }
}

/** A line on stderr every tenth of each phase. */
function progressPrinter(): (phase: string, done: number, total: number) => void {
  const t0 = performance.now();
  return (phase, done, total) => {
    if (done % Math.max(1, Math.round(total / 10)) === 0 || done === total) {
      process.stderr.write(`  ${phase}: ${done}/${total} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
  };
}

function print(r: StressReport): void {
  console.log(`\nStress: zygote pid ${r.zygotePid}, ${formatDuration(r.durationMs)} in all\n`);
  console.log(
    table([
      ['phase', 'children', 'at once', 'ok', 'hung', 'crashed', 'wrong', 'no spawn', 'duration', 'child p50', 'child p99'],
      ...r.phases.map((p) => [
        p.name,
        String(p.children),
        String(p.concurrency),
        ...(['ok', 'hung', 'crashed', 'wrong', 'spawnFailed'] as const).map((k) => String(p.counts[k])),
        formatDuration(p.durationMs),
        formatMs(p.childWallMs.p50),
        formatMs(p.childWallMs.p99),
      ]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['', 'before', 'after'],
      ['zygote RSS', formatMiB(r.before.zygoteRssBytes), formatMiB(r.after.zygoteRssBytes)],
      ['zygote open fds', String(r.before.zygoteFds), String(r.after.zygoteFds)],
      ['client open fds', String(r.before.clientFds), String(r.after.clientFds)],
      ['zygote zombie children', '', String(r.zombies.length)],
    ]),
  );
  for (const f of r.failures.slice(0, 10)) console.log(`  ${f.outcome} seed=${f.seed} pid=${f.pid ?? '-'}: ${f.detail}`);
}
