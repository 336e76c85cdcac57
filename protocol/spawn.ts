// What one spawn asks for: host paths to mount, a network, its sandbox request and its limits.
// The client checks them before anything is sent (client/options.ts); the zygote decides what
// it grants (zygote/sandbox/policy.ts).
import { constants as osConstants } from 'node:os';
import { checkAllowList, DEFAULT_RLIMITS, normalizeRlimits, SANDBOX_LAYERS, type RlimitOptions, type SandboxLayer } from './sandbox.js';

/** A host directory or file a spawn shows to its child. */
export interface Mount {
  /** Absolute host path, opened by the client as itself (O_PATH; the last component is not followed). */
  source: string;
  /** Absolute path inside the child. */
  target: string;
  /** Writable by the child, with the client's own rights (the mount is idmapped to it); read-only by default. */
  writable?: boolean;
}

/** A spawn's network: its own allow entries, on top of the zygote's. */
export interface NetworkRequest {
  /** "IP:PORT" or "CIDR:PORT" (IPv4), or "[IPv6]:PORT": destinations this child alone may reach. */
  allow?: readonly string[];
}

/** What one spawn may ask of the sandbox. */
export interface SandboxRequest {
  rlimits?: RlimitOptions;
  /** Size of this child's /tmp, in bytes. */
  tmpBytes?: number;
  /** Host paths this child alone sees (an input directory, a writable output directory). */
  mounts?: Mount[];
  /** A network of its own (spawn({ network })); absent: loopback only. */
  network?: { allow: string[] };
  /**
   * DANGEROUS, for tests and positive controls only: run this child without these layers.
   * Honoured only by a zygote started with `dangerouslyAllowUnsandboxed: true` (never by
   * `zygote serve`); any other zygote refuses the spawn.
   */
  dangerouslySkip?: readonly SandboxLayer[];
  /** DANGEROUS, tests only: make the named native setup step fail with this errno. */
  dangerouslyInjectFailure?: { step: string; errno: string };
}

/** Checks a spawn's `network` option (client side): { allow?: entries }. */
export function normalizeNetworkRequest(n: unknown): { allow: string[] } | undefined {
  if (n === undefined) return undefined;
  if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new TypeError(`Expected the \`network\` option to be an object { allow?: string[] }, got ${JSON.stringify(n)}`);
  const unknown = Object.keys(n).filter((k) => k !== 'allow');
  if (unknown.length > 0) throw new TypeError(`Unknown \`network\` option field ${unknown.map((k) => `\`network.${k}\``).join(', ')}; known: allow`);
  return { allow: checkAllowList((n as NetworkRequest).allow, 'network.allow').map((e) => e.text) };
}

/** Checks a spawn's sandbox request (client side, before anything is sent). */
export function normalizeSandboxRequest(r: SandboxRequest | undefined): SandboxRequest {
  if (r === undefined) return {};
  if (typeof r !== 'object' || r === null) throw new TypeError('Expected the `sandbox` option to be an object');
  const out: SandboxRequest = {};
  if (r.rlimits !== undefined) out.rlimits = normalizeRlimits(r.rlimits, DEFAULT_RLIMITS, 'sandbox.rlimits');
  if (r.tmpBytes !== undefined) {
    if (!Number.isSafeInteger(r.tmpBytes) || r.tmpBytes <= 0) throw new TypeError(`Expected \`tmpBytes\` to be a positive integer, got ${String(r.tmpBytes)}`);
    out.tmpBytes = r.tmpBytes;
  }
  if (r.mounts !== undefined) {
    if (!Array.isArray(r.mounts)) throw new TypeError('Expected `mounts` to be an array of { source, target, writable? }');
    out.mounts = r.mounts.map((m, i) => {
      if (typeof m !== 'object' || m === null || typeof m.source !== 'string' || typeof m.target !== 'string' || (m.writable !== undefined && typeof m.writable !== 'boolean')) {
        throw new TypeError(`Expected \`mounts[${i}]\` to be { source: string, target: string, writable?: boolean }, got ${JSON.stringify(m)}`);
      }
      return { source: m.source, target: m.target, writable: m.writable === true };
    });
  }
  if (r.network !== undefined) out.network = normalizeNetworkRequest(r.network);
  if (r.dangerouslySkip !== undefined) {
    if (!Array.isArray(r.dangerouslySkip) || !r.dangerouslySkip.every((l) => (SANDBOX_LAYERS as readonly string[]).includes(l))) {
      throw new TypeError(`Expected \`sandbox.dangerouslySkip\` to list layers among ${SANDBOX_LAYERS.join(', ')}, got ${JSON.stringify(r.dangerouslySkip)}`);
    }
    out.dangerouslySkip = [...r.dangerouslySkip];
  }
  if (r.dangerouslyInjectFailure !== undefined) {
    const f = r.dangerouslyInjectFailure;
    if (typeof f?.step !== 'string' || typeof f?.errno !== 'string' || !(f.errno in osConstants.errno)) {
      throw new TypeError(`Expected \`sandbox.dangerouslyInjectFailure\` to be { step, errno: an errno name }, got ${JSON.stringify(f)}`);
    }
    out.dangerouslyInjectFailure = { step: f.step, errno: f.errno };
  }
  return out;
}

/**
 * What a child may consume. Exceeding one ends the child, and its ExitStatus.reason says
 * which: 'timeout', 'cpu-limit', 'output-limit'.
 */
export interface Limits {
  /** Wall-clock milliseconds from fork; enforced by the zygote. */
  wallTimeMs?: number;
  /** CPU milliseconds (RLIMIT_CPU, rounded up to whole seconds). */
  cpuTimeMs?: number;
  /** Bytes of memory in the child's own cgroup (no swap); the OOM killer ends it: 'oom'. */
  memoryBytes?: number;
  /** Tasks (threads count; Node needs about 10) in the child's cgroup: 'pids-limit'. */
  pids?: number;
  /** Bytes of stdout the client lets through; past it the stream ends and the child is killed. */
  stdoutBytes?: number;
  /** Same, for stderr. */
  stderrBytes?: number;
  /** Largest file the child may write (RLIMIT_FSIZE): past it, writes fail with EFBIG. */
  fileBytes?: number;
  /** Size of the child's private /tmp: past it, writes fail with ENOSPC. */
  tmpBytes?: number;
}

export const LIMIT_KEYS = ['wallTimeMs', 'cpuTimeMs', 'memoryBytes', 'pids', 'stdoutBytes', 'stderrBytes', 'fileBytes', 'tmpBytes'] as const;

/** Checks a limits object; each field a positive safe integer. */
export function normalizeLimits(l: Limits | undefined, what: string): Limits {
  if (l === undefined) return {};
  if (l === null || typeof l !== 'object') throw new TypeError(`Expected the \`${what}\` option to be an object, got ${describe(l)}`);
  const out: Limits = {};
  for (const [k, v] of Object.entries(l)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(k)) throw new TypeError(`Unknown limit \`${what}.${k}\`; known: ${LIMIT_KEYS.join(', ')}`);
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new TypeError(`Expected \`${what}.${k}\` to be a positive integer, got ${describe(v)}`);
    out[k as keyof Limits] = v;
  }
  return out;
}

/** A value as an option's error message shows it. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `${JSON.stringify(v)} (string)`;
  if (typeof v === 'object') return `an object`;
  return `${String(v)} (${typeof v})`;
}
