// What one spawn asks for: host paths to mount, a network, its sandbox request and its limits.
// The client checks them before anything is sent (client/options.ts); the zygote decides what
// it grants (zygote/sandbox/policy.ts).
import { constants as osConstants } from 'node:os';
import { describe, isOptionsObject, refuseUnknownKeys } from './options.js';
import { checkAllowList, DEFAULT_RLIMITS, normalizeRlimits, SANDBOX_LAYERS, type RlimitOptions, type SandboxLayer } from './sandbox.js';
import { InvalidOptionError } from './errors.js';

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

/**
 * An output filesystem of the child's own (spawn({ output })): a fresh tmpfs of
 * limits.outputBytes and limits.outputFiles that the zygote makes for this child alone, shown to
 * it writable at `target` and to the client as `child.output`. It has no host path.
 */
export interface OutputRequest {
  /** Where the child sees it: an absolute, normalized path other than /. Default '/output'. */
  target?: string;
}

export const DEFAULT_OUTPUT_TARGET = '/output';
const OUTPUT_KEYS = ['target'] as const satisfies readonly (keyof OutputRequest)[];

/** Checks a spawn's `output` option (client side): {} or { target }. */
export function normalizeOutputRequest(o: unknown, where = 'spawn()'): { target: string } | undefined {
  if (o === undefined) return undefined;
  if (!isOptionsObject(o)) throw new InvalidOptionError(`Expected the \`output\` option of ${where} to be an object { target?: string }, got ${describe(o)}`);
  refuseUnknownKeys(o, OUTPUT_KEYS, where, 'output.');
  const target = (o as OutputRequest).target ?? DEFAULT_OUTPUT_TARGET;
  if (typeof target !== 'string' || !target.startsWith('/') || target.includes('\0')) {
    throw new InvalidOptionError(`Expected \`output.target\` of ${where} to be an absolute path, got ${describe(target)}`);
  }
  return { target };
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

const SANDBOX_REQUEST_KEYS = ['rlimits', 'tmpBytes', 'mounts', 'network', 'dangerouslySkip', 'dangerouslyInjectFailure'] as const satisfies readonly (keyof SandboxRequest)[];
const MOUNT_KEYS = ['source', 'target', 'writable'] as const satisfies readonly (keyof Mount)[];

/** Checks a spawn's `network` option (client side): { allow?: entries }. */
export function normalizeNetworkRequest(n: unknown): { allow: string[] } | undefined {
  if (n === undefined) return undefined;
  if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new InvalidOptionError(`Expected the \`network\` option to be an object { allow?: string[] }, got ${JSON.stringify(n)}`);
  refuseUnknownKeys(n, ['allow'], 'spawn()', 'network.');
  return { allow: checkAllowList((n as NetworkRequest).allow, 'network.allow').map((e) => e.text) };
}

/** Checks a spawn's sandbox request (client side, before anything is sent). */
export function normalizeSandboxRequest(r: SandboxRequest | undefined, where = 'spawn()'): SandboxRequest {
  if (r === undefined) return {};
  if (!isOptionsObject(r)) throw new InvalidOptionError(`Expected the \`sandbox\` option to be an object, got ${describe(r)}`);
  refuseUnknownKeys(r, SANDBOX_REQUEST_KEYS, where, 'sandbox.');
  const out: SandboxRequest = {};
  if (r.rlimits !== undefined) {
    // Only what was asked: a field left out is the zygote's to fill in (its default, within its cap).
    const checked = normalizeRlimits(r.rlimits, DEFAULT_RLIMITS, 'sandbox.rlimits', where);
    out.rlimits = {};
    if (r.rlimits.nofile !== undefined) out.rlimits.nofile = checked.nofile;
    if (r.rlimits.fsize !== undefined) out.rlimits.fsize = checked.fsize;
  }
  if (r.tmpBytes !== undefined) {
    if (!Number.isSafeInteger(r.tmpBytes) || r.tmpBytes <= 0) throw new InvalidOptionError(`Expected \`tmpBytes\` to be a positive integer, got ${String(r.tmpBytes)}`);
    out.tmpBytes = r.tmpBytes;
  }
  if (r.mounts !== undefined) {
    if (!Array.isArray(r.mounts)) throw new InvalidOptionError('Expected `mounts` to be an array of { source, target, writable? }');
    out.mounts = r.mounts.map((m, i) => {
      if (typeof m !== 'object' || m === null || typeof m.source !== 'string' || typeof m.target !== 'string' || (m.writable !== undefined && typeof m.writable !== 'boolean')) {
        throw new InvalidOptionError(`Expected \`mounts[${i}]\` to be { source: string, target: string, writable?: boolean }, got ${JSON.stringify(m)}`);
      }
      refuseUnknownKeys(m, MOUNT_KEYS, where, `mounts[${i}].`);
      return { source: m.source, target: m.target, writable: m.writable === true };
    });
  }
  if (r.network !== undefined) out.network = normalizeNetworkRequest(r.network);
  if (r.dangerouslySkip !== undefined) {
    if (!Array.isArray(r.dangerouslySkip) || !r.dangerouslySkip.every((l) => (SANDBOX_LAYERS as readonly string[]).includes(l))) {
      throw new InvalidOptionError(`Expected \`sandbox.dangerouslySkip\` to list layers among ${SANDBOX_LAYERS.join(', ')}, got ${JSON.stringify(r.dangerouslySkip)}`);
    }
    out.dangerouslySkip = [...r.dangerouslySkip];
  }
  if (r.dangerouslyInjectFailure !== undefined) {
    const f = r.dangerouslyInjectFailure;
    if (isOptionsObject(f)) refuseUnknownKeys(f, ['step', 'errno'], where, 'sandbox.dangerouslyInjectFailure.');
    if (typeof f?.step !== 'string' || typeof f?.errno !== 'string' || !(f.errno in osConstants.errno)) {
      throw new InvalidOptionError(`Expected \`sandbox.dangerouslyInjectFailure\` to be { step, errno: an errno name }, got ${JSON.stringify(f)}`);
    }
    out.dangerouslyInjectFailure = { step: f.step, errno: f.errno };
  }
  return out;
}

// Limits and their checks live in protocol/limits.ts; re-exported here, where they used to be.
export { LIMIT_KEYS, normalizeLimits, type Limits } from './limits.js';
export { describe } from './options.js';
