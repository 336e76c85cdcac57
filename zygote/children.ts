// Forking children and following each from fork through setup to reaping.
import { native, type NativeSandboxSpec, type ReapResult, type StepExit } from '../native/index.js';
import type { ChildCgroup } from './sandbox/cgroups.js';
import type { ChildNetwork } from './sandbox/network.js';
import type { GrantedLimits } from '../protocol/limits.js';
import type { PoolChild } from './pool.js';

/** What a forked child needs to start running main. Exists only in the child. */
export interface ChildTask {
  pid: number;
  id: number;
  name: string;
  argsJson: string;
  /** The child pivoted into a root of its own, and its cwd is that root's "/". */
  newRoot: boolean;
  /** A pool child: it waits on this fd for its claim (zygote/claim.ts) before it runs anything. */
  claimFd?: number;
  /** A learner: run main's rehearsal, say so on claimFd, then wait to be killed (zygote/prefault.ts). */
  rehearse?: boolean;
}

/** The zygote's record of one child. */
export interface ChildRecord {
  id: number;
  pid: number;
  pidfd: number;
  name: string;
  /** The owning connection's fd, or -1 once that client has gone. */
  ownerFd: number;
  forkedAt: number;
  /** 'setup' until the child reports; then 'running'. */
  state: 'setup' | 'running';
  /** Read end of the setup-report pipe, while in setup. */
  reportFd: number;
  /** The same pipe once running, watched for the step's exit record (native/init.cc). */
  statusFd: number;
  /** The step's exit as its init recorded it, once read. */
  stepExit: StepExit | null;
  /**
   * The client was told how it ended when the init's record said the step was the last of its
   * sandbox, before the init itself was reaped; the reap then only cleans up.
   */
  exitSent: boolean;
  /** The client's ends of stdin, stdout, stderr, handed over once the child is ready. */
  stdio: [number, number, number];
  /** Its output filesystem's fd (zygote/sandbox/output.ts), handed over with them; -1: none. */
  outputFd: number;
  /** Set when the child's setup failed: it exits by itself and is reaped quietly. */
  failed: boolean;
  /** The uid taken from the zygote's pool for this child, returned once it is reaped. */
  pooledUid: number | null;
  /** When (performance.now()) the child is killed for its wall-time limit, or null. */
  deadline: number | null;
  /** Its RLIMIT_CPU in seconds, or null. */
  cpuLimitSec: number | null;
  /** The limit the zygote ended it for. */
  limitHit: 'timeout' | 'cpu-limit' | 'shutdown' | null;
  /** A pool child claimed by the spawn (else forked for it). */
  fromPool?: boolean;
  /** Its own cgroup(s), when it has memory or pids limits. */
  cgroup: ChildCgroup | null;
  /** Its veth's /30 and its own allow entries, when it has a network. */
  network: ChildNetwork | null;
  /** The limits it was granted, reported to its client with Spawned. */
  limits: GrantedLimits | null;
  /**
   * A claimed pool child's step (pid 2 of its namespace): its init cannot pass signals on to
   * it (native/fork.cc, SplitPoolInit), so signals other than SIGKILL go here. -1 otherwise.
   */
  stepPidfd: number;
}

export type ForkOutcome =
  | { role: 'parent'; child: ChildRecord }
  | { role: 'child'; task: ChildTask }
  | { role: 'failed'; step: string; errnoName: string; message: string };

/**
 * Makes the child's pipes and forks. In the zygote returns the record; in the child (once the
 * native setup succeeded) returns the task. Every fd made here is closed on every path.
 */
export function forkChild(req: { id: number; name: string; argsJson: string }, sandbox: NativeSandboxSpec, ownerFd: number): ForkOutcome {
  const made: number[] = [];
  const pipe = (): [number, number] => {
    const p = native.pipe();
    made.push(...p);
    return p;
  };
  let stdin: [number, number], stdout: [number, number], stderr: [number, number], report: [number, number];
  try {
    stdin = pipe();
    stdout = pipe();
    stderr = pipe();
    report = pipe();
  } catch (err) {
    made.forEach((fd) => native.close(fd));
    return failure('pipe', err);
  }
  let forked;
  try {
    forked = native.forkChild({ stdin: stdin[0], stdout: stdout[1], stderr: stderr[1], report: report[1], name: processName(req), sandbox });
  } catch (err) {
    made.forEach((fd) => native.close(fd));
    return failure('fork', err);
  }
  if (forked.role === 'child') {
    return { role: 'child', task: { pid: forked.pid, id: req.id, name: req.name, argsJson: req.argsJson, newRoot: forked.newRoot } };
  }
  // The child's ends now live in the child only.
  for (const fd of [stdin[0], stdout[1], stderr[1], report[1]]) native.close(fd);
  native.setNonBlocking(report[0], true);
  return {
    role: 'parent',
    child: {
      id: req.id,
      pid: forked.pid,
      pidfd: forked.pidfd,
      name: req.name,
      ownerFd,
      forkedAt: performance.now(),
      state: 'setup',
      reportFd: report[0],
      statusFd: -1,
      stepExit: null,
      exitSent: false,
      stdio: [stdin[1], stdout[0], stderr[0]],
      outputFd: -1,
      failed: false,
      pooledUid: null,
      deadline: null,
      cpuLimitSec: null,
      limitHit: null,
      cgroup: null,
      network: null,
      limits: null,
      stepPidfd: -1,
    },
  };
}

/**
 * Forks a pool child (zygote/pool.ts): stdio on /dev/null until its claim, a report pipe and
 * a claim socketpair. In the zygote returns its record; in the child, its task (pooled).
 */
export function forkPoolChild(sandbox: NativeSandboxSpec, devNull: number, learned: { prefault: number[]; pretouch: number[] }): { role: 'parent'; child: PoolChild } | { role: 'child'; task: ChildTask } | { role: 'failed'; step: string; errnoName: string; message: string } {
  const made: number[] = [];
  let report: [number, number], claim: [number, number];
  try {
    report = native.pipe();
    made.push(...report);
    claim = native.socketpair();
    made.push(...claim);
  } catch (err) {
    made.forEach((fd) => native.close(fd));
    return failure('pipe', err);
  }
  let forked;
  try {
    forked = native.forkChild({ stdin: devNull, stdout: devNull, stderr: devNull, report: report[1], claim: claim[1], name: 'zygote-pool', sandbox, prefault: learned.prefault, pretouch: learned.pretouch });
  } catch (err) {
    made.forEach((fd) => native.close(fd));
    return failure('fork', err);
  }
  if (forked.role === 'child') return { role: 'child', task: { pid: forked.pid, id: -1, name: '', argsJson: '[]', newRoot: true, claimFd: claim[1] } };
  native.close(report[1]);
  native.close(claim[1]);
  native.setNonBlocking(report[0], true);
  native.setNonBlocking(claim[0], true);
  return { role: 'parent', child: { pid: forked.pid, pidfd: forked.pidfd, claimFd: claim[0], reportFd: report[0], stepPidfd: -1, cgroup: null, forkedAt: performance.now(), prefaultGeneration: 0 } };
}

/** Reaps a child whose pidfd became readable; null if it has not exited after all. */
export function reapChild(child: ChildRecord): ReapResult | null {
  return native.reap(child.pid);
}

/** Closes the fds the zygote still holds for a child that will never be handed over. */
export function closeHandover(child: ChildRecord): void {
  if (child.reportFd >= 0) native.close(child.reportFd);
  child.reportFd = -1;
  if (child.statusFd >= 0) native.close(child.statusFd);
  child.statusFd = -1;
  for (const fd of child.stdio) if (fd >= 0) native.close(fd);
  child.stdio = [-1, -1, -1];
  if (child.outputFd >= 0) native.close(child.outputFd);
  child.outputFd = -1;
}

export function processName(req: { id: number; name: string }): string {
  // comm holds 15 bytes; keep the end of long names, where step names usually differ.
  const base = req.name || `child-${req.id}`;
  return base.length > 15 ? base.slice(-15) : base;
}

function failure(step: string, err: unknown): Extract<ForkOutcome, { role: 'failed' }> {
  const e = err as NodeJS.ErrnoException;
  return { role: 'failed', step, errnoName: typeof e?.code === 'string' ? e.code : '', message: e?.message ?? String(err) };
}
