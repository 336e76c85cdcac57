// The warm pool: children forked and sandboxed ahead of any spawn, each claimed by one spawn
// (zygote/pool.ts). What startZygote({ pool }) and `zygote serve --pool N` accept.
import { InvalidOptionError } from './errors.js';
import { describe, isOptionsObject, refuseUnknownKeys } from './options.js';

export interface PoolOptions {
  /** Children kept forked and waiting (1 to MAX_POOL_SIZE). */
  size: number;
  /**
   * An idle child older than this is replaced by a fresh one (so a pool child's state never
   * ages far from the zygote's); default DEFAULT_POOL_MAX_IDLE_MS.
   */
  maxIdleMs?: number;
}

export type NormalizedPoolOptions = Required<PoolOptions>;

export const MAX_POOL_SIZE = 64;
export const DEFAULT_POOL_MAX_IDLE_MS = 5 * 60_000;
const POOL_KEYS = ['size', 'maxIdleMs'] as const satisfies readonly (keyof PoolOptions)[];

/** Checks a pool option; null (or absent) is no pool. Errors name the field. */
export function normalizePoolOptions(p: unknown, where: string): NormalizedPoolOptions | null {
  if (p === undefined || p === null) return null;
  if (!isOptionsObject(p)) throw new InvalidOptionError(`Expected the \`pool\` option of ${where} to be an object { size, maxIdleMs? }, got ${describe(p)}`);
  refuseUnknownKeys(p, POOL_KEYS, where, 'pool.');
  const o = p as PoolOptions;
  if (!Number.isSafeInteger(o.size) || o.size < 1 || o.size > MAX_POOL_SIZE) {
    throw new InvalidOptionError(`Expected \`pool.size\` of ${where} to be an integer from 1 to ${MAX_POOL_SIZE}, got ${describe(o.size)}`);
  }
  const maxIdleMs = o.maxIdleMs ?? DEFAULT_POOL_MAX_IDLE_MS;
  if (!Number.isSafeInteger(maxIdleMs) || maxIdleMs < 1) throw new InvalidOptionError(`Expected \`pool.maxIdleMs\` of ${where} to be a positive integer, got ${describe(o.maxIdleMs)}`);
  return { size: o.size, maxIdleMs };
}
