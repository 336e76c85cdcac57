// The control protocol's messages as plain TS types, and their validated Thrift encoding.
//
// Thrift's generated read() accepts anything that decodes: missing required fields, unions
// with no or several members. Every message is therefore checked after decoding, and the
// rest of the code only ever sees these types.
import { createRequire } from 'node:module';
import type * as Gen from './gen/zygote_types.cjs';
import { decodeFrame, encodeFrame } from './framing.js';
import { ProtocolError } from './errors.js';
import { ZYGOTE_LIMIT_KEYS, type GrantedLimits, type ZygoteLimitKey } from './limits.js';
import { CAPACITY_CAPS, REFUSAL_REASONS, type CapacityCap, type RefusalReason } from './admission.js';

// Loaded with require: Node's ESM view of CommonJS misses exports the generator assigns
// through an alias (ttypes.PROTOCOL_VERSION = ...).
const gen = createRequire(import.meta.url)('./gen/zygote_types.cjs') as typeof Gen;

export const PROTOCOL_VERSION: number = gen.PROTOCOL_VERSION;

/**
 * Largest control frame payload either side sends or accepts. A SEQPACKET packet must fit in
 * the sender's socket buffer, which an unprivileged process cannot raise past
 * net.core.wmem_max (212,992 bytes by default): 128 KiB fits with room to spare.
 */
export const MAX_CONTROL_FRAME_BYTES = 128 * 1024;

/** fds that ride on a Spawned frame, in this order; then the output filesystem's, when the spawn asked for one. */
export const SPAWNED_FDS = ['stdin', 'stdout', 'stderr', 'pidfd'] as const;

/** A spawn's sandbox request on the wire (checked by the zygote, see zygote/sandbox/policy.ts). */
export interface WireSandboxRequest {
  nofile?: number;
  fsize?: number;
  skip: string[];
  injectStep?: string;
  injectErrno?: string;
  mounts?: WireMount[];
  /** Present: the child gets a network, with these allow entries of its own. */
  network?: WireNetwork;
  /** Present: the child gets an output filesystem at this target. */
  output?: WireOutput;
}

/** A spawn's output filesystem (see protocol/zygote.thrift, OutputRequest). */
export interface WireOutput {
  target: string;
}

/** A spawn's network request (see protocol/zygote.thrift, NetworkRequest). */
export interface WireNetwork {
  allow: string[];
}

/** Most allow entries one spawn may carry (each becomes an nftables set element). */
export const MAX_NETWORK_ALLOW = 256;

/** A host path shown to one child. */
export interface WireMount {
  source: string;
  target: string;
  writable: boolean;
}

/**
 * Limits the zygote enforces for one child (see protocol/zygote.thrift, Limits): absent, the
 * zygote's default; NO_LIMIT (0) in the first four, no limit.
 */
export interface WireLimits {
  wallTimeMs?: number;
  cpuTimeMs?: number;
  memoryBytes?: number;
  pids?: number;
  tmpBytes?: number;
  outputBytes?: number;
  outputFiles?: number;
}

/** On the wire, "no limit" for a nullable limit (a real limit is never 0). */
export const NO_LIMIT = 0;

/** A limit a spawn asked for above its zygote's cap; requested null: it asked for no limit. */
export interface AboveCap {
  field: ZygoteLimitKey;
  requested: number | null;
  cap: number;
}

/** The cap a spawn found full, and its value (see protocol/zygote.thrift, Capacity). */
export interface Capacity {
  cap: CapacityCap;
  limit: number;
}

/** The limit the zygote ended a child for. */
export type ZygoteLimit = 'timeout' | 'cpu-limit' | 'oom' | 'pids-limit' | 'shutdown';
const ZYGOTE_LIMITS: readonly string[] = ['timeout', 'cpu-limit', 'oom', 'pids-limit', 'shutdown'];

export type ClientMessage =
  | { kind: 'spawn'; id: number; argsJson: string; name: string; sandbox: WireSandboxRequest; limits: WireLimits }
  | { kind: 'kill'; id: number; signal: number }
  | { kind: 'stats'; id: number }
  | { kind: 'health'; id: number };

/** Whether a zygote can serve (zygote.health(), `zygote health`). */
export interface ZygoteHealth {
  healthy: boolean;
  /** One line per failed check; empty when healthy. */
  problems: string[];
  /** The checks that ran. */
  checks: string[];
}

/** How busy a zygote is (zygote.stats()); counts since it started. */
export interface ZygoteStats {
  /** Children running (forked or claimed) whose exit was not reported yet, of every client. */
  busy: number;
  /** Spawns waiting in the queue for room. */
  queued: number;
  /** Pool children waiting for a claim, and the pool's size (both 0 without a pool). */
  poolIdle: number;
  poolSize: number;
  /** Spawns served by a pool child, and spawns that forked fresh. */
  claimed: number;
  forked: number;
  /** Pool children that died or were retired before a claim. */
  retired: number;
}

export type ServerMessage =
  | { kind: 'hello'; protocolVersion: number; zygotePid: number; nodeVersion: string }
  | { kind: 'startupFailed'; message: string }
  | { kind: 'spawned'; id: number; pid: number; limits?: GrantedLimits }
  | { kind: 'spawnFailed'; id: number; step: string; errnoName: string; message: string; sandbox: boolean; aboveCap?: AboveCap; capacity?: Capacity }
  | { kind: 'queued'; id: number; timeoutMs: number }
  | { kind: 'refused'; reason: RefusalReason; message: string; limit?: number }
  | {
      kind: 'exited';
      id: number;
      pid: number;
      code: number | null;
      signal: number | null;
      wallMs: number;
      cpuMs: number;
      maxRssBytes: number;
      memoryPeakBytes: number | null;
      limit: ZygoteLimit | null;
    }
  | ({ kind: 'stats'; id: number } & ZygoteStats)
  | ({ kind: 'health'; id: number } & ZygoteHealth)
  | { kind: 'fault'; message: string };

export function encodeClientMessage(m: ClientMessage): Buffer {
  const msg =
    m.kind === 'spawn'
      ? new gen.ClientMessage({
          spawn: new gen.SpawnRequest({
            id: m.id,
            argsJson: m.argsJson,
            name: m.name,
            sandbox: new gen.SandboxRequest({
              ...m.sandbox,
              mounts: m.sandbox.mounts?.map((x) => new gen.Mount(x)),
              network: m.sandbox.network ? new gen.NetworkRequest({ allow: m.sandbox.network.allow }) : undefined,
              output: m.sandbox.output ? new gen.OutputRequest({ target: m.sandbox.output.target }) : undefined,
            } as never),
            limits: new gen.Limits(m.limits as never),
          }),
        })
      : m.kind === 'kill'
        ? new gen.ClientMessage({ kill: new gen.KillRequest({ id: m.id, signal: m.signal }) })
        : m.kind === 'stats'
          ? new gen.ClientMessage({ stats: new gen.StatsRequest({ id: m.id }) })
          : new gen.ClientMessage({ health: new gen.HealthRequest({ id: m.id }) });
  return encodeFrame(msg, MAX_CONTROL_FRAME_BYTES);
}

export function decodeClientMessage(frame: Buffer): ClientMessage {
  const msg = decodeFrame(frame, gen.ClientMessage, 'ClientMessage', MAX_CONTROL_FRAME_BYTES);
  const which = onlyMember(msg, ['spawn', 'kill', 'stats', 'health'], 'ClientMessage');
  if (which === 'stats') return { kind: 'stats', id: int32(msg.stats!.id, 'StatsRequest.id') };
  if (which === 'health') return { kind: 'health', id: int32(msg.health!.id, 'HealthRequest.id') };
  if (which === 'spawn') {
    const s = msg.spawn!;
    return {
      kind: 'spawn',
      id: int32(s.id, 'SpawnRequest.id'),
      argsJson: str(s.argsJson, 'SpawnRequest.argsJson'),
      name: s.name == null ? '' : str(s.name, 'SpawnRequest.name'),
      sandbox: sandboxRequest(s.sandbox),
      limits: limits(s.limits),
    };
  }
  const k = msg.kill!;
  return { kind: 'kill', id: int32(k.id, 'KillRequest.id'), signal: int32(k.signal, 'KillRequest.signal') };
}

export function encodeServerMessage(m: ServerMessage): Buffer {
  let msg: Gen.ServerMessage;
  switch (m.kind) {
    case 'hello':
      msg = new gen.ServerMessage({ hello: new gen.Hello(m) });
      break;
    case 'startupFailed':
      msg = new gen.ServerMessage({ startupFailed: new gen.StartupFailed(m) });
      break;
    case 'spawned': {
      const { limits, ...rest } = m;
      const granted = limits && Object.fromEntries(Object.entries(limits).map(([k, v]) => [k, v ?? NO_LIMIT]));
      msg = new gen.ServerMessage({ spawned: new gen.Spawned({ ...rest, ...(granted ? { limits: new gen.GrantedLimits(granted as never) } : {}) }) });
      break;
    }
    case 'spawnFailed': {
      const { aboveCap, capacity, ...rest } = m;
      const cap = aboveCap ? new gen.LimitAboveCap({ field: aboveCap.field, cap: aboveCap.cap, ...(aboveCap.requested === null ? {} : { requested: aboveCap.requested }) } as never) : undefined;
      const room = capacity ? new gen.Capacity(capacity as never) : undefined;
      msg = new gen.ServerMessage({ spawnFailed: new gen.SpawnFailed({ ...rest, ...(cap ? { aboveCap: cap } : {}), ...(room ? { capacity: room } : {}) }) });
      break;
    }
    case 'queued':
      msg = new gen.ServerMessage({ queued: new gen.Queued({ id: m.id, timeoutMs: m.timeoutMs } as never) });
      break;
    case 'refused': {
      const { kind: _kind, ...rest } = m;
      msg = new gen.ServerMessage({ refused: new gen.Refused(rest as never) });
      break;
    }
    case 'exited': {
      const { code, signal, limit, memoryPeakBytes, ...rest } = m;
      const args = { ...rest, ...(code === null ? {} : { code }), ...(signal === null ? {} : { signal }), ...(limit === null ? {} : { limit }), ...(memoryPeakBytes === null ? {} : { memoryPeakBytes }) };
      msg = new gen.ServerMessage({ exited: new gen.Exited(args) });
      break;
    }
    case 'stats': {
      const { kind: _kind, ...rest } = m;
      msg = new gen.ServerMessage({ stats: new gen.Stats(rest as never) });
      break;
    }
    case 'health': {
      const { kind: _kind, ...rest } = m;
      msg = new gen.ServerMessage({ health: new gen.Health(rest) });
      break;
    }
    case 'fault':
      msg = new gen.ServerMessage({ fault: new gen.Fault(m) });
      break;
  }
  return encodeFrame(msg, MAX_CONTROL_FRAME_BYTES);
}

export function decodeServerMessage(frame: Buffer): ServerMessage {
  const msg = decodeFrame(frame, gen.ServerMessage, 'ServerMessage', MAX_CONTROL_FRAME_BYTES);
  const which = onlyMember(msg, ['hello', 'startupFailed', 'spawned', 'spawnFailed', 'exited', 'fault', 'refused', 'queued', 'stats', 'health'], 'ServerMessage');
  switch (which) {
    case 'hello': {
      const h = msg.hello!;
      return {
        kind: 'hello',
        protocolVersion: int32(h.protocolVersion, 'Hello.protocolVersion'),
        zygotePid: int32(h.zygotePid, 'Hello.zygotePid'),
        nodeVersion: str(h.nodeVersion, 'Hello.nodeVersion'),
      };
    }
    case 'startupFailed':
      return { kind: 'startupFailed', message: str(msg.startupFailed!.message, 'StartupFailed.message') };
    case 'spawned': {
      const s = msg.spawned!;
      return { kind: 'spawned', id: int32(s.id, 'Spawned.id'), pid: int32(s.pid, 'Spawned.pid'), ...(s.limits == null ? {} : { limits: grantedLimits(s.limits) }) };
    }
    case 'spawnFailed': {
      const f = msg.spawnFailed!;
      return {
        kind: 'spawnFailed',
        id: int32(f.id, 'SpawnFailed.id'),
        step: str(f.step, 'SpawnFailed.step'),
        errnoName: str(f.errnoName, 'SpawnFailed.errnoName'),
        message: str(f.message, 'SpawnFailed.message'),
        sandbox: f.sandbox === true,
        ...(f.aboveCap == null ? {} : { aboveCap: aboveCap(f.aboveCap) }),
        ...(f.capacity == null ? {} : { capacity: capacity(f.capacity) }),
      };
    }
    case 'queued': {
      const q = msg.queued!;
      const timeoutMs = int64(q.timeoutMs, 'Queued.timeoutMs');
      if (timeoutMs <= 0) throw new ProtocolError('invalid', 'Queued.timeoutMs must be positive');
      return { kind: 'queued', id: int32(q.id, 'Queued.id'), timeoutMs };
    }
    case 'refused': {
      const r = msg.refused!;
      const reason = str(r.reason, 'Refused.reason');
      if (!(REFUSAL_REASONS as readonly string[]).includes(reason)) throw new ProtocolError('invalid', `Refused.reason must be one of ${REFUSAL_REASONS.join(', ')}`);
      return { kind: 'refused', reason: reason as RefusalReason, message: str(r.message, 'Refused.message'), ...(r.limit == null ? {} : { limit: int64(r.limit, 'Refused.limit') }) };
    }
    case 'exited': {
      const e = msg.exited!;
      return {
        kind: 'exited',
        id: int32(e.id, 'Exited.id'),
        pid: int32(e.pid, 'Exited.pid'),
        code: e.code == null ? null : int32(e.code, 'Exited.code'),
        signal: e.signal == null ? null : int32(e.signal, 'Exited.signal'),
        wallMs: num(e.wallMs, 'Exited.wallMs'),
        cpuMs: num(e.cpuMs, 'Exited.cpuMs'),
        maxRssBytes: num(e.maxRssBytes, 'Exited.maxRssBytes'),
        memoryPeakBytes: e.memoryPeakBytes == null ? null : num(e.memoryPeakBytes, 'Exited.memoryPeakBytes'),
        limit: e.limit == null ? null : zygoteLimit(e.limit),
      };
    }
    case 'stats': {
      const t = msg.stats!;
      const count = (v: unknown, field: string) => {
        const n = int64(v, `Stats.${field}`);
        if (n < 0) throw new ProtocolError('invalid', `Stats.${field} must not be negative`);
        return n;
      };
      return {
        kind: 'stats',
        id: int32(t.id, 'Stats.id'),
        busy: count(t.busy, 'busy'),
        queued: count(t.queued, 'queued'),
        poolIdle: count(t.poolIdle, 'poolIdle'),
        poolSize: count(t.poolSize, 'poolSize'),
        claimed: count(t.claimed, 'claimed'),
        forked: count(t.forked, 'forked'),
        retired: count(t.retired, 'retired'),
      };
    }
    case 'health': {
      const h = msg.health!;
      const lines = (v: unknown, field: string): string[] => {
        if (!Array.isArray(v)) throw new ProtocolError('invalid', `Health.${field} must be a list of strings`);
        return v.map((x, i) => str(x, `Health.${field}[${i}]`));
      };
      if (typeof h.healthy !== 'boolean') throw new ProtocolError('invalid', 'Health.healthy must be a boolean');
      return { kind: 'health', id: int32(h.id, 'Health.id'), healthy: h.healthy, problems: lines(h.problems, 'problems'), checks: lines(h.checks, 'checks') };
    }
    case 'fault':
      return { kind: 'fault', message: str(msg.fault!.message, 'Fault.message') };
  }
}

function limits(l: Gen.Limits | null | undefined): WireLimits {
  const out: WireLimits = {};
  if (l == null) return out;
  if (l.wallTimeMs != null) out.wallTimeMs = int64(l.wallTimeMs, 'Limits.wallTimeMs');
  if (l.cpuTimeMs != null) out.cpuTimeMs = int64(l.cpuTimeMs, 'Limits.cpuTimeMs');
  if (l.memoryBytes != null) out.memoryBytes = int64(l.memoryBytes, 'Limits.memoryBytes');
  if (l.pids != null) out.pids = int32(l.pids, 'Limits.pids');
  if (l.tmpBytes != null) out.tmpBytes = int64(l.tmpBytes, 'Limits.tmpBytes');
  if (l.outputBytes != null) out.outputBytes = int64(l.outputBytes, 'Limits.outputBytes');
  if (l.outputFiles != null) out.outputFiles = int64(l.outputFiles, 'Limits.outputFiles');
  return out;
}

function grantedLimits(g: Gen.GrantedLimits): GrantedLimits {
  const count = (v: unknown, field: string) => {
    const n = int64(v, `GrantedLimits.${field}`);
    if (n < 0) throw new ProtocolError('invalid', `GrantedLimits.${field} must not be negative`);
    return n;
  };
  const nullable = (v: unknown, field: string) => {
    const n = count(v, field);
    return n === NO_LIMIT ? null : n;
  };
  return {
    wallTimeMs: nullable(g.wallTimeMs, 'wallTimeMs'),
    cpuTimeMs: nullable(g.cpuTimeMs, 'cpuTimeMs'),
    memoryBytes: nullable(g.memoryBytes, 'memoryBytes'),
    pids: nullable(g.pids, 'pids'),
    tmpBytes: count(g.tmpBytes, 'tmpBytes'),
    fileBytes: count(g.fileBytes, 'fileBytes'),
    nofile: count(g.nofile, 'nofile'),
    outputBytes: count(g.outputBytes, 'outputBytes'),
    outputFiles: count(g.outputFiles, 'outputFiles'),
  };
}

function aboveCap(a: Gen.LimitAboveCap): AboveCap {
  const field = str(a.field, 'LimitAboveCap.field');
  if (!(ZYGOTE_LIMIT_KEYS as readonly string[]).includes(field)) throw new ProtocolError('invalid', `LimitAboveCap.field must be one of ${ZYGOTE_LIMIT_KEYS.join(', ')}`);
  return { field: field as ZygoteLimitKey, requested: a.requested == null ? null : int64(a.requested, 'LimitAboveCap.requested'), cap: int64(a.cap, 'LimitAboveCap.cap') };
}

function capacity(c: Gen.Capacity): Capacity {
  const cap = str(c.cap, 'Capacity.cap');
  if (!(CAPACITY_CAPS as readonly string[]).includes(cap)) throw new ProtocolError('invalid', `Capacity.cap must be one of ${CAPACITY_CAPS.join(', ')}`);
  return { cap: cap as CapacityCap, limit: int64(c.limit, 'Capacity.limit') };
}

function zygoteLimit(v: unknown): ZygoteLimit {
  if (typeof v !== 'string' || !ZYGOTE_LIMITS.includes(v)) throw new ProtocolError('invalid', `Exited.limit must be one of ${ZYGOTE_LIMITS.join(', ')}`);
  return v as ZygoteLimit;
}

function sandboxRequest(r: Gen.SandboxRequest | null | undefined): WireSandboxRequest {
  if (r == null) return { skip: [] };
  const out: WireSandboxRequest = { skip: [] };
  if (r.nofile != null) out.nofile = int64(r.nofile, 'SandboxRequest.nofile');
  if (r.fsize != null) out.fsize = int64(r.fsize, 'SandboxRequest.fsize');
  if (r.skip != null) {
    if (!Array.isArray(r.skip) || !r.skip.every((x) => typeof x === 'string')) throw new ProtocolError('invalid', 'SandboxRequest.skip must be a list of strings');
    out.skip = r.skip;
  }
  if (r.injectStep != null) out.injectStep = str(r.injectStep, 'SandboxRequest.injectStep');
  if (r.injectErrno != null) out.injectErrno = str(r.injectErrno, 'SandboxRequest.injectErrno');
  if (r.mounts != null) {
    if (!Array.isArray(r.mounts)) throw new ProtocolError('invalid', 'SandboxRequest.mounts must be a list');
    out.mounts = r.mounts.map((m, i) => ({
      source: str(m?.source, `SandboxRequest.mounts[${i}].source`),
      target: str(m?.target, `SandboxRequest.mounts[${i}].target`),
      writable: m?.writable === true,
    }));
  }
  if (r.network != null) {
    const allow = r.network.allow ?? [];
    if (!Array.isArray(allow) || !allow.every((x) => typeof x === 'string')) throw new ProtocolError('invalid', 'SandboxRequest.network.allow must be a list of strings');
    if (allow.length > MAX_NETWORK_ALLOW) throw new ProtocolError('invalid', `SandboxRequest.network.allow has ${allow.length} entries, more than ${MAX_NETWORK_ALLOW}`);
    out.network = { allow };
  }
  if (r.output != null) out.output = { target: str(r.output.target, 'SandboxRequest.output.target') };
  return out;
}

/** Thrift's JS i64 is a node-int64 on read and a number on write; either way a safe integer here. */
function int64(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : typeof (v as { toNumber?: unknown })?.toNumber === 'function' ? (v as { toNumber(allowImprecise?: boolean): number }).toNumber(false) : NaN;
  if (!Number.isSafeInteger(n)) throw new ProtocolError('invalid', `${field} must be a safe integer`);
  return n;
}

function onlyMember<K extends string>(msg: object, members: readonly K[], what: string): K {
  const set = members.filter((k) => (msg as Record<string, unknown>)[k] != null);
  if (set.length !== 1) {
    throw new ProtocolError('invalid', `${what} must have exactly one member set, found ${set.length === 0 ? 'none' : set.join(', ')}`);
  }
  return set[0];
}

function int32(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ProtocolError('invalid', `${field} is required and must be an i32`);
  return v;
}

function num(v: unknown, field: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new ProtocolError('invalid', `${field} is required and must be a number`);
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new ProtocolError('invalid', `${field} is required and must be a string`);
  return v;
}
