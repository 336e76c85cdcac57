// A child's resource limits as client and zygote share them: the fields, the defaults every
// child gets unless someone asks otherwise, the caps a `zygote serve` operator sets, and their
// checks. The one place the defaults are written down (README, "Limits and defaults").
import { describe, isOptionsObject, refuseUnknownKeys } from './options.js';
import { InvalidOptionError } from './errors.js';

/**
 * What a child may consume. Exceeding one ends the child, and its ExitStatus.reason says which.
 * A field left out gets the handle's default, else the zygote's (DEFAULT_LIMITS); null asks for
 * no limit at all (only the nullable fields; a served zygote refuses it where its operator set a cap).
 */
export interface Limits {
  /** Wall-clock milliseconds from fork; enforced by the zygote: 'timeout'. */
  wallTimeMs?: number | null;
  /** CPU milliseconds (RLIMIT_CPU, rounded up to whole seconds): 'cpu-limit'. */
  cpuTimeMs?: number | null;
  /** Bytes of memory in the child's own cgroup (no swap); the OOM killer ends it: 'oom'. */
  memoryBytes?: number | null;
  /** Tasks (threads count; Node needs about 10) in the child's cgroup: 'pids-limit'. */
  pids?: number | null;
  /** Bytes of stdout the client lets through; past it the stream ends and the child is killed. */
  stdoutBytes?: number | null;
  /** Same, for stderr. */
  stderrBytes?: number | null;
  /** Largest file the child may write (RLIMIT_FSIZE): past it, writes fail with EFBIG. */
  fileBytes?: number;
  /** Size of the child's private /tmp: past it, writes fail with ENOSPC. */
  tmpBytes?: number;
  /** Size of the child's output filesystem (spawn({ output })): past it, writes fail with ENOSPC. */
  outputBytes?: number;
  /** Files, directories and links the child may make in its output filesystem: past it, ENOSPC. */
  outputFiles?: number;
}

export type LimitKey = keyof Limits;
export const LIMIT_KEYS = ['wallTimeMs', 'cpuTimeMs', 'memoryBytes', 'pids', 'stdoutBytes', 'stderrBytes', 'fileBytes', 'tmpBytes', 'outputBytes', 'outputFiles'] as const satisfies readonly LimitKey[];

/** The limits a caller may lift with null. /tmp and the output are tmpfs, which always have a size, and files always have a largest size. */
export const NULLABLE_LIMITS: readonly LimitKey[] = ['wallTimeMs', 'cpuTimeMs', 'memoryBytes', 'pids', 'stdoutBytes', 'stderrBytes'];

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * What every child gets unless its spawn, its handle or its zygote says otherwise. Chosen as a
 * renderer would for a data step, well above what one needs (measured here from the child's
 * cgroup: README, "Limits and defaults"):
 * - memoryBytes 1 GiB: a bare child is charged 2 MiB (24 MiB RSS, the rest shared with the
 *   zygote), the demo's step over 300,000 rows 16 MiB (54 MiB RSS); a step's own data is what grows;
 * - pids 32: a bare child is 2 tasks (its init and the step), runStep's 6 (libuv's pool), each
 *   Worker one more. Not 64: a Worker holds about 4 fds, so a Worker bomb would hit nofile
 *   (256) first and end as an EMFILE of its own instead of 'pids-limit';
 * - wallTimeMs 60 s: a step here takes milliseconds to seconds;
 * - cpuTimeMs none: the wall time bounds it already (at most 60 s per core);
 * - stdoutBytes 64 MiB, stderrBytes 16 MiB: what the renderer may be made to read; data goes
 *   through files, and a step's result (runStep) is at most 256 KiB;
 * - fileBytes 1 GiB (RLIMIT_FSIZE), tmpBytes 64 MiB (the child's /tmp);
 * - outputBytes 1 GiB, outputFiles 4096: the output filesystem (spawn({ output }), runStep's
 *   /output), a tmpfs charged to the child's memory, so memoryBytes bounds it too; a step writes
 *   one output file, a partitioned one a few hundred.
 */
export const DEFAULT_LIMITS: Readonly<{ [K in LimitKey]-?: Exclude<Limits[K], undefined> }> = Object.freeze({
  wallTimeMs: 60_000,
  cpuTimeMs: null,
  memoryBytes: 1 * GiB,
  pids: 32,
  stdoutBytes: 64 * MiB,
  stderrBytes: 16 * MiB,
  fileBytes: 1 * GiB,
  tmpBytes: 64 * MiB,
  outputBytes: 1 * GiB,
  outputFiles: 4096,
});

/** RLIMIT_NOFILE of every child unless its zygote or spawn says otherwise. */
export const DEFAULT_NOFILE = 256;

/** Node's own threads (main, V8 platform, libuv pool, inspector) need about this many tasks. */
export const MIN_PIDS = 10;

/**
 * The smallest memory limit accepted. Measured here (cgroup v1): a bare child is charged about
 * 2 MiB (its pages are mostly the zygote's, shared) and under 2 MiB it is killed while it
 * sets up. A 3-row runStep peaks at 6.2-7.3 MiB, but a run of consecutive children peaks at
 * 11-16 MiB (20 per fresh zygote, measured: what its heap is doing when it forks decides how
 * much of it a child copies). 16 MiB, the floor before, OOM-killed such a step now and then;
 * 32 MiB is twice the worst peak seen. Below it a limit only produces OOM kills.
 */
export const MIN_MEMORY_BYTES = 32 * MiB;

/** The floor as the messages say it (here and in zygote/sandbox/limits.ts). */
export const MIN_MEMORY_TEXT = `${MIN_MEMORY_BYTES} (${MIN_MEMORY_BYTES / MiB} MiB)`;

/** Checks a limits object (`path` is its place in the options, e.g. "limits"); each field a positive safe integer, or null where allowed. */
export function normalizeLimits(l: unknown, path: string, where: string): Limits {
  if (l === undefined) return {};
  if (!isOptionsObject(l)) throw new InvalidOptionError(`Expected the \`${path}\` option of ${where} to be an object, got ${describe(l)}`);
  refuseUnknownKeys(l, LIMIT_KEYS, where, `${path}.`);
  const out: Limits = {};
  for (const k of LIMIT_KEYS) {
    const v = (l as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (v === null && NULLABLE_LIMITS.includes(k)) {
      (out as Record<string, null>)[k] = null;
      continue;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      const none = NULLABLE_LIMITS.includes(k) ? ' (or null for no limit)' : '';
      throw new InvalidOptionError(`Expected \`${path}.${k}\` to be a positive integer${none}, got ${describe(v)}`);
    }
    if (k === 'pids' && v < MIN_PIDS) throw new InvalidOptionError(`Expected \`${path}.pids\` to be at least ${MIN_PIDS}: Node itself needs that many threads (below it, it hangs or aborts), got ${v}`);
    if (k === 'memoryBytes' && v < MIN_MEMORY_BYTES) throw new InvalidOptionError(`Expected \`${path}.memoryBytes\` to be at least ${MIN_MEMORY_TEXT}: a Node child needs about 2 MiB of its own just to start, and a step up to 16 MiB more, got ${v}`);
    out[k] = v;
  }
  return out;
}

/** The limits the zygote enforces itself (the output caps are the client's: it reads the pipes). */
export const ZYGOTE_LIMIT_KEYS = ['wallTimeMs', 'cpuTimeMs', 'memoryBytes', 'pids', 'tmpBytes', 'fileBytes', 'nofile', 'outputBytes', 'outputFiles'] as const;
export type ZygoteLimitKey = (typeof ZYGOTE_LIMIT_KEYS)[number];

/** What a zygote granted one child (null: no limit). Reported with Spawned, as `child.limits`. */
export interface GrantedLimits {
  wallTimeMs: number | null;
  cpuTimeMs: number | null;
  memoryBytes: number | null;
  pids: number | null;
  tmpBytes: number;
  fileBytes: number;
  nofile: number;
  /** The output filesystem's size and inode cap, whether or not the spawn asked for one. */
  outputBytes: number;
  outputFiles: number;
}

/** The nullable limits a zygote defaults; /tmp, file size and nofile defaults are its sandbox's (protocol/sandbox.ts). */
export const POLICY_DEFAULT_KEYS = ['wallTimeMs', 'cpuTimeMs', 'memoryBytes', 'pids'] as const;
type PolicyDefaultKey = (typeof POLICY_DEFAULT_KEYS)[number];
/** The limits a zygote defaults that always have a value (no null). */
export const POLICY_SIZED_KEYS = ['outputBytes', 'outputFiles'] as const;
type PolicySizedKey = (typeof POLICY_SIZED_KEYS)[number];

/**
 * A zygote's limit policy: its defaults for a spawn that does not ask (null: none) and its caps,
 * which a spawn may go below but never above nor lift (`zygote serve --default-*`, `--max-*`,
 * `--tmp-bytes`, `--fsize`, `--nofile`). An embedded zygote has no caps: its one client, the
 * renderer, is trusted.
 */
export interface LimitPolicy {
  defaults: { [K in PolicyDefaultKey]: number | null } & { [K in PolicySizedKey]: number };
  max: Partial<Record<ZygoteLimitKey, number>>;
}

/** The built-in policy: DEFAULT_LIMITS, no caps. */
export function builtinLimitPolicy(): LimitPolicy {
  const { wallTimeMs, cpuTimeMs, memoryBytes, pids, outputBytes, outputFiles } = DEFAULT_LIMITS;
  return { defaults: { wallTimeMs, cpuTimeMs, memoryBytes, pids, outputBytes, outputFiles }, max: {} };
}

/**
 * Checks a policy: the shape, positive integers, and that no default is above its cap or lifts
 * a capped limit (else every spawn that asks nothing would be refused). Messages name the field.
 */
export function normalizeLimitPolicy(p: unknown, what = 'limits'): LimitPolicy {
  if (!isOptionsObject(p)) throw new InvalidOptionError(`Expected \`${what}\` to be { defaults, max }, got ${describe(p)}`);
  refuseUnknownKeys(p, ['defaults', 'max'], 'the limit policy', `${what}.`);
  const { defaults, max } = p as { defaults?: unknown; max?: unknown };
  if (!isOptionsObject(defaults)) throw new InvalidOptionError(`Expected \`${what}.defaults\` to be an object, got ${describe(defaults)}`);
  if (!isOptionsObject(max)) throw new InvalidOptionError(`Expected \`${what}.max\` to be an object, got ${describe(max)}`);
  refuseUnknownKeys(defaults, [...POLICY_DEFAULT_KEYS, ...POLICY_SIZED_KEYS], 'the limit policy', `${what}.defaults.`);
  refuseUnknownKeys(max, ZYGOTE_LIMIT_KEYS, 'the limit policy', `${what}.max.`);
  const positive = (v: unknown, field: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new InvalidOptionError(`Expected \`${field}\` to be a positive integer, got ${describe(v)}`);
    return v;
  };
  const out: LimitPolicy = { defaults: { wallTimeMs: null, cpuTimeMs: null, memoryBytes: null, pids: null, outputBytes: 0, outputFiles: 0 }, max: {} };
  const maxes = max as Record<string, unknown>;
  for (const k of ZYGOTE_LIMIT_KEYS) if (maxes[k] !== undefined) out.max[k] = positive(maxes[k], `${what}.max.${k}`);
  for (const k of POLICY_DEFAULT_KEYS) {
    const v = (defaults as Record<string, unknown>)[k];
    if (v === undefined) throw new InvalidOptionError(`Expected \`${what}.defaults.${k}\` to be a positive integer or null (no limit), got undefined`);
    if (v !== null) positive(v, `${what}.defaults.${k}`);
    const cap = out.max[k];
    if (cap !== undefined && (v === null || (v as number) > cap)) {
      throw new InvalidOptionError(`Expected the default \`${k}\` (${v === null ? 'no limit' : v}) to be within its cap (${cap})`);
    }
    out.defaults[k] = v as number | null;
  }
  for (const k of POLICY_SIZED_KEYS) {
    const v = positive((defaults as Record<string, unknown>)[k], `${what}.defaults.${k}`);
    const cap = out.max[k];
    if (cap !== undefined && v > cap) throw new InvalidOptionError(`Expected the default \`${k}\` (${v}) to be within its cap (${cap})`);
    out.defaults[k] = v;
  }
  if (out.defaults.pids !== null && out.defaults.pids < MIN_PIDS) throw new InvalidOptionError(`Expected the default \`pids\` to be at least ${MIN_PIDS}, got ${out.defaults.pids}`);
  if (out.defaults.memoryBytes !== null && out.defaults.memoryBytes < MIN_MEMORY_BYTES) throw new InvalidOptionError(`Expected the default \`memoryBytes\` to be at least ${MIN_MEMORY_TEXT}, got ${out.defaults.memoryBytes}`);
  return out;
}

/** Where a client sets each zygote-enforced limit, for messages. */
export const LIMIT_OPTION_PATHS: Readonly<Record<ZygoteLimitKey, string>> = {
  wallTimeMs: 'limits.wallTimeMs',
  cpuTimeMs: 'limits.cpuTimeMs',
  memoryBytes: 'limits.memoryBytes',
  pids: 'limits.pids',
  tmpBytes: 'limits.tmpBytes',
  fileBytes: 'limits.fileBytes',
  nofile: 'sandbox.rlimits.nofile',
  outputBytes: 'limits.outputBytes',
  outputFiles: 'limits.outputFiles',
};

/** The refusal of a limit above its zygote's cap, as both sides word it. requested null: no limit was asked. */
export function describeAboveCap(field: ZygoteLimitKey, requested: number | null, cap: number): string {
  const asked = requested === null ? 'no limit (null)' : String(requested);
  return `\`${LIMIT_OPTION_PATHS[field]}\` asked for ${asked}, above this zygote's cap of ${cap}: ask for at most ${cap}`;
}

/**
 * A size or count on a command line: an integer, optionally with a binary suffix (K, M, G, T:
 * KiB...), or "none" where allowNone. Throws a message saying what was expected.
 */
export function parseLimitArg(text: string, opts: { bytes: boolean; allowNone: boolean }): number | null {
  if (opts.allowNone && text === 'none') return null;
  const m = (opts.bytes ? /^(\d+)([KMGT]?)$/ : /^(\d+)()$/).exec(text);
  const n = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ') : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) {
    const want = `${opts.bytes ? 'a positive number of bytes (a K, M, G or T suffix for KiB, MiB...)' : 'a positive integer'}${opts.allowNone ? ' or "none"' : ''}`;
    throw new Error(`expected ${want}, got ${JSON.stringify(text)}`);
  }
  return n;
}
