// A child the zygote forked for this client: its pid, its stdio as Node streams, its exit.
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { native } from '../native/index.js';
import type { ChildOutput } from './child-output.js';
import { OutputLimit } from './output-limit.js';
import type { GrantedLimits } from '../protocol/limits.js';
import { signalName } from '../protocol/signals.js';
import { InvalidOptionError } from '../protocol/errors.js';

export interface ExitStatus {
  /** The exit code if the child exited, else null. */
  code: number | null;
  /** The signal that ended the child, else null. */
  signal: NodeJS.Signals | null;
  /**
   * How it ended. 'exit': it exited; 'signal': a signal it did not get from us ended it;
   * 'killed': kill(), an abort or close() ended it; 'timeout': its wall-time limit;
   * 'cpu-limit': its CPU-time limit; 'output-limit': it wrote more than its stdout or stderr cap;
   * 'oom': its cgroup ran out of memory and the kernel killed it; 'pids-limit': it could not
   * start a thread or process because its cgroup was at its pids limit; 'shutdown': the zygote
   * was stopped (SIGTERM) and its drain (`zygote serve --drain-ms`) ended before the child did.
   */
  reason: 'exit' | 'signal' | 'killed' | 'timeout' | 'cpu-limit' | 'output-limit' | 'oom' | 'pids-limit' | 'shutdown';
  /** Fork to reap, measured by the zygote. */
  wallMs: number;
  /** User plus system CPU time; of all its processes, from its cgroup, when it had memory or pids limits. */
  cpuMs: number;
  /**
   * Peak resident set size of the step's process (its pid namespace's init reports it with the
   * exit; a step killed together with its init, as the OOM killer does on cgroup v2, has only
   * the init's). RSS counts mapped pages: pages shared with the zygote since the fork, not its
   * /tmp or output files (see memoryPeakBytes).
   */
  maxRssBytes: number;
  /**
   * Peak memory charged to its cgroup (memory.peak on v2, memory.max_usage_in_bytes on v1):
   * every process of it, its /tmp and output files (tmpfs) and its page cache. Null when it had
   * no cgroup (no memory or pids limit). This is what a memory limit is measured against.
   */
  memoryPeakBytes: number | null;
}

export interface RawExit {
  code: number | null;
  signal: number | null;
  /** The limit the zygote ended it for, if any. */
  limit: 'timeout' | 'cpu-limit' | 'oom' | 'pids-limit' | 'shutdown' | null;
  wallMs: number;
  cpuMs: number;
  maxRssBytes: number;
  memoryPeakBytes: number | null;
}


/** The output caps the client enforces (null: none). */
export interface OutputCaps {
  stdoutBytes: number | null;
  stderrBytes: number | null;
}

/** A child's limits: what the zygote granted (defaults filled in) and the client's output caps; null: no limit. */
export type ChildLimits = Readonly<GrantedLimits & OutputCaps>;

/** Sends a kill request through the zygote, for when this process may not signal the child. */
export type KillViaZygote = (id: number, signal: number) => void;

export class ZygoteChild {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves when the zygote has reaped the child; rejects with ZygoteClosedError if the zygote died first. */
  readonly exited: Promise<ExitStatus>;
  private pidfd: number;
  private killRequested = false;
  private outputLimitHit = false;
  /** The pipes under stdout and stderr (which may be OutputLimit streams on top of them). */
  private readonly pipes: Socket[] = [];
  private status: ExitStatus | null = null;
  private settle!: { resolve(s: ExitStatus): void; reject(e: Error): void };

  constructor(
    /** The spawn id on this connection. */
    readonly id: number,
    /** The child's real pid (in the zygote's pid namespace). */
    readonly pid: number,
    readonly name: string,
    fds: readonly number[],
    /** The limits it runs under. */
    readonly limits: ChildLimits,
    private readonly killViaZygote: KillViaZygote,
    /**
     * Its output filesystem (spawn({ output })), null when it asked for none: read it through
     * `output.path` or readOutputFile(output, name), and close() it when done (the zygote
     * handle's close() closes any still open).
     */
    readonly output: ChildOutput | null = null,
  ) {
    const [stdin, stdout, stderr, pidfd] = fds;
    this.pidfd = pidfd;
    this.stdin = new Socket({ fd: stdin, readable: false, writable: true });
    this.pipes.push(new Socket({ fd: stdout, readable: true, writable: false }), new Socket({ fd: stderr, readable: true, writable: false }));
    this.stdout = this.capped(this.pipes[0], limits.stdoutBytes);
    this.stderr = this.capped(this.pipes[1], limits.stderrBytes);
    // A child that exits without reading its stdin makes writes fail with EPIPE; that is
    // the child's business, not a reason to crash the renderer. Other errors still throw
    // when nobody listens.
    this.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && this.stdin.listenerCount('error') === 1) throw err;
    });
    this.exited = new Promise<ExitStatus>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Whoever never awaits exited must not get an unhandled rejection when the zygote dies.
    this.exited.catch(() => undefined);
  }

  /** Whether the zygote has reported this child's exit. */
  get hasExited(): boolean {
    return this.status !== null;
  }

  /**
   * Sends a signal (SIGKILL by default) through the child's pidfd, so a recycled pid can never
   * be hit. Returns false if the child has already exited.
   */
  kill(signal: NodeJS.Signals | number = 'SIGKILL'): boolean {
    if (this.status !== null || this.pidfd < 0) return false;
    const sig = typeof signal === 'number' ? signal : osConstants.signals[signal];
    if (!Number.isInteger(sig) || sig <= 0) throw new InvalidOptionError(`Expected a signal name or number, got ${String(signal)}`);
    try {
      const sent = native.pidfdSendSignal(this.pidfd, sig);
      if (sent) this.killRequested = true;
      return sent;
    } catch (err) {
      // A child running as another user (the sandbox's uid) cannot be signalled from here;
      // the zygote, its parent, can.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      this.killRequested = true;
      this.killViaZygote(this.id, sig);
      return true;
    }
  }

  /** The stream as is, or behind an OutputLimit that cuts it and kills the child at the cap. */
  private capped(source: Socket, cap: number | null): Readable {
    if (cap === null) return source;
    const limit = new OutputLimit(cap, () => {
      this.outputLimitHit = true;
      this.kill('SIGKILL');
      // Stop reading: what the child still writes stays in the pipe, not in our memory.
      source.destroy();
    });
    source.on('error', (err) => limit.destroy(err));
    return source.pipe(limit);
  }

  /** @internal The zygote reported the exit. */
  _exited(raw: RawExit): void {
    if (this.status !== null) return;
    const signal = raw.signal === null ? null : signalName(raw.signal);
    const reason: ExitStatus['reason'] =
      raw.limit ?? (this.outputLimitHit ? 'output-limit' : signal !== null ? (this.killRequested ? 'killed' : 'signal') : 'exit');
    this.status = { code: raw.code, signal, reason, wallMs: raw.wallMs, cpuMs: raw.cpuMs, maxRssBytes: raw.maxRssBytes, memoryPeakBytes: raw.memoryPeakBytes };
    this.closePidfd();
    // Nobody can read stdin any more (as child_process does). stdout and stderr end by
    // themselves once their buffered data is read.
    this.stdin.destroy();
    this.settle.resolve(this.status);
  }

  /** @internal The zygote is gone: nobody will report the exit (the child dies with it). */
  _orphaned(err: Error): void {
    if (this.status !== null) return;
    this.closePidfd();
    this.settle.reject(err);
  }

  /** @internal Stops reading and writing: used when the handle is closed. */
  _destroyStreams(): void {
    this.stdin.destroy();
    for (const s of [this.stdout, this.stderr, ...this.pipes]) s.destroy();
  }

  private closePidfd(): void {
    if (this.pidfd >= 0) native.close(this.pidfd);
    this.pidfd = -1;
  }
}
