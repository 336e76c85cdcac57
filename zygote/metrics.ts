// The zygote's metrics, rendered in Prometheus' text format (version 0.0.4).
//
// Counters and a histogram kept as plain numbers, rendered on each scrape with the gauges read
// then. Not prom-client: its registry renders asynchronously (metrics() returns a promise), and
// the zygote's serve loop is synchronous, blocking in poll(2) with no event loop turning to
// settle it; nor does it need prom-client's default collectors, which run timers. Nothing here
// holds an fd, a timer or a buffer a fork would carry: a child inherits a few numbers.

import { readFileSync } from 'node:fs';

/** This package's version (dist/zygote/ is two levels below package.json). */
export const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Spawn latency buckets, seconds: a pool claim is ~1-10 ms, a fresh fork ~10-60 ms here. */
const SPAWN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** How a spawn ended, as the zygote sees it. */
export type SpawnOutcome = 'exit' | 'signal' | 'timeout' | 'cpu-limit' | 'oom' | 'pids-limit' | 'shutdown' | 'sandbox-refused' | 'refused';
const OUTCOMES: readonly SpawnOutcome[] = ['exit', 'signal', 'timeout', 'cpu-limit', 'oom', 'pids-limit', 'shutdown', 'sandbox-refused', 'refused'];

/** Read at each scrape. */
export interface MetricGauges {
  children: number;
  queued: number;
  poolIdle: number;
  poolSize: number;
  cgroups: number;
  networks: number;
  connections: number;
}

export class ZygoteMetrics {
  private readonly outcomes = new Map<SpawnOutcome, number>(OUTCOMES.map((o) => [o, 0]));
  private readonly refusedConnections = new Map<string, number>();
  private readonly bucketCounts = new Array<number>(SPAWN_BUCKETS.length).fill(0);
  private spawnCount = 0;
  private spawnSum = 0;
  private forkFailures = 0;
  private poolClaims = 0;
  private freshForks = 0;
  private heapTrims = 0;
  private readonly started = Date.now() / 1000;

  constructor(private readonly build: { version: string; node: string }) {}

  outcome(o: SpawnOutcome): void {
    this.outcomes.set(o, this.outcomes.get(o)! + 1);
  }

  /** A spawn answered (spawned), seconds after its request arrived. */
  spawned(seconds: number, fromPool: boolean): void {
    this.spawnCount++;
    this.spawnSum += seconds;
    for (let i = 0; i < SPAWN_BUCKETS.length; i++) if (seconds <= SPAWN_BUCKETS[i]) this.bucketCounts[i]++;
    if (fromPool) this.poolClaims++;
    else this.freshForks++;
  }

  refusedConnection(reason: string): void {
    this.refusedConnections.set(reason, (this.refusedConnections.get(reason) ?? 0) + 1);
  }

  forkFailed(): void {
    this.forkFailures++;
  }

  /** The zygote gave back heap after a busy spell (zygote/heap-trim.ts). */
  heapTrimmed(): void {
    this.heapTrims++;
  }

  /** The exposition: every metric with its HELP and TYPE, then the process's own figures. */
  render(g: MetricGauges, proc: { rssBytes: number; openFds: number; heapUsedBytes: number; heapSizeBytes: number; externalBytes: number }): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    metric('zygote_spawns_total', 'counter', "Spawns by how they ended: the child's exit reason, or refused before a child ran (sandbox-refused: a sandbox layer failed)", OUTCOMES.map((o) => `zygote_spawns_total{reason="${o}"} ${this.outcomes.get(o)}`));
    // Each count is already cumulative: spawned() counts a spawn in every bucket it fits.
    const buckets = SPAWN_BUCKETS.map((le, i) => `zygote_spawn_duration_seconds_bucket{le="${le}"} ${this.bucketCounts[i]}`);
    metric('zygote_spawn_duration_seconds', 'histogram', 'From a spawn request arriving to its child reported spawned (queue wait included)', [
      ...buckets,
      `zygote_spawn_duration_seconds_bucket{le="+Inf"} ${this.spawnCount}`,
      `zygote_spawn_duration_seconds_sum ${this.spawnSum}`,
      `zygote_spawn_duration_seconds_count ${this.spawnCount}`,
    ]);
    metric('zygote_spawns_by_source_total', 'counter', 'Spawns served, by where the child came from', [`zygote_spawns_by_source_total{source="pool"} ${this.poolClaims}`, `zygote_spawns_by_source_total{source="fork"} ${this.freshForks}`]);
    metric('zygote_fork_failures_total', 'counter', 'Forks that failed (fresh spawns and pool refills)', [`zygote_fork_failures_total ${this.forkFailures}`]);
    metric('zygote_refused_connections_total', 'counter', 'Connections refused, by reason', [...this.refusedConnections].map(([r, n]) => `zygote_refused_connections_total{reason="${r}"} ${n}`));
    metric('zygote_children', 'gauge', 'Children alive (forked or claimed, not yet reaped)', [`zygote_children ${g.children}`]);
    metric('zygote_queued_spawns', 'gauge', 'Spawns waiting for room', [`zygote_queued_spawns ${g.queued}`]);
    metric('zygote_pool_idle', 'gauge', 'Pool children waiting for a claim', [`zygote_pool_idle ${g.poolIdle}`]);
    metric('zygote_pool_size', 'gauge', "The pool's size (0: no pool)", [`zygote_pool_size ${g.poolSize}`]);
    metric('zygote_cgroups', 'gauge', 'Children with a cgroup of their own, alive or awaiting removal', [`zygote_cgroups ${g.cgroups}`]);
    metric('zygote_network_attachments', 'gauge', 'Children with a network (a veth and nftables rules)', [`zygote_network_attachments ${g.networks}`]);
    metric('zygote_connections', 'gauge', 'Client connections open', [`zygote_connections ${g.connections}`]);
    metric('zygote_resident_memory_bytes', 'gauge', "The zygote process's resident set size", [`zygote_resident_memory_bytes ${proc.rssBytes}`]);
    metric('zygote_open_fds', 'gauge', 'File descriptors the zygote has open', [`zygote_open_fds ${proc.openFds}`]);
    metric('zygote_heap_used_bytes', 'gauge', "The zygote's V8 heap in use (what a fork copies on write)", [`zygote_heap_used_bytes ${proc.heapUsedBytes}`]);
    metric('zygote_heap_size_bytes', 'gauge', "The zygote's V8 heap, reserved and committed", [`zygote_heap_size_bytes ${proc.heapSizeBytes}`]);
    metric('zygote_heap_trims_total', 'counter', 'Times the idle zygote collected in reduce-memory mode to give back heap a busy spell grew', [`zygote_heap_trims_total ${this.heapTrims}`]);
    metric('zygote_external_memory_bytes', 'gauge', 'Memory outside the V8 heap held by JS objects (Buffers, ArrayBuffers)', [`zygote_external_memory_bytes ${proc.externalBytes}`]);
    metric('zygote_start_time_seconds', 'gauge', 'When the zygote started, seconds since the epoch', [`zygote_start_time_seconds ${this.started}`]);
    metric('zygote_build_info', 'gauge', 'The package and Node.js versions', [`zygote_build_info{version="${this.build.version}",node="${this.build.node}"} 1`]);
    return `${out.join('\n')}\n`;
  }
}
