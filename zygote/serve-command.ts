// `zygote serve`: this process becomes a zygote serving a Unix socket. The command line's
// entry (cli.ts at the package's top) registers it beside `zygote doctor` and `zygote run`.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { native } from '../native/index.js';
import { encodeConfig, FORK_SAFE_NODE_FLAGS, type ZygoteConfig } from '../protocol/config.js';
import { builtinLimitPolicy, DEFAULT_LIMITS, DEFAULT_NOFILE, normalizeLimitPolicy, parseLimitArg, POLICY_DEFAULT_KEYS, POLICY_SIZED_KEYS, type LimitPolicy } from '../protocol/limits.js';
import { DEFAULT_POOL_MAX_IDLE_MS, MAX_POOL_SIZE, normalizePoolOptions } from '../protocol/pool.js';
import { DEFAULT_NETWORK_SUBNET, normalizeSandboxDefaults, NOBODY } from '../protocol/sandbox.js';
import { DEFAULT_ADMISSION, resolveAdmission, type AdmissionNames, type AdmissionPolicy } from '../protocol/admission.js';
import { DEFAULT_DRAIN_MS, LOG_FORMATS, LOG_LEVELS, MAX_DRAIN_MS, parseMetricsAddress, type LogFormat, type LogLevel, type MetricsAddress } from '../protocol/operations.js';
import { applyConfigSources } from './serve-config.js';


const ZYGOTE_MAIN = new URL('./main.js', import.meta.url).pathname;

/** Adds the `serve` subcommand to program. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Preload modules once, then fork a child running MODULE for every client spawn() on a Unix socket.')
    .option('--config <file>', 'read options from this JSON or TOML file (keys: the long flag names in camelCase); flags and ZYGOTE_* variables override it')
    .option('--socket <path>', "Unix socket to listen on (mode 0600, plus an ACL entry for each other --allow-uid; a stale socket of this uid's is replaced, anything else there refused); required")
    .option('--main <module>', "module whose default export each child runs (path or file: URL); required")
    .option('--preload <module>', 'module the zygote imports once before serving (repeatable)', collect)
    .option('--env <K=V>', "a variable of the children's environment, which is otherwise empty (repeatable)", collectEnv)
    .option('--allow-uid <uid>', "a uid allowed to connect (repeatable; default: this process's uid): it gets an ACL entry on the socket, and the server checks each peer's uid", collectUid)
    .option('--uid <uid>', `uid the children run as (default ${NOBODY})`, parseUint)
    .option('--gid <gid>', `gid the children run as (default ${NOBODY})`, parseUint)
    .option('--uid-range <start:count>', 'give each live child its own uid (and gid) from this range', parseRange)
    .option('--nofile <n>', `RLIMIT_NOFILE of each child, and the most a client may ask for (default ${DEFAULT_NOFILE})`, parseCount)
    .option('--fsize <bytes>', 'RLIMIT_FSIZE of each child, and the most a client may ask for (default 1G)', parseBytes)
    .option('--tmp-bytes <bytes>', "size of each child's private /tmp, and the most a client may ask for (default 64M)", parseBytes)
    .option('--read-only-path <path>', 'a host path every child sees read-only, at the same place, beside what it needs (repeatable)', collect)
    .option('--network', `let children ask for a network (spawn({ network })): a veth and a /30 of ${DEFAULT_NETWORK_SUBNET} each, NAT, nftables rules (README, Network)`)
    .option('--network-subnet <cidr>', "IPv4 subnet the networked children's /30s come from (implies --network)")
    .option('--network-allow <ip:port>', 'a destination ("IP:PORT" or "CIDR:PORT") every networked child may reach despite the forbidden ranges (repeatable; implies --network)', collect)
    .option('--default-memory <bytes|none>', `memory limit of a child whose client asks none (default ${DEFAULT_LIMITS.memoryBytes! / 2 ** 20}M)`, parseBytesOrNone)
    .option('--max-memory <bytes|none>', 'the most memory a client may ask for (default: the default; none: no cap)', parseBytesOrNone)
    .option('--default-pids <n|none>', `pids limit of a child whose client asks none (default ${DEFAULT_LIMITS.pids})`, parseCountOrNone)
    .option('--max-pids <n|none>', 'the most pids a client may ask for (default: the default; none: no cap)', parseCountOrNone)
    .option('--default-wall-time <ms|none>', `wall-time limit of a child whose client asks none (default ${DEFAULT_LIMITS.wallTimeMs})`, parseCountOrNone)
    .option('--max-wall-time <ms|none>', 'the most wall time a client may ask for (default: the default; none: no cap)', parseCountOrNone)
    .option('--default-cpu-time <ms|none>', 'CPU-time limit of a child whose client asks none (default none: the wall time bounds it)', parseCountOrNone)
    .option('--max-cpu-time <ms|none>', 'the most CPU time a client may ask for (default: the default)', parseCountOrNone)
    .option('--default-output-bytes <bytes>', `size of the output filesystem (spawn({ output }), a tmpfs charged to the child's memory) of a child whose client asks none (default ${DEFAULT_LIMITS.outputBytes / 2 ** 20}M)`, parseBytes)
    .option('--max-output-bytes <bytes>', 'the largest output filesystem a client may ask for (default: the default)', parseBytes)
    .option('--default-output-files <n>', `files, directories and links a child may make in its output filesystem when its client asks no number (default ${DEFAULT_LIMITS.outputFiles})`, parseCount)
    .option('--max-output-files <n>', 'the most output files a client may ask for (default: the default)', parseCount)
    .option('--network-client-allow <cidr>', "an IPv4 network inside which a client's own spawn({ network: { allow } }) entries may open destinations (repeatable; never loopback, link-local, metadata, multicast or the children's subnet; without it clients' entries are refused; implies --network)", collect)
    .option('--pool <n>', `keep n children forked and sandboxed ahead of spawns, each claimed by one spawn (1 to ${MAX_POOL_SIZE}; default: none)`, parseCount)
    .option('--pool-max-idle <ms>', `replace a pool child idle longer than this (default ${DEFAULT_POOL_MAX_IDLE_MS})`, parseCount)
    .option('--max-connections-per-uid <n>', `connections one uid may hold at once (default ${DEFAULT_ADMISSION.maxConnectionsPerUid})`, parseCount)
    .option('--max-children <n>', `live children of this server, all clients together (default ${DEFAULT_ADMISSION.maxChildren}; with --uid-range at most, and by default, its count if that is smaller)`, parseCount)
    .option('--max-children-per-uid <n>', 'live children of one client uid (default: --max-children minus one for each other --allow-uid, at least 1, so no uid takes the last slots)', parseCount)
    .option('--max-queue <n>', `spawns that wait for a free child slot (default ${DEFAULT_ADMISSION.maxQueue}; 0: refuse at once); each uid may hold --max-queue divided by the number of --allow-uid uids (at least 1)`, parseUint)
    .option('--queue-timeout <ms>', `how long a spawn may wait in the queue before it is refused (default ${DEFAULT_ADMISSION.queueTimeoutMs})`, parseCount)
    .option('--quiet', 'no log line for every spawn, exit and connection (the rest as --log-level says)')
    .addOption(new Option('--log-format <format>', 'log lines as text, or as JSON objects (time, level, event, pid, name, uid, reason, wallMs, ...)').choices(LOG_FORMATS).default('text'))
    .addOption(new Option('--log-level <level>', 'the least severe lines logged').choices(LOG_LEVELS).default('info'))
    .option('--log-file <path>', 'append the log to this file instead of stderr; reopened on SIGHUP (logrotate)')
    .option('--drain-ms <ms>', `on SIGTERM or SIGINT, how long running children may finish before they are killed (reason 'shutdown'; at most ${MAX_DRAIN_MS}; a second signal ends the drain)`, parseDrain, DEFAULT_DRAIN_MS)
    .option('--metrics <host:port|unix:path>', 'serve Prometheus metrics (text format) at this TCP address or Unix socket (README, Operations)', parseMetrics)
    .addHelpText(
      'after',
      `
Limits: a client may ask for less than each default, never more than its cap (a spawn above
one is refused with a LimitCapError naming the field, the value and the cap). Sizes take a
K, M, G or T suffix (KiB...). Without --max-X, the cap of X is its default.

Room: a connection over --max-connections-per-uid, from a uid not in --allow-uid, or when the
server is short of fds, is refused with a ZygoteRefusedError (.reason). A spawn that does not
fit (the server at --max-children, or its uid at --max-children-per-uid) waits in the queue
for at most --queue-timeout ms; when a child is reaped, the uid with the fewest live children
goes first. Past the queue, after the wait, or with --max-queue 0, it is refused with a
ZygoteBusyError naming the cap (children, children-per-uid, queue-full, queue-timeout).
Refusals are logged once per uid every 10 s, with a count of the rest.

The server runs node with ${FORK_SAFE_NODE_FLAGS.join(' ')} (required to fork a warm Node
safely) and an environment of exactly the --env variables. SIGTERM or SIGINT stop it: it
stops accepting and removes the socket, lets running children finish for up to --drain-ms,
then kills and reaps the rest (their exit reason: 'shutdown') and removes their cgroups,
nftables rules and veths. A second SIGTERM or SIGINT ends the drain at once. SIGHUP reopens
--log-file and does not stop it.

Every option may also come from a ZYGOTE_* variable (--max-children: ZYGOTE_MAX_CHILDREN;
a repeatable one as a JSON array, '["a","b"]'; a switch as true or false) or from the
--config file (ZYGOTE_CONFIG names one too). Flags win over variables, variables over the
file, the file over the defaults. Sizes are bytes unless suffixed, times are milliseconds.

Example:
  zygote serve --socket /run/zygote.sock --main ./step.js --preload apache-arrow --env LC_ALL=C.UTF-8`,
    )
    .action((_opts: ServeOptions, cmd: Command) => {
      let opts: ServeOptions;
      try {
        for (const warning of applyConfigSources(cmd, { env: process.env, repeatable: REPEATABLE })) process.stderr.write(`zygote serve: ${warning}\n`);
        opts = cmd.opts<ServeOptions>();
        if (opts.socket === undefined) throw new Error('--socket is required (or ZYGOTE_SOCKET, or `socket` in the --config file)');
        if (opts.main === undefined) throw new Error('--main is required (or ZYGOTE_MAIN, or `main` in the --config file)');
      } catch (err) {
        return program.error(`error: ${(err as Error).message}`);
      }
      const main = opts.main.startsWith('file:') ? opts.main : pathToFileURL(resolve(opts.main)).href;
      if (!existsSync(new URL(main))) program.error(`error: --main module not found: ${new URL(main).pathname}`);
      let sandbox: ZygoteConfig['sandbox'];
      try {
        sandbox = normalizeSandboxDefaults({
          uid: opts.uid,
          gid: opts.gid,
          uidRange: opts.uidRange,
          rlimits: { ...(opts.nofile !== undefined && { nofile: opts.nofile }), ...(opts.fsize !== undefined && { fsize: opts.fsize }) },
          ...(opts.tmpBytes !== undefined && { tmpBytes: opts.tmpBytes }),
          ...(opts.readOnlyPath !== undefined && { readOnlyPaths: opts.readOnlyPath.map((p) => resolve(p)) }),
          network:
            opts.network || opts.networkSubnet !== undefined || opts.networkAllow !== undefined || opts.networkClientAllow !== undefined
              ? { ...(opts.networkSubnet !== undefined && { subnet: opts.networkSubnet }), allow: opts.networkAllow ?? [], clientAllow: opts.networkClientAllow ?? [] }
              : undefined,
        });
      } catch (err) {
        return program.error(`error: ${(err as Error).message}`);
      }
      let limits: LimitPolicy;
      let admission: AdmissionPolicy;
      const allowUids = opts.allowUid ?? [process.getuid!()];
      try {
        limits = limitPolicy(opts, sandbox);
        admission = resolveAdmission(
          { maxConnectionsPerUid: opts.maxConnectionsPerUid, maxChildren: opts.maxChildren, maxChildrenPerUid: opts.maxChildrenPerUid, maxQueue: opts.maxQueue, queueTimeoutMs: opts.queueTimeout },
          { uids: new Set(allowUids).size, uidRangeCount: sandbox.uidRange?.count ?? null },
          FLAG_NAMES,
        );
      } catch (err) {
        return program.error(`error: ${(err as Error).message}`);
      }
      let pool: ZygoteConfig['pool'];
      try {
        if (opts.poolMaxIdle !== undefined && opts.pool === undefined) throw new Error('--pool-max-idle needs --pool');
        pool = normalizePoolOptions(opts.pool === undefined ? undefined : { size: opts.pool, ...(opts.poolMaxIdle !== undefined && { maxIdleMs: opts.poolMaxIdle }) }, 'zygote serve');
      } catch (err) {
        return program.error(`error: ${(err as Error).message.replace('`pool.size` of zygote serve', '--pool').replace('`pool.maxIdleMs` of zygote serve', '--pool-max-idle')}`);
      }
      const config: ZygoteConfig = {
        main,
        preload: opts.preload ?? [],
        control: { kind: 'listen', path: resolve(opts.socket), allowUids },
        name: 'zygote',
        verbose: !opts.quiet,
        setupTimeoutMs: 10_000,
        shutdownTimeoutMs: 5_000,
        sandbox,
        limits,
        admission,
        // The CLI never serves unsandboxed children: that switch exists for tests only.
        allowUnsandboxed: false,
        pool,
        operations: { log: { format: opts.logFormat, level: opts.logLevel, file: opts.logFile === undefined ? null : resolve(opts.logFile) }, drainMs: opts.drainMs, metrics: opts.metrics ?? null },
      };
      // Become the zygote in place (same pid, for supervisors): a fresh node with the flags
      // fork safety needs and only the configured environment; nothing of this shell's.
      const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
      // The config in a sealed memfd kept across execve, not on argv, where ps would show it.
      const configFd = native.sealedDataFd(Buffer.from(encodeConfig(config)), true);
      native.execve(process.execPath, [process.execPath, ...FORK_SAFE_NODE_FLAGS, ZYGOTE_MAIN, `--config-fd=${configFd}`], env);
    });
}

interface ServeOptions {
  config?: string;
  socket?: string;
  main?: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  logFile?: string;
  drainMs: number;
  metrics?: MetricsAddress;
  preload?: string[];
  env?: Record<string, string>;
  allowUid?: number[];
  uid?: number;
  gid?: number;
  uidRange?: { start: number; count: number };
  nofile?: number;
  fsize?: number;
  tmpBytes?: number;
  readOnlyPath?: string[];
  network?: boolean;
  networkSubnet?: string;
  networkAllow?: string[];
  networkClientAllow?: string[];
  quiet?: boolean;
  pool?: number;
  poolMaxIdle?: number;
  maxConnectionsPerUid?: number;
  maxChildren?: number;
  maxChildrenPerUid?: number;
  maxQueue?: number;
  queueTimeout?: number;
  // 'none', not null: commander turns an option's null into ''.
  defaultMemory?: number | 'none';
  maxMemory?: number | 'none';
  defaultPids?: number | 'none';
  maxPids?: number | 'none';
  defaultWallTime?: number | 'none';
  maxWallTime?: number | 'none';
  defaultCpuTime?: number | 'none';
  maxCpuTime?: number | 'none';
  defaultOutputBytes?: number;
  maxOutputBytes?: number;
  defaultOutputFiles?: number;
  maxOutputFiles?: number;
}

/** The options that may be given more than once (a list in a config file). */
const REPEATABLE: ReadonlySet<string> = new Set(['preload', 'env', 'allowUid', 'readOnlyPath', 'networkAllow', 'networkClientAllow']);

/** The admission caps as the command line names them. */
const FLAG_NAMES: AdmissionNames = {
  maxConnectionsPerUid: '--max-connections-per-uid',
  maxChildren: '--max-children',
  maxChildrenPerUid: '--max-children-per-uid',
  maxQueue: '--max-queue',
  queueTimeoutMs: '--queue-timeout',
};

/** Each limit's --default-X and --max-X, by the field they set. */
const LIMIT_FLAGS = {
  memoryBytes: { flag: 'memory', default: 'defaultMemory', max: 'maxMemory' },
  pids: { flag: 'pids', default: 'defaultPids', max: 'maxPids' },
  wallTimeMs: { flag: 'wall-time', default: 'defaultWallTime', max: 'maxWallTime' },
  cpuTimeMs: { flag: 'cpu-time', default: 'defaultCpuTime', max: 'maxCpuTime' },
} as const;

/** Same, for the limits that always have a value (no `none`). */
const SIZED_LIMIT_FLAGS = {
  outputBytes: { flag: 'output-bytes', default: 'defaultOutputBytes', max: 'maxOutputBytes' },
  outputFiles: { flag: 'output-files', default: 'defaultOutputFiles', max: 'maxOutputFiles' },
} as const;

/**
 * The served zygote's limits. A default not given is the built-in one (at most the cap); a cap
 * not given is the default (none where the default is none), so a client can only lower what
 * the operator chose. --tmp-bytes, --fsize and --nofile are each their field's default and cap.
 */
function limitPolicy(opts: ServeOptions, sandbox: ZygoteConfig['sandbox']): LimitPolicy {
  const builtin = builtinLimitPolicy().defaults;
  const policy: LimitPolicy = { defaults: { ...builtin }, max: { tmpBytes: sandbox.tmpBytes, fileBytes: sandbox.rlimits.fsize, nofile: sandbox.rlimits.nofile } };
  for (const k of POLICY_DEFAULT_KEYS) {
    const f = LIMIT_FLAGS[k];
    const orNull = (v: number | 'none' | undefined) => (v === 'none' ? null : v);
    const asked = orNull(opts[f.default]);
    const cap = orNull(opts[f.max]);
    if (asked !== undefined && cap != null && (asked === null || asked > cap)) {
      throw new Error(`--default-${f.flag} ${asked ?? 'none'} is above --max-${f.flag} ${cap}`);
    }
    const dflt = asked !== undefined ? asked : cap != null && (builtin[k] === null || builtin[k]! > cap) ? cap : builtin[k];
    policy.defaults[k] = dflt;
    const max = cap !== undefined ? cap : dflt;
    if (max !== null) policy.max[k] = max;
  }
  for (const k of POLICY_SIZED_KEYS) {
    const f = SIZED_LIMIT_FLAGS[k];
    const asked = opts[f.default];
    const cap = opts[f.max];
    if (asked !== undefined && cap !== undefined && asked > cap) throw new Error(`--default-${f.flag} ${asked} is above --max-${f.flag} ${cap}`);
    policy.defaults[k] = asked ?? (cap !== undefined ? Math.min(cap, builtin[k]) : builtin[k]);
    policy.max[k] = cap ?? policy.defaults[k];
  }
  return normalizeLimitPolicy(policy);
}

function parseCount(value: string): number {
  return parseLimit(value, false, false)!;
}

function parseBytes(value: string): number {
  return parseLimit(value, true, false)!;
}

function parseCountOrNone(value: string): number | 'none' {
  return parseLimit(value, false, true) ?? 'none';
}

function parseBytesOrNone(value: string): number | 'none' {
  return parseLimit(value, true, true) ?? 'none';
}

function parseLimit(value: string, bytes: boolean, allowNone: boolean): number | null {
  try {
    return parseLimitArg(value, { bytes, allowNone });
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function parseDrain(value: string): number {
  const n = parseUint(value);
  if (n > MAX_DRAIN_MS) throw new InvalidArgumentError(`at most ${MAX_DRAIN_MS} ms, got ${n}`);
  return n;
}

function parseMetrics(value: string): MetricsAddress {
  try {
    return parseMetricsAddress(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function parseUint(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

function parseRange(value: string): { start: number; count: number } {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected START:COUNT, got ${JSON.stringify(value)}`);
  return { start: Number(m[1]), count: Number(m[2]) };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function collectEnv(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected K=V, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function collectUid(value: string, previous: number[] = []): number[] {
  const uid = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(uid)) throw new InvalidArgumentError(`expected a numeric uid, got ${JSON.stringify(value)}`);
  return [...previous, uid];
}
