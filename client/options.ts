// Normalising and checking the options of startZygote(), connect() and spawn(), once, with
// messages that name the option, what it must be and what it was.
import { existsSync } from 'node:fs';
import { normalizePoolOptions, type PoolOptions } from '../protocol/pool.js';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_NETWORK_ALLOW } from '../protocol/control.js';
import { normalizeLimits, type Limits } from '../protocol/limits.js';
import { describe, isOptionsObject, refuseUnknownKeys } from '../protocol/options.js';
import { normalizeSandboxDefaults, type SandboxDefaults } from '../protocol/sandbox.js';
import { normalizeNetworkRequest, normalizeOutputRequest, normalizeSandboxRequest, type Mount, type NetworkRequest, type OutputRequest, type SandboxRequest } from '../protocol/spawn.js';
import { InvalidOptionError } from '../protocol/errors.js';
import { parseMetricsAddress, type MetricsAddress } from '../protocol/operations.js';
import { resolveAdmission, type AdmissionPolicy } from '../protocol/admission.js';

export interface StartZygoteOptions {
  /** The module whose default export each child runs: a file: URL or an absolute path. */
  main: URL | string;
  /** Modules the zygote imports once before serving (trusted code), resolved from main. */
  preload?: readonly string[];
  /** The children's whole environment, and the zygote's. Default {}: nothing of this process. */
  env?: Readonly<Record<string, string>>;
  /** A label for log lines. Default "zygote". */
  name?: string;
  /** How long start-up (preload, main) may take. Default 30 s. */
  startupTimeoutMs?: number;
  /** How long each spawn may take to answer. Default 10 s. */
  spawnTimeoutMs?: number;
  /** Log every spawn and exit on stderr. Default false (errors only). */
  verbose?: boolean;
  /**
   * Serve Prometheus metrics from the zygote at this address: "HOST:PORT" (an IP address) or
   * "unix:/PATH" (README, Operations). Default: none.
   */
  metrics?: string;
  /** The children's sandbox: uid/gid (default 65534), a uid per child, resource limits. */
  sandbox?: SandboxDefaults;
  /**
   * Default limits of every child spawned through this handle, over the built-in defaults
   * (protocol/limits.ts, DEFAULT_LIMITS); null lifts one.
   */
  limits?: Limits;
  /**
   * A warm pool: this many children forked and sandboxed ahead of spawns, each claimed by one
   * spawn (README, "Warm pool"). Default: none (every spawn forks).
   */
  pool?: PoolOptions | null;
  /**
   * Live children at once (default 256; with `sandbox.uidRange`, at most, and by default, its
   * count if that is smaller). A spawn past it waits in the queue.
   */
  maxChildren?: number;
  /** Spawns that may wait for a free slot (default 64; 0: refused at once with ZygoteBusyError). */
  maxQueue?: number;
  /** How long a spawn may wait in the queue before it is refused (default 30 s). */
  queueTimeoutMs?: number;
  /**
   * DANGEROUS, for tests and positive controls only: let spawn() skip sandbox layers or
   * inject setup failures. Never set in production; `zygote serve` has no such option.
   */
  dangerouslyAllowUnsandboxed?: boolean;
}

export interface ConnectOptions {
  /** How long to wait for the zygote's greeting. Default 10 s. */
  timeoutMs?: number;
  /**
   * How long to keep trying while nothing listens at the path (no socket yet, or a stale one:
   * a zygote starting or restarting), backing off from 50 ms to 1 s between attempts. Default 0:
   * one attempt. A refusal (ZygoteRefusedError) is never retried.
   */
  retryMs?: number;
  /** How long each spawn may take to answer. Default 10 s. */
  spawnTimeoutMs?: number;
  /**
   * Default limits of every child spawned through this handle, over the server's defaults;
   * the server refuses any above its caps.
   */
  limits?: Limits;
}

export interface SpawnOptions {
  /** Arguments for main's default export; JSON values. Default []. */
  args?: readonly unknown[];
  /** A label for logs and the child's process title. */
  name?: string;
  /** Aborting kills the child (or cancels the spawn). */
  signal?: AbortSignal;
  /**
   * Host paths only this child sees: an input directory (read-only), an output directory
   * (`writable: true`), each opened by this process as itself and shown to the child with this
   * process's own rights (an idmapped mount; nothing is chowned). Read what a step wrote with
   * readOutputFile(), which refuses symlinks, FIFOs and hard links.
   */
  mounts?: readonly Mount[];
  /**
   * A network for this child (the zygote must have been started with `sandbox.network`):
   * its own veth and address, NAT through the host, the zygote's rules (no host, private,
   * link-local or metadata addresses), and `allow`: "IP:PORT" or "CIDR:PORT" entries this
   * child alone may reach despite them. Absent: loopback only.
   */
  network?: NetworkRequest;
  /**
   * An output filesystem of this child's own: a fresh tmpfs of `limits.outputBytes` (default
   * 1 GiB) and `limits.outputFiles` (default 4096 files, directories and links), shown to the
   * child writable at `target` (default '/output') and to this process as `child.output`, which
   * you read and close. It has no host path; closing it (and the child's end) frees it.
   */
  output?: OutputRequest;
  /** Per-child rlimits and /tmp size, and (tests only) layers to skip. */
  sandbox?: SpawnSandboxOptions;
  /** Limits for this child, over the handle's defaults (null lifts one). */
  limits?: Limits;
}

/** What spawn({ sandbox }) may hold (mounts and network are spawn options of their own). */
export type SpawnSandboxOptions = Pick<SandboxRequest, 'rlimits' | 'tmpBytes' | 'dangerouslySkip' | 'dangerouslyInjectFailure'>;

const START_KEYS = ['main', 'preload', 'env', 'name', 'startupTimeoutMs', 'spawnTimeoutMs', 'verbose', 'metrics', 'sandbox', 'limits', 'pool', 'maxChildren', 'maxQueue', 'queueTimeoutMs', 'dangerouslyAllowUnsandboxed'] as const satisfies readonly (keyof StartZygoteOptions)[];
const CONNECT_KEYS = ['timeoutMs', 'retryMs', 'spawnTimeoutMs', 'limits'] as const satisfies readonly (keyof ConnectOptions)[];
const SPAWN_KEYS = ['args', 'name', 'signal', 'mounts', 'network', 'output', 'sandbox', 'limits'] as const satisfies readonly (keyof SpawnOptions)[];
export const SPAWN_SANDBOX_KEYS = ['rlimits', 'tmpBytes', 'dangerouslySkip', 'dangerouslyInjectFailure'] as const satisfies readonly (keyof SpawnSandboxOptions)[];

export interface NormalizedStart {
  mainUrl: string;
  preload: string[];
  env: Record<string, string>;
  name: string;
  startupTimeoutMs: number;
  spawnTimeoutMs: number;
  verbose: boolean;
  metrics: MetricsAddress | null;
  sandbox: ReturnType<typeof normalizeSandboxDefaults>;
  allowUnsandboxed: boolean;
  limits: Limits;
  pool: ReturnType<typeof normalizePoolOptions>;
  admission: AdmissionPolicy;
}

export function normalizeStartOptions(opts: StartZygoteOptions): NormalizedStart {
  if (!isOptionsObject(opts)) throw new InvalidOptionError(`Expected startZygote() options to be an object, got ${describe(opts)}`);
  refuseUnknownKeys(opts, START_KEYS, 'startZygote()');
  const mainUrl = toFileUrl(opts.main);
  const preload = opts.preload ?? [];
  if (!Array.isArray(preload) || !preload.every((p) => typeof p === 'string' && p !== '')) {
    throw new InvalidOptionError(`Expected the \`preload\` option to be an array of module specifiers, got ${describe(preload)}`);
  }
  const env = opts.env ?? {};
  if (env === null || typeof env !== 'object' || Array.isArray(env)) throw new InvalidOptionError(`Expected the \`env\` option to be an object, got ${describe(env)}`);
  const cleanEnv: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(env)) {
    if (k === '' || k.includes('=') || k.includes('\0')) throw new InvalidOptionError(`Expected \`env\` keys to be variable names, got ${JSON.stringify(k)}`);
    if (typeof v !== 'string' || v.includes('\0')) throw new InvalidOptionError(`Expected \`env.${k}\` to be a string without NUL, got ${describe(v)}`);
    cleanEnv[k] = v;
  }
  const sandbox = normalizeSandboxDefaults(opts.sandbox, 'startZygote()');
  // One client, the renderer: the per-uid caps are the zygote's own (and connections are not accepted).
  const admission = resolveAdmission({ maxChildren: opts.maxChildren, maxQueue: opts.maxQueue, queueTimeoutMs: opts.queueTimeoutMs }, { uids: 1, uidRangeCount: sandbox.uidRange?.count ?? null });
  return {
    mainUrl,
    preload: [...preload],
    env: cleanEnv,
    name: optionalString(opts.name, 'name') ?? 'zygote',
    startupTimeoutMs: positiveInt(opts.startupTimeoutMs, 'startupTimeoutMs', 30_000),
    spawnTimeoutMs: positiveInt(opts.spawnTimeoutMs, 'spawnTimeoutMs', 10_000),
    verbose: opts.verbose === undefined ? false : bool(opts.verbose, 'verbose'),
    metrics: opts.metrics === undefined ? null : parseMetricsAddress(optionalString(opts.metrics, 'metrics')!),
    sandbox,
    admission,
    allowUnsandboxed: opts.dangerouslyAllowUnsandboxed === undefined ? false : bool(opts.dangerouslyAllowUnsandboxed, 'dangerouslyAllowUnsandboxed'),
    limits: normalizeLimits(opts.limits, 'limits', 'startZygote()'),
    pool: normalizePoolOptions(opts.pool, 'startZygote()'),
  };
}

export function normalizeConnectOptions(opts: ConnectOptions = {}): Required<ConnectOptions> {
  if (!isOptionsObject(opts)) throw new InvalidOptionError(`Expected connect() options to be an object, got ${describe(opts)}`);
  refuseUnknownKeys(opts, CONNECT_KEYS, 'connect()');
  return {
    timeoutMs: positiveInt(opts.timeoutMs, 'timeoutMs', 10_000),
    retryMs: nonNegativeInt(opts.retryMs, 'retryMs', 0),
    spawnTimeoutMs: positiveInt(opts.spawnTimeoutMs, 'spawnTimeoutMs', 10_000),
    limits: normalizeLimits(opts.limits, 'limits', 'connect()'),
  };
}

export function normalizeSpawnOptions(opts: SpawnOptions = {}): {
  argsJson: string;
  name: string;
  signal?: AbortSignal;
  sandbox: SandboxRequest;
  limits: Limits;
  mounts: Mount[];
  network: { allow: string[] } | null;
  output: { target: string } | null;
} {
  if (!isOptionsObject(opts)) throw new InvalidOptionError(`Expected spawn() options to be an object, got ${describe(opts)}`);
  refuseUnknownKeys(opts, SPAWN_KEYS, 'spawn()');
  if (isOptionsObject(opts.sandbox)) refuseUnknownKeys(opts.sandbox, SPAWN_SANDBOX_KEYS, 'spawn() (mounts, network and output are spawn() options of their own)', 'sandbox.');
  const args = opts.args ?? [];
  if (!Array.isArray(args)) throw new InvalidOptionError(`Expected the \`args\` option to be an array, got ${describe(args)}`);
  let argsJson: string;
  try {
    argsJson = JSON.stringify(args);
  } catch (err) {
    throw new InvalidOptionError(`Expected the \`args\` option to hold JSON values: ${(err as Error).message}`);
  }
  const name = optionalString(opts.name, 'name') ?? '';
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw new InvalidOptionError(`Expected the \`signal\` option to be an AbortSignal, got ${describe(opts.signal)}`);
  }
  if (opts.mounts !== undefined && !Array.isArray(opts.mounts)) throw new InvalidOptionError(`Expected the \`mounts\` option to be an array of { source, target, writable? }, got ${describe(opts.mounts)}`);
  const mounts = opts.mounts === undefined ? [] : (normalizeSandboxRequest({ mounts: [...(opts.mounts as Mount[])] }).mounts ?? []);
  const network = normalizeNetworkRequest(opts.network) ?? null;
  if (network && network.allow.length > MAX_NETWORK_ALLOW) throw new InvalidOptionError(`Expected \`network.allow\` to have at most ${MAX_NETWORK_ALLOW} entries, got ${network.allow.length}`);
  const output = normalizeOutputRequest(opts.output) ?? null;
  return { argsJson, name, signal: opts.signal, sandbox: normalizeSandboxRequest(opts.sandbox), limits: normalizeLimits(opts.limits, 'limits', 'spawn()'), mounts, network, output };
}

function toFileUrl(main: unknown): string {
  let url: string;
  if (main instanceof URL) url = main.href;
  else if (typeof main === 'string' && main.startsWith('file:')) url = new URL(main).href;
  else if (typeof main === 'string' && isAbsolute(main)) url = pathToFileURL(main).href;
  else throw new InvalidOptionError(`Expected the \`main\` option to be a file: URL or an absolute path, got ${describe(main)}`);
  if (!url.startsWith('file:')) throw new InvalidOptionError(`Expected the \`main\` option to be a file: URL, got ${url}`);
  if (!existsSync(fileURLToPath(url))) throw new InvalidOptionError(`The \`main\` module does not exist: ${fileURLToPath(url)}`);
  return url;
}

function positiveInt(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InvalidOptionError(`Expected the \`${name}\` option to be a positive integer, got ${describe(v)}`);
  return v;
}

function nonNegativeInt(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidOptionError(`Expected the \`${name}\` option to be a non-negative integer, got ${describe(v)}`);
  return v;
}

function optionalString(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new InvalidOptionError(`Expected the \`${name}\` option to be a string, got ${describe(v)}`);
  return v;
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw new InvalidOptionError(`Expected the \`${name}\` option to be a boolean, got ${describe(v)}`);
  return v;
}
