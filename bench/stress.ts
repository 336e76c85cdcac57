// `npm run stress`: forks many heavy children from one zygote and fails on any hang, crash,
// wrong digest, or leak (fds, mounts, zombies, cgroups, processes left after close). With
// --pool N the zygote keeps a warm pool and the run fails if most spawns forked fresh. The core
// is runStress (stress-run.ts), which tests call.
//   node dist/bench/stress.js [--pool 0] [--sequential 10000] [--concurrent 2000] [--concurrency 16] [--child-timeout-ms 20000]
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { nonNegativeInt, positiveInt } from './lib/flags.js';
import { formatDuration, formatMiB, formatMs, table } from './lib/format.js';
import { progressPrinter, reportVerdict } from './lib/results.js';
import { runStress, STRESS_LIMITS, type StressReport } from './stress-run.js';

export { runStress, STRESS_LIMITS, type StressOptions, type StressReport, type PhaseReport, type ProcSnapshot } from './stress-run.js';
export { zygoteCgroupTrees } from './lib/cgroup-tree.js';

interface Flags {
  sequential: number;
  concurrent: number;
  concurrency: number;
  childTimeoutMs: number;
  seeds: number;
  pool: number;
  settleMs: number;
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
    .option('--pool <n>', 'children in the zygote\'s warm pool (0: none, every spawn forks)', nonNegativeInt, 0)
    .option('--settle-ms <ms>', 'how long the zygote may take to settle after a phase before its leaks are counted', positiveInt, 10_000)
    .parse()
    .opts<Flags>();
  const startedAt = new Date();
  const report = await runStress({ ...flags, onProgress: progressPrinter() });
  print(report);
  reportVerdict('stress', startedAt, report);
}

function print(r: StressReport): void {
  const pool = r.options.pool > 0 ? `a pool of ${r.options.pool}` : 'no pool';
  const limits = `memory ${formatMiB(STRESS_LIMITS.memoryBytes)}, pids ${STRESS_LIMITS.pids}`;
  console.log(`\nStress: zygote pid ${r.zygotePid}, ${pool}, each child limited to ${limits}; ${formatDuration(r.durationMs)} in all\n`);
  console.log(
    table([
      ['phase', 'children', 'at once', 'ok', 'hung', 'crashed', 'wrong', 'no spawn', 'from pool', 'forked', 'duration', 'child p50', 'child p99'],
      ...r.phases.map((p) => [
        p.name,
        String(p.children),
        String(p.concurrency),
        ...(['ok', 'hung', 'crashed', 'wrong', 'spawnFailed'] as const).map((k) => String(p.counts[k])),
        String(p.spawns.claimed),
        String(p.spawns.forked),
        formatDuration(p.durationMs),
        formatMs(p.childWallMs.p50),
        formatMs(p.childWallMs.p99),
      ]),
    ]),
  );
  console.log('');
  const cgroups = (l: StressReport['baseline']) => String(Object.values(l.cgroups).reduce((n, d) => n + d.length, 0));
  const settle = (l: StressReport['baseline']) => (l.settled ? formatMs(l.waitedMs) : `NOT in ${formatMs(l.waitedMs)}`);
  const snaps = [{ name: 'after warm-up', l: r.baseline }, ...r.phases.map((p) => ({ name: `after ${p.name}`, l: p.leaks }))];
  console.log(
    table([
      ['zygote holds', ...snaps.map((s) => s.name)],
      ['settled', ...snaps.map((s) => settle(s.l))],
      ['open fds', ...snaps.map((s) => String(s.l.zygoteFds))],
      ['mounts', ...snaps.map((s) => String(s.l.mounts))],
      ['zombies', ...snaps.map((s) => String(s.l.zombies.length))],
      ['live children', ...snaps.map((s) => String(s.l.liveChildren.length))],
      ['pool idle', ...snaps.map((s) => `${s.l.stats.poolIdle}/${s.l.stats.poolSize}`)],
      ['child cgroups', ...snaps.map((s) => cgroups(s.l))],
      ['leaked cgroups', ...snaps.map((s) => String(s.l.leakedCgroups.length))],
    ]),
  );
  console.log('');
  console.log(
    table([
      ['', 'before', 'after'],
      ['zygote RSS', formatMiB(r.before.zygoteRssBytes), formatMiB(r.after.zygoteRssBytes)],
      ['client open fds', String(r.before.clientFds), String(r.after.clientFds)],
    ]),
  );
  console.log(`\nafter close: ${r.afterClose.trees.length} cgroup trees and ${r.afterClose.processes.length} processes of the zygote left`);
  for (const f of r.failures.slice(0, 10)) console.log(`  ${f.outcome} seed=${f.seed} pid=${f.pid ?? '-'}: ${f.detail}`);
}
