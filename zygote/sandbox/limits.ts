// The limits one child gets: its spawn's request over the zygote's defaults, within the
// zygote's caps (protocol/limits.ts, LimitPolicy). Checked here, on what arrived over the wire,
// whatever the client library did: a request above a cap, or for no limit where there is a
// cap, is refused with the field, the value and the cap.
import type { ZygoteConfig } from '../../protocol/config.js';
import { NO_LIMIT, type AboveCap, type WireLimits } from '../../protocol/control.js';
import { describeAboveCap, MIN_MEMORY_BYTES, MIN_MEMORY_TEXT, MIN_PIDS, type GrantedLimits, type ZygoteLimitKey } from '../../protocol/limits.js';

/** A limit asked above its cap; the client gets it as a LimitCapError. */
export class AboveCapError extends Error {
  constructor(readonly aboveCap: AboveCap) {
    super(describeAboveCap(aboveCap.field, aboveCap.requested, aboveCap.cap));
  }
}

/**
 * What the child gets. limits: the wire's Limits (absent: default; NO_LIMIT: none); rlimits:
 * the wire's SandboxRequest nofile and fsize. Throws AboveCapError, or an Error naming a field
 * that is not a valid limit at all.
 */
export function grantLimits(config: Pick<ZygoteConfig, 'limits' | 'sandbox'>, limits: WireLimits, rlimits: { nofile?: number; fsize?: number }): GrantedLimits {
  const { defaults, max } = config.limits;
  const nullable = (k: 'wallTimeMs' | 'cpuTimeMs' | 'memoryBytes' | 'pids', asked: number | undefined): number | null => {
    if (asked !== undefined && (!Number.isSafeInteger(asked) || asked < 0)) throw new Error(`limits.${k} must be a positive integer, or ${NO_LIMIT} for no limit, got ${asked}`);
    return withinCap(k, asked === undefined ? defaults[k] : asked === NO_LIMIT ? null : asked, max[k]);
  };
  // /tmp, the output, file size and nofile always have a limit: a tmpfs of size 0 would even be unbounded.
  const sized = (k: 'tmpBytes' | 'fileBytes' | 'nofile' | 'outputBytes' | 'outputFiles', asked: number | undefined, dflt: number): number => {
    if (asked !== undefined && (!Number.isSafeInteger(asked) || asked <= 0)) throw new Error(`${k} must be a positive integer, got ${asked}`);
    return withinCap(k, asked ?? dflt, max[k]) as number;
  };
  const granted: GrantedLimits = {
    wallTimeMs: nullable('wallTimeMs', limits.wallTimeMs),
    cpuTimeMs: nullable('cpuTimeMs', limits.cpuTimeMs),
    memoryBytes: nullable('memoryBytes', limits.memoryBytes),
    pids: nullable('pids', limits.pids),
    tmpBytes: sized('tmpBytes', limits.tmpBytes, config.sandbox.tmpBytes),
    fileBytes: sized('fileBytes', rlimits.fsize, config.sandbox.rlimits.fsize),
    nofile: sized('nofile', rlimits.nofile, config.sandbox.rlimits.nofile),
    outputBytes: sized('outputBytes', limits.outputBytes, defaults.outputBytes),
    outputFiles: sized('outputFiles', limits.outputFiles, defaults.outputFiles),
  };
  if (granted.memoryBytes !== null && granted.memoryBytes < MIN_MEMORY_BYTES) {
    throw new Error(`limits.memoryBytes must be at least ${MIN_MEMORY_TEXT}: a Node child needs about 2 MiB of its own just to start, and a step up to 16 MiB more`);
  }
  if (granted.pids !== null && granted.pids < MIN_PIDS) {
    throw new Error(`limits.pids must be at least ${MIN_PIDS}: Node itself needs that many threads (below it, it hangs or aborts)`);
  }
  return granted;
}

function withinCap(field: ZygoteLimitKey, value: number | null, cap: number | undefined): number | null {
  if (cap !== undefined && (value === null || value > cap)) throw new AboveCapError({ field, requested: value, cap });
  return value;
}
