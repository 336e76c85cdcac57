// `npm run soak`: a real `zygote serve` (as root, a warm pool, a network) and client processes
// of another uid sharing its socket run many short spawns of every kind (soak-plan.ts); what the
// idle zygote holds after a warm-up and after the run (its RSS, fds, mounts, cgroups, nftables
// rules, veths, zombies, and the host's mounts) may not grow beyond noise. Prints a table,
// writes the JSON, and exits 1 on any growth, failed spawn or hang. The core is runSoak
// (soak-run.ts), which tests call.
//   node dist/bench/soak.js [--spawns 10000 | --quick] [--clients 4] [--concurrency 32] [--pool 4 | --no-pool] [--no-network]
import { Command, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import { nonNegativeInt, positiveInt } from './lib/flags.js';
import { formatDuration, formatMiB, formatMs, table } from './lib/format.js';
import type { JudgedFigure } from './lib/growth.js';
import { progressPrinter, reportVerdict } from './lib/results.js';
import { OUTCOMES } from './soak-messages.js';
import { runSoak, SOAK_SUBNET, type SoakReport } from './soak-run.js';

export { runSoak, SOAK_SUBNET, type SoakOptions, type SoakReport, type PhaseReport } from './soak-run.js';
export { measureIdle, soakFigures, type SoakSnapshot, type ZygoteNetwork } from './soak-figures.js';
export { judgeGrowth, rssNoise, type Figure, type JudgedFigure } from './lib/growth.js';

/** --quick's spawns. */
const QUICK_SPAWNS = 400;

interface Flags {
  spawns: number;
  quick?: boolean;
  warmUp: number;
  clients: number;
  concurrency: number;
  /** false: --no-pool. */
  pool: number | false;
  network: boolean;
  childTimeoutMs: number;
  settleMs: number;
  clientUid: number;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

async function main(): Promise<void> {
  const cmd = new Command('soak')
    .description('Many short spawns from client processes over one served socket; fail if what the idle zygote holds grows, a spawn fails, or anything hangs.')
    .option('--spawns <n>', 'spawns of the measured run, all clients together', positiveInt, 10_000)
    .addOption(new Option('--quick', `a short run: ${QUICK_SPAWNS} spawns`).conflicts('spawns'))
    .option('--warm-up <n>', 'spawns before the first measurement', nonNegativeInt, 200)
    .option('--clients <n>', 'client processes sharing the socket', positiveInt, 4)
    .option('--concurrency <n>', 'spawns running at once, all clients together', positiveInt, 32)
    .option('--pool <n>', "the zygote's warm pool (0: none)", nonNegativeInt, 4)
    .option('--no-pool', 'no warm pool (as --pool 0)')
    .option('--no-network', 'no network: the zygote serves none and no spawn asks for one')
    .option('--child-timeout-ms <ms>', 'a spawn not exited this long after its request is killed and counted hung', positiveInt, 30_000)
    .option('--settle-ms <ms>', 'how long the zygote may take to be idle before it is measured', positiveInt, 30_000)
    .option('--client-uid <uid>', "the client processes' uid (not root)", positiveInt, 23_490)
    .parse();
  const flags = cmd.opts<Flags>();
  if (flags.concurrency < flags.clients) cmd.error(`error: --concurrency (${flags.concurrency}) must be at least --clients (${flags.clients}): each client runs at least one spawn at a time`);
  if (process.getuid!() !== 0) cmd.error('error: the soak runs `zygote serve` as root, with a network: run it as root');
  // process.exit runs the exit handlers, which stop the served zygote (lib/served-zygote.ts);
  // the clients exit when their IPC channel closes.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  const startedAt = new Date();
  const report = await runSoak({
    spawns: flags.quick ? QUICK_SPAWNS : flags.spawns,
    warmUp: flags.warmUp,
    clients: flags.clients,
    concurrency: flags.concurrency,
    pool: flags.pool === false ? 0 : flags.pool,
    network: flags.network,
    childTimeoutMs: flags.childTimeoutMs,
    settleMs: flags.settleMs,
    clientUid: flags.clientUid,
    onProgress: progressPrinter(),
  });
  print(report);
  reportVerdict('soak', startedAt, report);
}

function print(r: SoakReport): void {
  const o = r.options;
  const pool = o.pool > 0 ? `a pool of ${o.pool}` : 'no pool';
  const net = r.network ? `networks from ${SOAK_SUBNET} (table inet ${r.network.table})` : 'no network';
  console.log(`\nSoak: zygote serve pid ${r.zygotePid ?? '-'}, ${pool}, ${net}; ${o.clients} clients (uid ${o.clientUid}) at ${o.concurrency} in all; ${formatDuration(r.durationMs)} in all\n`);
  if (r.phases.length > 0) {
    console.log(
      table([
        ['phase', 'spawns', ...OUTCOMES, 'from pool', 'forked', 'duration', 'spawns/s'],
        ...r.phases.map((p) => [
          p.name,
          String(p.spawns),
          ...OUTCOMES.map((k) => String(p.counts[k])),
          String(p.zygoteSpawns.claimed),
          String(p.zygoteSpawns.forked),
          formatDuration(p.durationMs),
          (p.spawns / (p.durationMs / 1000)).toFixed(1),
        ]),
      ]),
    );
    const last = r.phases.at(-1)!;
    console.log(`\nkinds (${last.name}): ${Object.entries(last.byKind).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    console.log(`zygote RSS during the ${last.name} phase, lowest in each tenth of its spawns (MiB): ${last.rssFloors.map((b) => (Number.isFinite(b) ? (b / 1048576).toFixed(1) : '—')).join(', ')}\n`);
  }
  if (r.figures.length > 0) {
    const settle = (s: SoakReport['before']) => (s === null ? '—' : s.settled ? `idle in ${formatMs(s.waitedMs)}` : `NOT idle in ${formatMs(s.waitedMs)}`);
    console.log(
      table([
        ['figure', 'before', 'after', 'growth', 'allowed', ''],
        ...r.figures.map((f) => [f.name, value(f, f.before), value(f, f.after), signed(f, f.growth), value(f, f.noise), f.grew ? 'GREW' : 'ok']),
        ['(measured)', settle(r.before), settle(r.after), '', '', ''],
      ]),
    );
  }
  const left = r.afterClose;
  if (left) {
    console.log(
      `\nafter it stopped (${r.serverStop ? `code ${r.serverStop.code}` : '-'}): ${left.trees.length} cgroup trees, ${left.processes.length} processes, ` +
        `${left.nftTable ? 'its nft table' : 'no nft table'}, ${left.veths.length} veths, ${left.socket ? 'its socket' : 'no socket'} left`,
    );
  }
  if (r.zygoteErrors.length > 0) console.log(`\nthe zygote logged ${r.zygoteErrors.length} errors:\n${r.zygoteErrors.slice(0, 10).map((l) => `  ${l}`).join('\n')}`);
  for (const f of r.phases.flatMap((p) => p.failures).slice(0, 10)) console.log(`  ${f.outcome} #${f.i} (${f.kind}): ${f.detail}`);
}

function value(f: JudgedFigure, n: number): string {
  return f.unit === 'bytes' ? formatMiB(n) : String(n);
}

function signed(f: JudgedFigure, n: number): string {
  return `${n > 0 ? '+' : ''}${value(f, n)}`;
}
