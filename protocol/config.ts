// The zygote process's configuration: what the client or the CLI hands it on its command line.
import { checkAdmissionPolicy, type AdmissionPolicy } from './admission.js';
import { InvalidOptionError, ProtocolError } from './errors.js';
import { normalizeLimitPolicy, type LimitPolicy } from './limits.js';
import { normalizeSandboxDefaults, type NormalizedSandboxDefaults, type SandboxDefaults } from './sandbox.js';
import { normalizePoolOptions, type NormalizedPoolOptions } from './pool.js';
import { normalizeOperations, type OperationsConfig } from './operations.js';

/** How the zygote meets its clients. */
export type ControlConfig =
  /** Embedded: one client, already connected on this fd (a socketpair end). */
  | { kind: 'fd'; fd: number }
  /** Served: a listening socket at path, for the allowed peer uids. */
  | { kind: 'listen'; path: string; allowUids: number[] };

export interface ZygoteConfig {
  /** file: URL of the module whose default export each child runs. */
  main: string;
  /** Module specifiers imported once by the zygote, resolved from main's location. */
  preload: string[];
  control: ControlConfig;
  /** Label for log lines. */
  name: string;
  /** How long a child may take between fork and reporting that it is ready. */
  setupTimeoutMs: number;
  /** One log line per spawn, exit and connection (the CLI's default); errors are always logged. */
  verbose: boolean;
  /** The children's sandbox (normalised defaults). */
  sandbox: ReturnType<typeof normalizeSandboxDefaults>;
  /**
   * Limits of a spawn that does not ask (memory, pids, wall and CPU time; /tmp, file size and
   * nofile are the sandbox's) and the caps no spawn may exceed (zygote/sandbox/limits.ts).
   */
  limits: LimitPolicy;
  /** Connections per uid, live children, the spawn queue (protocol/admission.ts). */
  admission: AdmissionPolicy;
  /** DANGEROUS: honour spawns that skip sandbox layers (tests only; never the CLI). */
  allowUnsandboxed: boolean;
  /** How long shutdown waits for children to be reaped after SIGKILL. */
  shutdownTimeoutMs: number;
  /** Children forked and sandboxed ahead of spawns (zygote/pool.ts); absent or null: none. */
  pool?: NormalizedPoolOptions | null;
  /** Log, drain and metrics (protocol/operations.ts); absent: text on stderr, no drain, no metrics. */
  operations?: OperationsConfig;
}

/**
 * The Node flags without which forking a warm Node process is unsafe or slow (README, How it
 * works). `--no-memory-reducer`: V8's memory reducer arms a libuv timer after each mark-compact;
 * the zygote's loop is parked, so it never fires there, and every child forked once it is due
 * fires it on its first loop turn, sweeping and marking its copy of the whole heap: steps 2.5 s
 * apart took 2,300 faults and 42 ms to their first byte instead of 1,540 and 21. The zygote
 * gives its heap back itself, when quiet (zygote/heap-trim.ts).
 */
export const FORK_SAFE_NODE_FLAGS = ['--single-threaded', '--v8-pool-size=1', '--no-memory-reducer'] as const;

/** Encodes a config as one argv word. */
export function encodeConfig(config: ZygoteConfig): string {
  return Buffer.from(JSON.stringify(config)).toString('base64url');
}

/** Decodes and checks the argv word; throws naming the first bad field. */
export function decodeConfig(word: string | undefined): ZygoteConfig {
  if (!word) throw new Error('zygote: missing configuration argument (start it with startZygote() or `zygote serve`)');
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(word, 'base64url').toString('utf8'));
  } catch (err) {
    throw new ProtocolError('undecodable', 'zygote: the configuration argument is not base64url JSON', { cause: err });
  }
  const c = raw as Partial<ZygoteConfig>;
  const bad = (field: string, want: string): never => {
    throw new Error(`zygote: configuration field \`${field}\` must be ${want}`);
  };
  if (typeof c.main !== 'string' || !c.main.startsWith('file:')) bad('main', 'a file: URL');
  if (!Array.isArray(c.preload) || !c.preload.every((p) => typeof p === 'string')) bad('preload', 'an array of strings');
  if (typeof c.name !== 'string') bad('name', 'a string');
  if (typeof c.verbose !== 'boolean') bad('verbose', 'a boolean');
  if (typeof c.allowUnsandboxed !== 'boolean') bad('allowUnsandboxed', 'a boolean');
  try {
    c.sandbox = normalizeSandboxDefaults(c.sandbox as SandboxDefaults);
  } catch (err) {
    bad('sandbox', (err as Error).message);
  }
  try {
    c.limits = normalizeLimitPolicy(c.limits);
    checkSandboxWithinCaps(c.sandbox!, c.limits);
  } catch (err) {
    bad('limits', (err as Error).message);
  }
  try {
    c.admission = checkAdmissionPolicy(c.admission);
  } catch (err) {
    bad('admission', (err as Error).message);
  }
  const range = c.sandbox!.uidRange;
  if (range && c.admission!.maxChildren > range.count) bad('admission.maxChildren', `at most the uid range's count (${range.count})`);
  if (!Number.isInteger(c.setupTimeoutMs) || c.setupTimeoutMs! <= 0) bad('setupTimeoutMs', 'a positive integer');
  if (!Number.isInteger(c.shutdownTimeoutMs) || c.shutdownTimeoutMs! <= 0) bad('shutdownTimeoutMs', 'a positive integer');
  try {
    c.pool = normalizePoolOptions(c.pool, 'the zygote configuration');
  } catch (err) {
    bad('pool', (err as Error).message);
  }
  try {
    c.operations = normalizeOperations(c.operations, 0);
  } catch (err) {
    bad('operations', (err as Error).message);
  }
  const ctl = c.control as ControlConfig | undefined;
  if (ctl?.kind === 'fd') {
    if (!Number.isInteger(ctl.fd) || ctl.fd < 3) bad('control.fd', 'an integer fd above 2');
  } else if (ctl?.kind === 'listen') {
    if (typeof ctl.path !== 'string' || ctl.path === '') bad('control.path', 'a socket path');
    if (!Array.isArray(ctl.allowUids) || !ctl.allowUids.every((u) => Number.isInteger(u) && u >= 0)) {
      bad('control.allowUids', 'an array of uids');
    }
  } else {
    bad('control', '{ kind: "fd" } or { kind: "listen" }');
  }
  return c as ZygoteConfig;
}

/** The sandbox's own defaults (/tmp, file size, nofile) must be within the caps, or every spawn that asks nothing is refused. */
export function checkSandboxWithinCaps(sandbox: NormalizedSandboxDefaults, limits: LimitPolicy): void {
  const own = { tmpBytes: sandbox.tmpBytes, fileBytes: sandbox.rlimits.fsize, nofile: sandbox.rlimits.nofile };
  for (const [k, v] of Object.entries(own) as [keyof typeof own, number][]) {
    const cap = limits.max[k];
    if (cap !== undefined && v > cap) throw new InvalidOptionError(`Expected the default \`${k}\` (${v}) to be within its cap (${cap})`);
  }
}
