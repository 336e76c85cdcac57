// The soak run: a real `zygote serve` (as root, with a pool and a network), client processes
// of an unprivileged uid sharing its socket, a warm-up, then many short spawns of every kind
// (soak-plan.ts); what the idle zygote holds after the warm-up and after the run
// (soak-figures.ts) may not grow beyond noise, no spawn may end other than planned, nothing may
// hang, and after it stops nothing of it may be left.
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Zygote, type ZygoteStats } from 'zygote';
import { judgeGrowth, type JudgedFigure } from './lib/growth.js';
import { readRssBytes } from './lib/procfs.js';
import { fixturePath } from './lib/paths.js';
import { ServedZygote, type ServeStop } from './lib/served-zygote.js';
import { nftTableCounts, vethsInSubnet } from './lib/host-net.js';
import { measureIdle, soakFigures, type SoakSnapshot, type ZygoteNetwork } from './soak-figures.js';
import { SoakClient, type ClientExit } from './soak-clients.js';
import { emptyCounts, OUTCOMES, type Counts, type Failure } from './soak-messages.js';
import { CLIENT_ALLOW_NET, type SpawnKind } from './soak-plan.js';
import { leftAfterClose, zygoteProcesses } from './stress-leaks.js';

export interface SoakOptions {
  /** Spawns of the measured run, all clients together. */
  spawns: number;
  /** Spawns before the first measurement, so that whatever the zygote makes lazily exists. Default 200. */
  warmUp?: number;
  /** Client processes. Default 4. */
  clients?: number;
  /** Spawns running at once, all clients together (split among them). Default 32. */
  concurrency?: number;
  /** The zygote's warm pool (0: none). Default 4. */
  pool?: number;
  /** Whether the zygote serves networks and 1 spawn in 10 asks for one. Default true. */
  network?: boolean;
  /** A spawn not exited this long after its request is killed and counted hung. Default 30 s. */
  childTimeoutMs?: number;
  /** How long the zygote may take to be idle before it is measured. Default 30 s. */
  settleMs?: number;
  /** The clients' uid (not root: a served zygote's clients are other users). Default 23490. */
  clientUid?: number;
  onProgress?: (phase: PhaseName, done: number, total: number) => void;
}

export type ResolvedSoakOptions = Required<Omit<SoakOptions, 'onProgress'>>;
export type PhaseName = 'warm-up' | 'soak';

export interface PhaseReport {
  name: PhaseName;
  spawns: number;
  durationMs: number;
  /** How the spawns ended, as the clients counted them. */
  counts: Counts;
  byKind: Partial<Record<SpawnKind, number>>;
  /** Of the zygote's spawns in the phase, how many a pool child served and how many forked fresh. */
  zygoteSpawns: { claimed: number; forked: number };
  /** The zygote's RSS once a second through the phase (busy: it is not a leak figure by itself). */
  rssSamples: RssSample[];
  /**
   * The lowest RSS sample in each tenth of the phase's spawns. Its heap grows between major GCs
   * (nothing outside can make one), so the idle figures catch it anywhere in that cycle; these
   * floors, taken after the GCs, show whether what it keeps grows with the spawns.
   */
  rssFloors: number[];
  /** Spawns that did not end as planned (at most 20 per client). */
  failures: Failure[];
}

export interface RssSample {
  /** Since the phase started. */
  atMs: number;
  /** Spawns ended by then, all clients together. */
  done: number;
  rssBytes: number;
}

export interface AfterClose {
  /** The zygote's cgroup trees still there. */
  trees: string[];
  /** Its processes (pool children, anything in its cgroups) still alive. */
  processes: string[];
  /** Whether its nftables table is still there. */
  nftTable: boolean;
  veths: string[];
  /** Whether its socket file is still there. */
  socket: boolean;
}

export interface SoakReport {
  options: ResolvedSoakOptions;
  zygotePid: number | null;
  network: ZygoteNetwork | null;
  durationMs: number;
  clients: { index: number; pid: number; exit: ClientExit | null }[];
  phases: PhaseReport[];
  /** What the idle zygote held after the warm-up, and after the run. */
  before: SoakSnapshot | null;
  after: SoakSnapshot | null;
  figures: JudgedFigure[];
  /** The host's mounts that came and went between before and after. */
  hostMounts: { added: string[]; removed: string[] };
  serverStop: ServeStop | null;
  afterClose: AfterClose | null;
  /** Lines the zygote logged as errors (it runs --quiet: nothing else). */
  zygoteErrors: string[];
  /** Why the run failed; empty when it passed. */
  problems: string[];
}

/** Where the networked children's /30s come from: away from the default 10.201.0.0/16 another zygote of this host may use. */
export const SOAK_SUBNET = '10.231.0.0/20';
const DEFAULT_CLIENT_UID = 23490;
/** Bounds of the run's own steps (start, connect, close), each far above what it takes. */
const START_MS = 30_000;
const STOP_MS = 15_000;
/** Kept of the zygote's error lines. */
const MAX_ERRORS = 50;
const RSS_SAMPLE_MS = 1_000;

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const opts = resolveOptions(options);
  if (process.getuid!() !== 0) throw new Error('the soak runs `zygote serve` as root, with a network: run it as root');
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'zygote-soak-'));
  // The clients' uid must reach the socket inside (the socket itself gets an ACL entry).
  chmodSync(dir, 0o711);
  const socket = join(dir, 'zygote.sock');
  // Gone even if this process exits mid-run (soak.ts exits on SIGINT).
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const r: SoakReport = {
    options: opts,
    zygotePid: null,
    network: null,
    durationMs: 0,
    clients: [],
    phases: [],
    before: null,
    after: null,
    figures: [],
    hostMounts: { added: [], removed: [] },
    serverStop: null,
    afterClose: null,
    zygoteErrors: [],
    problems: [],
  };
  let server: ServedZygote | null = null;
  let z: Zygote | null = null;
  const clients: SoakClient[] = [];
  try {
    server = await ServedZygote.start(socket, serveFlags(opts), START_MS);
    r.zygotePid = server.pid;
    const net = opts.network ? { table: `zygote_${server.pid}`, subnet: SOAK_SUBNET } : null;
    r.network = net;
    // This process's own connection (root's), for stats(): idle or not, pool full or not.
    z = await connect(socket, { timeoutMs: START_MS });
    for (let index = 0; index < opts.clients; index++) {
      clients.push(SoakClient.start({ index, socket, network: opts.network, childTimeoutMs: opts.childTimeoutMs }, opts.clientUid));
    }
    r.clients = clients.map((c) => ({ index: c.index, pid: c.pid, exit: null }));
    await Promise.all(clients.map((c) => c.ready(START_MS)));
    if (opts.warmUp > 0) r.phases.push(await runPhase(z, clients, 'warm-up', opts.warmUp, opts, options.onProgress));
    r.before = await measureIdle(z, net, opts.settleMs);
    r.phases.push(await runPhase(z, clients, 'soak', opts.spawns, opts, options.onProgress));
    r.after = await measureIdle(z, net, opts.settleMs);
    const exits = await Promise.all(clients.map((c) => c.close(STOP_MS)));
    r.clients = clients.map((c, k) => ({ index: c.index, pid: c.pid, exit: exits[k] }));
    // What must be gone once the zygote has stopped.
    const trees = Object.keys(r.after.cgroups);
    const processes = zygoteProcesses(r.after);
    await z.close();
    z = null;
    r.serverStop = await server.stop(STOP_MS);
    const left = await leftAfterClose(trees, processes, opts.settleMs);
    r.afterClose = { ...left, nftTable: net !== null && nftTableCounts(net.table) !== null, veths: net ? await vethsGone(net.subnet, opts.settleMs) : [], socket: existsSync(socket) };
  } catch (err) {
    r.problems.push(`the run stopped: ${(err as Error).message}`);
  } finally {
    for (const c of clients) await c.kill().catch(() => undefined);
    await z?.close();
    if (server?.running) r.serverStop = await server.stop(STOP_MS).catch(() => null);
    removeDir();
    process.off('exit', removeDir);
  }
  r.durationMs = performance.now() - t0;
  r.zygoteErrors = (server?.stderr() ?? '').split('\n').filter((l) => / error: /.test(l)).slice(0, MAX_ERRORS);
  if (r.before && r.after) {
    r.figures = judgeGrowth(soakFigures(r.before, r.after, opts.network));
    const was = new Set(r.before.hostMounts);
    const is = new Set(r.after.hostMounts);
    r.hostMounts = { added: r.after.hostMounts.filter((m) => !was.has(m)), removed: r.before.hostMounts.filter((m) => !is.has(m)) };
  }
  r.problems.push(...findProblems(r));
  return r;
}

function resolveOptions(o: SoakOptions): ResolvedSoakOptions {
  const opts: ResolvedSoakOptions = {
    spawns: o.spawns,
    warmUp: o.warmUp ?? 200,
    clients: o.clients ?? 4,
    concurrency: o.concurrency ?? 32,
    pool: o.pool ?? 4,
    network: o.network ?? true,
    childTimeoutMs: o.childTimeoutMs ?? 30_000,
    settleMs: o.settleMs ?? 30_000,
    clientUid: o.clientUid ?? DEFAULT_CLIENT_UID,
  };
  for (const k of ['warmUp', 'pool'] as const) {
    if (!Number.isSafeInteger(opts[k]) || opts[k] < 0) throw new TypeError(`Expected \`${k}\` to be a non-negative integer, got ${opts[k]}`);
  }
  for (const k of ['spawns', 'clients', 'concurrency', 'childTimeoutMs', 'settleMs', 'clientUid'] as const) {
    if (!Number.isSafeInteger(opts[k]) || opts[k] <= 0) throw new TypeError(`Expected \`${k}\` to be a positive integer, got ${opts[k]}`);
  }
  if (opts.concurrency < opts.clients) throw new TypeError(`Expected \`concurrency\` (${opts.concurrency}) to be at least \`clients\` (${opts.clients}): each client runs at least one spawn at a time`);
  return opts;
}

function serveFlags(o: ResolvedSoakOptions): string[] {
  return [
    '--main',
    fixturePath('soak-main.mjs'),
    '--allow-uid',
    String(o.clientUid),
    '--allow-uid',
    String(process.getuid!()),
    '--quiet',
    ...(o.pool > 0 ? ['--pool', String(o.pool)] : []),
    // Both imply --network; the client allow net lets 'network-allow' spawns add entries of their own.
    ...(o.network ? ['--network-subnet', SOAK_SUBNET, '--network-client-allow', CLIENT_ALLOW_NET] : []),
  ];
}

/**
 * Spawns 0..total-1, client k taking k, k+clients, ..., with its share of the concurrency.
 * A client that fails or hangs (it is killed) stops the run: it throws, after the others end.
 */
async function runPhase(z: Zygote, clients: SoakClient[], name: PhaseName, total: number, o: ResolvedSoakOptions, onProgress: SoakOptions['onProgress']): Promise<PhaseReport> {
  const statsBefore = await z.stats();
  const t0 = performance.now();
  const doneBy = clients.map(() => 0);
  const rssSamples: RssSample[] = [];
  const sample = () => {
    try {
      rssSamples.push({ atMs: Math.round(performance.now() - t0), done: doneBy.reduce((a, b) => a + b, 0), rssBytes: readRssBytes(z.pid) });
    } catch {
      // The zygote is gone: the phase fails on its own.
    }
  };
  const sampler = setInterval(sample, RSS_SAMPLE_MS);
  // The longest a client can go without ending a spawn: a spawn's answer (within the queue's
  // 30 s and the spawn timeout), its exit, a kill's grace and its stdio's (5 s each).
  const stallMs = 30_000 + 2 * o.childTimeoutMs + 15_000 + 15_000;
  const results = await Promise.allSettled(
    clients.map((c, k) =>
      c.run(
        { type: 'run', phase: name, first: k, stride: clients.length, end: total, concurrency: share(o.concurrency, clients.length, k) },
        stallMs,
        (done) => {
          doneBy[k] = done;
          onProgress?.(name, doneBy.reduce((a, b) => a + b, 0), total);
        },
      ),
    ),
  );
  clearInterval(sampler);
  sample();
  const durationMs = performance.now() - t0;
  const failed = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed.length > 0) throw new Error(failed.map((x) => (x.reason as Error).message).join('; '));
  const counts = emptyCounts();
  const byKind: Partial<Record<SpawnKind, number>> = {};
  const failures: Failure[] = [];
  for (const x of results as PromiseFulfilledResult<Awaited<ReturnType<SoakClient['run']>>>[]) {
    for (const k of OUTCOMES) counts[k] += x.value.counts[k];
    for (const [k, n] of Object.entries(x.value.byKind) as [SpawnKind, number][]) byKind[k] = (byKind[k] ?? 0) + n;
    failures.push(...x.value.failures);
  }
  const statsAfter = await z.stats();
  return { name, spawns: total, durationMs, counts, byKind, zygoteSpawns: spawnsBetween(statsBefore, statsAfter), rssSamples, rssFloors: floorsByTenth(rssSamples, total), failures };
}

/** The lowest sample in each tenth of the spawns (NaN for a tenth without a sample). */
function floorsByTenth(samples: readonly RssSample[], total: number): number[] {
  const floors = Array.from({ length: 10 }, () => NaN);
  for (const s of samples) {
    const tenth = Math.min(9, Math.floor((s.done * 10) / total));
    if (!(s.rssBytes >= floors[tenth])) floors[tenth] = s.rssBytes;
  }
  return floors;
}

/** Waits up to boundMs for the subnet's veths to go (the kernel tears dead namespaces down asynchronously); returns those left. */
async function vethsGone(subnet: string, boundMs: number): Promise<string[]> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    const left = vethsInSubnet(subnet);
    if (left.length === 0 || performance.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Client k's part of n spawns at once among clients. */
function share(n: number, clients: number, k: number): number {
  return Math.floor(n / clients) + (k < n % clients ? 1 : 0);
}

function spawnsBetween(a: ZygoteStats, b: ZygoteStats): PhaseReport['zygoteSpawns'] {
  return { claimed: b.claimed - a.claimed, forked: b.forked - a.forked };
}

function findProblems(r: SoakReport): string[] {
  const problems: string[] = [];
  for (const p of r.phases) {
    for (const k of OUTCOMES) if (k !== 'ok' && p.counts[k] > 0) problems.push(`${p.counts[k]} spawns of the ${p.name} phase ended ${k}`);
    const counted = p.zygoteSpawns.claimed + p.zygoteSpawns.forked;
    if (p.counts.spawnFailed === 0 && counted !== p.spawns) problems.push(`the zygote counted ${counted} spawns (claimed ${p.zygoteSpawns.claimed}, forked ${p.zygoteSpawns.forked}) in the ${p.name} phase of ${p.spawns}`);
  }
  for (const [name, s] of [['after the warm-up', r.before], ['after the run', r.after]] as const) {
    if (s && !s.settled) problems.push(`${name} the zygote was not idle within ${r.options.settleMs} ms: busy ${s.stats.busy}, queued ${s.stats.queued}, pool ${s.stats.poolIdle}/${s.stats.poolSize}, zombies ${s.zombies.length}, live children ${s.liveChildren.length}, leaked cgroups ${s.leakedCgroups.length}, veths ${s.veths.length}, nft set elements ${s.nft ? JSON.stringify(s.nft.setElements) : 'no table'}`);
  }
  for (const f of r.figures) {
    if (!f.grew) continue;
    const extra = f.name === 'host mounts' ? ` (added: ${r.hostMounts.added.join(', ') || 'none'}; removed: ${r.hostMounts.removed.join(', ') || 'none'})` : f.name === 'child cgroups' && r.after ? ` (${r.after.leakedCgroups.slice(0, 10).join(', ')})` : '';
    problems.push(`${f.name} grew from ${f.before} to ${f.after}, beyond the ${f.noise} allowed${extra}`);
  }
  for (const c of r.clients) {
    if (c.exit && (c.exit.killed || c.exit.code !== 0)) problems.push(`client ${c.index} (pid ${c.pid}) ended with code ${c.exit.code}, signal ${c.exit.signal}${c.exit.killed ? ' (killed: it did not exit when told to close)' : ''}`);
  }
  const stop = r.serverStop;
  if (stop && (stop.killed || stop.code !== 0)) problems.push(`zygote serve ended with code ${stop.code}, signal ${stop.signal}${stop.killed ? ' (killed: it did not exit within 15 s of SIGTERM)' : ''}`);
  const left = r.afterClose;
  if (left) {
    if (left.trees.length > 0) problems.push(`after it stopped, the zygote's cgroup trees are still there: ${left.trees.join(', ')}`);
    if (left.processes.length > 0) problems.push(`after it stopped, ${left.processes.length} of the zygote's processes are still alive: ${left.processes.slice(0, 10).join(', ')}`);
    if (left.nftTable) problems.push(`after it stopped, its nftables table inet ${r.network?.table} is still there`);
    if (left.veths.length > 0) problems.push(`after it stopped, veths of its subnet are still there: ${left.veths.join(', ')}`);
    if (left.socket) problems.push('after it stopped, its socket file is still there');
  }
  return problems;
}
