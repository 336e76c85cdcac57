// How much of a zygote one client may take: connections per uid, live children (in all and per
// uid), and the bounded queue a spawn waits in while the zygote is full. The defaults and their
// checks, shared by `zygote serve`, startZygote() and the zygote's config (README, Security).
import { InvalidOptionError } from './errors.js';
import { describe } from './options.js';

/** The caps a spawn can be refused for, for lack of room (SpawnFailed.capacity, ZygoteBusyError.cap). */
export const CAPACITY_CAPS = ['children', 'children-per-uid', 'queue-full', 'queue-timeout'] as const;
export type CapacityCap = (typeof CAPACITY_CAPS)[number];

/** Why a connection was refused before its greeting (Refused.reason, ZygoteRefusedError.reason). */
export const REFUSAL_REASONS = ['not-allowed', 'connections-per-uid', 'fds'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The zygote's admission policy, every field resolved (ZygoteConfig.admission). */
export interface AdmissionPolicy {
  /** Connections one uid may hold at once. */
  maxConnectionsPerUid: number;
  /** Live children of the whole zygote (reaped ones no longer count). */
  maxChildren: number;
  /** Live children, and spawns waiting in the queue, of one client uid. */
  maxChildrenPerUid: number;
  /** Spawns that may wait for a free slot; 0: a spawn that finds the zygote full is refused at once. */
  maxQueue: number;
  /** Of those, how many one uid may hold. */
  maxQueuePerUid: number;
  /** How long a spawn may wait in the queue before it is refused. */
  queueTimeoutMs: number;
}

/** What an operator or embedder may set; the rest is derived (resolveAdmission). */
export type AdmissionOptions = Partial<Pick<AdmissionPolicy, 'maxConnectionsPerUid' | 'maxChildren' | 'maxChildrenPerUid' | 'maxQueue' | 'queueTimeoutMs'>>;

/**
 * Defaults: 64 connections per uid (each costs the zygote an fd or two); 256 live children (each
 * is a process and a cgroup; with a uid range, at most its count: a child holds its uid until it
 * is reaped); a queue of 64 spawns (each holds its request and its mount fds), waiting 30 s at most.
 */
export const DEFAULT_ADMISSION = Object.freeze({ maxConnectionsPerUid: 64, maxChildren: 256, maxQueue: 64, queueTimeoutMs: 30_000 });

/** The longest queue wait accepted: a spawn waiting longer is a client that should retry. */
export const MAX_QUEUE_TIMEOUT_MS = 3_600_000;

/** The caps' names in messages: options (startZygote) or flags (`zygote serve`). */
export type AdmissionNames = Record<keyof AdmissionOptions, string>;

export const OPTION_NAMES: AdmissionNames = {
  maxConnectionsPerUid: '`maxConnectionsPerUid`',
  maxChildren: '`maxChildren`',
  maxChildrenPerUid: '`maxChildrenPerUid`',
  maxQueue: '`maxQueue`',
  queueTimeoutMs: '`queueTimeoutMs`',
};

/**
 * The policy from what was asked. uids: how many client uids may connect (1 for an embedded
 * zygote); uidRangeCount: the sandbox's uid range, if any. Derived, unless given:
 * - maxChildren: DEFAULT_ADMISSION's, or the uid range's count if that is smaller;
 * - maxChildrenPerUid: maxChildren minus one slot for each other uid (at least 1), so one uid
 *   can never take the last slots (or uids of the range) while another has none;
 * - maxQueuePerUid: maxQueue divided among the uids (at least 1): each uid's share stays free
 *   for it, whatever the others queue.
 * Throws InvalidOptionError naming the option (by names) for a bad value or an impossible mix.
 */
export function resolveAdmission(asked: AdmissionOptions, ctx: { uids: number; uidRangeCount: number | null }, names: AdmissionNames = OPTION_NAMES): AdmissionPolicy {
  const int = (k: keyof AdmissionOptions, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
    const v = asked[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidOptionError(`Expected ${names[k]} to be an integer from ${min} to ${max}, got ${describe(v)}`);
    }
    return v;
  };
  const range = ctx.uidRangeCount;
  const maxConnectionsPerUid = int('maxConnectionsPerUid', 1) ?? DEFAULT_ADMISSION.maxConnectionsPerUid;
  const askedChildren = int('maxChildren', 1);
  if (askedChildren !== undefined && range !== null && askedChildren > range) {
    throw new InvalidOptionError(`Expected ${names.maxChildren} (${askedChildren}) to be at most the uid range's count (${range}): each live child holds a uid of the range until it is reaped`);
  }
  const maxChildren = askedChildren ?? Math.min(DEFAULT_ADMISSION.maxChildren, range ?? Infinity);
  const others = Math.max(0, ctx.uids - 1);
  const askedPerUid = int('maxChildrenPerUid', 1);
  if (askedPerUid !== undefined && askedPerUid > maxChildren) {
    throw new InvalidOptionError(`Expected ${names.maxChildrenPerUid} (${askedPerUid}) to be at most ${names.maxChildren} (${maxChildren})`);
  }
  const maxChildrenPerUid = askedPerUid ?? Math.max(1, maxChildren - others);
  const maxQueue = int('maxQueue', 0) ?? DEFAULT_ADMISSION.maxQueue;
  const queueTimeoutMs = int('queueTimeoutMs', 1, MAX_QUEUE_TIMEOUT_MS) ?? DEFAULT_ADMISSION.queueTimeoutMs;
  return { maxConnectionsPerUid, maxChildren, maxChildrenPerUid, maxQueue, maxQueuePerUid: queueShare(maxQueue, ctx.uids), queueTimeoutMs };
}

function queueShare(maxQueue: number, uids: number): number {
  return maxQueue === 0 ? 0 : Math.max(1, Math.floor(maxQueue / Math.max(1, uids)));
}

/** Checks a resolved policy as it arrives in a config; throws naming the first bad field. */
export function checkAdmissionPolicy(p: unknown): AdmissionPolicy {
  const a = p as Partial<AdmissionPolicy> | null;
  if (a === null || typeof a !== 'object') throw new Error('must be an object');
  const int = (k: keyof AdmissionPolicy, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = a[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new Error(`\`${k}\` must be an integer from ${min} to ${max}`);
    return v;
  };
  const out: AdmissionPolicy = {
    maxConnectionsPerUid: int('maxConnectionsPerUid', 1),
    maxChildren: int('maxChildren', 1),
    maxChildrenPerUid: int('maxChildrenPerUid', 1),
    maxQueue: int('maxQueue', 0),
    maxQueuePerUid: int('maxQueuePerUid', 0),
    queueTimeoutMs: int('queueTimeoutMs', 1, MAX_QUEUE_TIMEOUT_MS),
  };
  if (out.maxChildrenPerUid > out.maxChildren) throw new Error('`maxChildrenPerUid` must be at most `maxChildren`');
  if (out.maxQueuePerUid > out.maxQueue || (out.maxQueue > 0 && out.maxQueuePerUid === 0)) throw new Error('`maxQueuePerUid` must be from 1 to `maxQueue`');
  const extra = Object.keys(a).filter((k) => !(k in out));
  if (extra.length > 0) throw new Error(`unknown field \`${extra[0]}\``);
  return out;
}
