// A handle on a zygote: spawn children, track them, close. Shared by embedded and connected zygotes.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { ServerMessage, WireLimits } from '../protocol/control.js';
import { NO_LIMIT, SPAWNED_FDS } from '../protocol/control.js';
import { DEFAULT_LIMITS, type GrantedLimits } from '../protocol/limits.js';
import { native } from '../native/index.js';
import { ZygoteChild, type OutputCaps } from './child.js';
import { ChildOutput } from './child-output.js';
import type { ControlConnection, Hello } from './connection.js';
import { ZygoteError, AbortError, LimitCapError, ProtocolError, SandboxError, SpawnError, SpawnPolicyError, ZygoteBusyError, ZygoteClosedError, ZygoteGoneError, ZygoteRefusedError } from './errors.js';
import { normalizeSpawnOptions, type SpawnOptions } from './options.js';
import type { Limits, Mount } from '../protocol/spawn.js';
import { isAbsolute } from 'node:path';
import { InvalidOptionError } from '../protocol/errors.js';
import type { ZygoteHealth, ZygoteStats } from '../protocol/control.js';

interface PendingSpawn {
  name: string;
  output: OutputCaps;
  /** The sources of its mounts, as named, for messages. */
  mountSources: string[];
  /** It asked for an output filesystem: its fd rides on `spawned` after the four others. */
  wantsOutput: boolean;
  signal?: AbortSignal;
  resolve(child: ZygoteChild): void;
  reject(err: Error): void;
  /** The zygote queued it: its answer may take up to waitMs more than a spawn's own timeout. */
  queued(waitMs: number): void;
}

/** How long close() waits for killed children to be reported before giving up on them. */
const CLOSE_TIMEOUT_MS = 5_000;
/** How long a hang-up waits for the zygote this handle started to be reaped, to report its exit. */
const GONE_EXIT_WAIT_MS = 2_000;

/** What a Zygote handle emits. */
export interface ZygoteEvents {
  /** The zygote went away under the open handle (it died, was stopped, or hung up). */
  gone: [err: ZygoteGoneError];
}

/**
 * A handle on a zygote, from startZygote() or connect(). An EventEmitter: 'gone' when the
 * zygote goes away under it (never after close()); with no listener it is only a rejection of
 * whatever was in flight, not an uncaught error.
 */
export class Zygote extends EventEmitter<ZygoteEvents> {
  /** The zygote's pid. */
  readonly pid: number;
  private nextId = 1;
  private readonly pending = new Map<number, PendingSpawn>();
  private readonly live = new Map<number, ZygoteChild>();
  /** stats() calls waiting for their answer, by request id. */
  /** stats() and health() questions waiting for their answer, by id. */
  private readonly asked = new Map<number, { kind: 'stats' | 'health'; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** Output filesystems handed out and not closed yet: close() closes them. */
  private readonly outputs = new Set<ChildOutput>();
  private closedBy: ZygoteClosedError | null = null;
  private closing: Promise<void> | null = null;

  /** @internal Use startZygote() or connect(). */
  constructor(
    private readonly conn: ControlConnection,
    hello: Hello,
    private readonly spawnTimeoutMs: number,
    /** The zygote process, when this handle started it. */
    private readonly process: ChildProcess | null,
    /** Limits every child of this handle gets unless its spawn says otherwise (over the zygote's defaults). */
    private readonly defaultLimits: Limits = {},
  ) {
    super();
    this.pid = hello.zygotePid;
    conn.attach({ message: (m, fds) => this.onMessage(m, fds), end: (err, byPeer) => void this.onEnd(err, byPeer) });
    this.updateRef();
  }

  /** Whether the handle can no longer spawn (closed, or the zygote is gone). */
  get closed(): boolean {
    return this.closedBy !== null;
  }

  /**
   * How busy the zygote is: children running, spawns queued, its pool (idle and size), and
   * since it started, spawns served from the pool and spawns that forked fresh. Rejects with
   * ZygoteClosedError once the handle is closed, or a ZygoteError after spawnTimeoutMs.
   */
  stats(): Promise<ZygoteStats> {
    return this.ask<ZygoteStats>('stats');
  }

  /**
   * Whether the zygote can serve: it forks a throwaway child, checks its cgroups and (with
   * networks) its nftables table, and says what is wrong. Rejects like stats().
   */
  health(): Promise<ZygoteHealth> {
    return this.ask<ZygoteHealth>('health');
  }

  /** A question to the zygote, answered by a message of the same kind and id. */
  private ask<T>(kind: 'stats' | 'health'): Promise<T> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.asked.delete(id)) reject(new ZygoteError(`zygote ${this.pid} did not answer ${kind}() within ${this.spawnTimeoutMs} ms`));
        this.updateRef();
      }, this.spawnTimeoutMs);
      const settle = () => {
        clearTimeout(timer);
        this.asked.delete(id);
        this.updateRef();
      };
      this.asked.set(id, { kind, resolve: (v) => (settle(), resolve(v as T)), reject: (e) => (settle(), reject(e)) });
      this.updateRef();
      try {
        this.conn.send({ kind, id });
      } catch (err) {
        this.asked.get(id)?.reject(err as Error);
      }
    });
  }

  /** Forks a child from the zygote; resolves once it is set up and running main. */
  spawn(options: SpawnOptions = {}): Promise<ZygoteChild> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    let opts: ReturnType<typeof normalizeSpawnOptions>;
    try {
      opts = normalizeSpawnOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal));
    const limits: Limits = { ...this.defaultLimits, ...opts.limits };
    let sourceFds: number[];
    try {
      sourceFds = openSources(opts.mounts, opts.name);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.nextId++;
    return new Promise<ZygoteChild>((resolve, reject) => {
      const expire = (ms: number) =>
        setTimeout(() => {
          if (!this.pending.delete(id)) return;
          this.updateRef();
          reject(new SpawnError(`spawn ${opts.name || id} got no answer from zygote ${this.pid} within ${ms} ms`, 'timeout', 'ETIMEDOUT'));
        }, ms);
      let timer = expire(this.spawnTimeoutMs);
      const done = () => clearTimeout(timer);
      this.pending.set(id, {
        name: opts.name,
        output: outputCaps(limits),
        mountSources: opts.mounts.map((m) => m.source),
        wantsOutput: opts.output !== null,
        signal: opts.signal,
        resolve: (c) => (done(), resolve(c)),
        reject: (e) => (done(), reject(e)),
        // The zygote answers within its queue timeout (a slot, or a refusal), then as usual.
        queued: (waitMs) => {
          done();
          timer = expire(waitMs + this.spawnTimeoutMs);
        },
      });
      this.updateRef();
      try {
        const sb = opts.sandbox;
        this.conn.send({
          kind: 'spawn',
          id,
          argsJson: opts.argsJson,
          name: opts.name,
          sandbox: {
            ...(sb.rlimits?.nofile !== undefined ? { nofile: sb.rlimits.nofile } : {}),
            ...(limits.fileBytes !== undefined ? { fsize: limits.fileBytes } : sb.rlimits?.fsize !== undefined ? { fsize: sb.rlimits.fsize } : {}),
            skip: [...(sb.dangerouslySkip ?? [])],
            ...(opts.mounts.length > 0 ? { mounts: opts.mounts.map((m) => ({ source: m.source, target: m.target, writable: m.writable === true })) } : {}),
            ...(opts.network ? { network: { allow: opts.network.allow } } : {}),
            ...(opts.output ? { output: { target: opts.output.target } } : {}),
            ...(sb.dangerouslyInjectFailure ? { injectStep: sb.dangerouslyInjectFailure.step, injectErrno: sb.dangerouslyInjectFailure.errno } : {}),
          },
          limits: wireLimits(limits, sb.tmpBytes),
        }, sourceFds);
      } catch (err) {
        this.pending.delete(id);
        this.updateRef();
        done();
        if (err instanceof ProtocolError) {
          // Nothing was sent: the request itself is too big. The connection is fine.
          reject(new InvalidOptionError(`spawn ${opts.name || id}: ${err.message} (the \`args\` are too large; pass big data through stdin or files)`, { cause: err }));
        } else if (err instanceof ZygoteClosedError) {
          reject(err);
        } else {
          // The socket failed under us: the connection is unusable from here on.
          const closed = new ZygoteClosedError(`cannot send to zygote ${this.pid}: ${(err as Error).message}`, { cause: err });
          this.conn.close(closed);
          reject(closed);
        }
      } finally {
        // Sent (or queued as copies), or never to be: ours go either way.
        closeAll(sourceFds);
      }
    });
  }

  /**
   * Kills and reaps this handle's children, closes their output filesystems still open
   * (child.output), then disconnects; an embedded zygote exits too. Pending spawns reject with
   * ZygoteClosedError. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const closedErr = new ZygoteClosedError('the zygote handle was closed');
    if (!this.closedBy) this.closedBy = closedErr;
    this.failPending(this.closedBy);
    for (const child of this.live.values()) child.kill('SIGKILL');
    // Wait (bounded) for the zygote to report the killed children, so none outlives close().
    const reported = Promise.allSettled([...this.live.values()].map((c) => c.exited));
    await withTimeout(reported, CLOSE_TIMEOUT_MS);
    for (const child of this.live.values()) {
      child._destroyStreams();
      child._orphaned(closedErr);
    }
    this.live.clear();
    for (const o of [...this.outputs]) o.close();
    this.conn.close(closedErr);
    if (this.process) await this.stopProcess();
  }

  /** An embedded zygote exits by itself once its client hangs up; SIGKILL is the backstop. */
  private async stopProcess(): Promise<void> {
    const cp = this.process!;
    if (cp.exitCode !== null || cp.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => cp.once('exit', () => resolve()));
    if (!(await withTimeout(exited, CLOSE_TIMEOUT_MS))) {
      cp.kill('SIGKILL');
      await exited;
    }
  }

  private onMessage(msg: ServerMessage, fds: number[]): void {
    switch (msg.kind) {
      case 'spawned':
        return this.onSpawned(msg.id, msg.pid, msg.limits, fds);
      case 'spawnFailed': {
        closeAll(fds);
        const p = this.takePending(msg.id);
        if (!p) return;
        // A step about one of its mounts names it by index: say which source that was.
        const mount = /^mounts\[(\d+)\]/.exec(msg.step);
        const source = mount && p.mountSources[Number(mount[1])] !== undefined ? ` (mounts[${mount[1]}].source ${p.mountSources[Number(mount[1])]})` : '';
        p.reject(
          msg.aboveCap
            ? new LimitCapError(`spawn ${p.name || msg.id} refused: ${msg.message}`, msg.aboveCap.field, msg.aboveCap.requested, msg.aboveCap.cap)
            : msg.capacity
              ? new ZygoteBusyError(`spawn ${p.name || msg.id} refused by zygote ${this.pid} (${msg.capacity.cap}): ${msg.message}`, msg.capacity.cap, msg.capacity.limit)
            : msg.sandbox
              ? new SandboxError(`${msg.message}${source}`, msg.step, msg.errnoName)
              : msg.step === 'sandbox policy'
                ? new SpawnPolicyError(`spawn ${p.name || msg.id} failed at ${msg.step}: ${msg.message}`, msg.step, msg.errnoName)
                : new SpawnError(`spawn ${p.name || msg.id} failed at ${msg.step}: ${msg.message}`, msg.step, msg.errnoName),
        );
        return;
      }
      case 'exited': {
        closeAll(fds);
        const child = this.live.get(msg.id);
        if (!child) return;
        this.live.delete(msg.id);
        child._exited(msg);
        this.updateRef();
        return;
      }
      case 'queued':
        closeAll(fds);
        this.pending.get(msg.id)?.queued(msg.timeoutMs);
        return;
      case 'stats':
      case 'health': {
        closeAll(fds);
        const { kind, id, ...answer } = msg;
        const q = this.asked.get(id);
        if (q?.kind === kind) q.resolve(answer);
        return;
      }
      case 'fault':
        closeAll(fds);
        this.conn.close(new ZygoteClosedError(`zygote ${this.pid} refused a frame from this client: ${msg.message}`));
        return;
      case 'refused': {
        // Shed after its greeting (the zygote ran short of fds): the handle is done for.
        closeAll(fds);
        const why = new ZygoteRefusedError(`zygote ${this.pid} dropped this connection (${msg.reason}): ${msg.message}`, msg.reason, msg.limit ?? null);
        this.conn.close(new ZygoteClosedError(why.message, { cause: why }));
        return;
      }
      default:
        closeAll(fds);
        this.conn.close(new ZygoteClosedError(`zygote ${this.pid} sent an unexpected ${msg.kind} message`));
    }
  }

  private onSpawned(id: number, pid: number, granted: GrantedLimits | undefined, fds: number[]): void {
    const p = this.takePending(id);
    const expected = p?.wantsOutput ? [...SPAWNED_FDS, 'output'] : SPAWNED_FDS;
    if ((p && fds.length !== expected.length) || fds.length < SPAWNED_FDS.length || !granted) {
      closeAll(fds);
      const err = new ZygoteClosedError(
        granted ? `zygote ${this.pid} sent ${fds.length} fds with spawned (expected ${expected.join(', ')})` : `zygote ${this.pid} sent spawned without the limits it granted`,
      );
      p?.reject(err);
      this.conn.close(err);
      return;
    }
    if (!p) {
      // The spawn timed out or was abandoned: this child has no owner. Kill it now.
      native.pidfdSendSignal(fds[3], 9);
      closeAll(fds);
      return;
    }
    const output = p.wantsOutput ? new ChildOutput(fds[SPAWNED_FDS.length], (o) => this.outputs.delete(o)) : null;
    if (output) this.outputs.add(output);
    const child = new ZygoteChild(id, pid, p.name, fds.slice(0, SPAWNED_FDS.length), { ...granted, ...p.output }, (cid, sig) => {
      // Also while close() runs (closedBy is set by then): that is how it kills a child this
      // process may not signal itself (another uid's). Once the connection is gone, so is the child.
      try {
        this.conn.send({ kind: 'kill', id: cid, signal: sig });
      } catch {
        // Closed: the zygote kills a gone client's children itself.
      }
    }, output);
    this.live.set(id, child);
    this.updateRef();
    if (p.signal) {
      if (p.signal.aborted) {
        child.kill();
        output?.close(); // nobody gets the child, so nobody else could close it
        p.reject(abortError(p.signal));
        return;
      }
      const onAbort = () => child.kill();
      p.signal.addEventListener('abort', onAbort, { once: true });
      child.exited.finally(() => p.signal!.removeEventListener('abort', onAbort)).catch(() => undefined);
    }
    p.resolve(child);
  }

  private async onEnd(err: ZygoteClosedError, byPeer: boolean): Promise<void> {
    if (this.closedBy || !byPeer) {
      const reason = this.closedBy ?? err;
      this.closedBy = reason;
      this.settleEnd(reason);
      return;
    }
    // The zygote's end closed. A zygote this handle started: wait (bounded) for its exit, to say how it ended.
    let exitCode: number | null = null;
    let signal: NodeJS.Signals | null = null;
    const cp = this.process;
    if (cp) {
      if (cp.exitCode === null && cp.signalCode === null) await withTimeout(new Promise<void>((r) => cp.once('exit', () => r())), GONE_EXIT_WAIT_MS);
      exitCode = cp.exitCode;
      signal = cp.signalCode;
    }
    const how = signal ? `it was killed by ${signal}` : exitCode !== null ? `it exited with code ${exitCode}` : 'it died, was stopped, or dropped this connection';
    const gone = new ZygoteGoneError(`zygote ${this.pid} is gone: ${how} (${err.message})`, exitCode, signal, { cause: err.cause });
    // close() may have been called meanwhile: it owns the handle's end then.
    this.closedBy ??= gone;
    this.settleEnd(this.closedBy);
    if (this.closedBy === gone) this.emit('gone', gone);
  }

  private settleEnd(reason: ZygoteClosedError): void {
    this.failPending(reason);
    for (const child of this.live.values()) child._orphaned(reason);
    this.live.clear();
  }

  private failPending(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
    for (const q of [...this.asked.values()]) q.reject(err);
    this.updateRef();
  }

  private takePending(id: number): PendingSpawn | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    this.updateRef();
    return p;
  }

  /** Keeps the event loop alive only while something is in flight, like a net.Socket would. */
  private updateRef(): void {
    const busy = this.pending.size > 0 || this.live.size > 0 || this.asked.size > 0;
    this.conn.setRef(busy);
    if (this.process) {
      if (busy) this.process.ref();
      else this.process.unref();
    }
  }
}

/**
 * The limits the zygote enforces, as sent: a field left out gets the zygote's default, null
 * (no limit) goes as NO_LIMIT. /tmp may also come from spawn({ sandbox: { tmpBytes } }).
 */
function wireLimits(l: Limits, sandboxTmpBytes: number | undefined): WireLimits {
  const out: WireLimits = {};
  for (const k of ['wallTimeMs', 'cpuTimeMs', 'memoryBytes', 'pids'] as const) {
    const v = l[k];
    if (v !== undefined) out[k] = v ?? NO_LIMIT;
  }
  const tmpBytes = l.tmpBytes ?? sandboxTmpBytes;
  if (tmpBytes !== undefined) out.tmpBytes = tmpBytes;
  if (l.outputBytes !== undefined) out.outputBytes = l.outputBytes;
  if (l.outputFiles !== undefined) out.outputFiles = l.outputFiles;
  return out;
}

/** The output caps this client enforces itself: the asked ones, else DEFAULT_LIMITS'; null: none. */
function outputCaps(l: Limits): OutputCaps {
  return {
    stdoutBytes: l.stdoutBytes === undefined ? DEFAULT_LIMITS.stdoutBytes : l.stdoutBytes,
    stderrBytes: l.stderrBytes === undefined ? DEFAULT_LIMITS.stderrBytes : l.stderrBytes,
  };
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('spawn was aborted', { cause: signal.reason });
}

function closeAll(fds: number[]): void {
  for (const fd of fds) native.close(fd);
}

/**
 * Opens each mount's source as this process, with its own credentials (native/sources.cc):
 * the zygote never resolves a client's path, so a spawn can mount only what its client could
 * open itself. A source it may not mount is a SpawnError naming it and why; on any failure
 * the fds opened so far are closed.
 */
function openSources(mounts: readonly Mount[], name: string): number[] {
  const fds: number[] = [];
  try {
    for (const [i, m] of mounts.entries()) {
      if (!isAbsolute(m.source)) throw new InvalidOptionError(`Expected \`mounts[${i}].source\` to be an absolute path, got ${JSON.stringify(m.source)}`);
      try {
        fds.push(native.openMountSource(m.source, m.writable === true).fd);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new SpawnError(`spawn ${name || 'child'} failed at mount source: mounts[${i}].source ${e.message}`, 'mount source', typeof e.code === 'string' ? e.code : '', { cause: err });
      }
    }
    return fds;
  } catch (err) {
    closeAll(fds);
    throw err;
  }
}

/** Resolves true if p settled within ms, false otherwise. */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
