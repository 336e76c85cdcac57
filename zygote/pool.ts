// The warm pool (Android's USAP pool is the model): children forked ahead of any spawn, each
// already in its namespaces, its own cgroup and a private copy of the root, its init split off,
// waiting on a socketpair for the one spawn that claims it (native/fork.cc, RunPoolSetup). A
// claim brings only what differs per spawn (stdio, mounts, limits, uid, args); the child applies
// it and drops what is left of its privileges before any of the spawn's code runs. One child,
// one spawn: a claimed child never returns to the pool.
import { native } from '../native/index.js';
import type { ChildCgroup } from './sandbox/cgroups.js';
import type { NormalizedPoolOptions } from '../protocol/pool.js';

/** A pool child, from its fork until it is claimed or retired. */
export interface PoolChild {
  /** Its init (pid 1 of its namespace), the process the zygote forked. */
  pid: number;
  pidfd: number;
  /** The zygote's end of the claim socketpair. */
  claimFd: number;
  /** Read end of its report pipe: the claim's setup report, then the step's exit record. */
  reportFd: number;
  /** A pidfd of the step-to-be, sent once its setup is done; -1 until then. */
  stepPidfd: number;
  /** Its cgroup(s), joined at fork, without limits until a claim writes them. */
  cgroup: ChildCgroup | null;
  forkedAt: number;
  /** Which learned prefault ranges it copied and read (zygote/prefault.ts): 0, none (a blank child, the only kind a learner may be). */
  prefaultGeneration: number;
}

/** How many claims came from the pool. */
export interface PoolCounts {
  claimed: number;
  /** Pool children that died or were retired before a claim. */
  retired: number;
}

export class WarmPool {
  private readonly children = new Map<number, PoolChild>();
  readonly counts: PoolCounts = { claimed: 0, retired: 0 };

  constructor(readonly options: NormalizedPoolOptions) {}

  /** Whether the pool is below its size (the serve loop forks one more when idle). */
  get wantsChild(): boolean {
    return this.children.size < this.options.size;
  }

  get idle(): number {
    return this.children.size;
  }

  /** Every pool child, for the serve loop to watch (their pidfds) and retire. */
  all(): IterableIterator<PoolChild> {
    return this.children.values();
  }

  add(child: PoolChild): void {
    this.children.set(child.pid, child);
  }

  /**
   * The oldest child whose setup is done, taken out of the pool; null when none is ready. A
   * child is ready once its step-to-be has sent its pidfd ("ready"), read here without waiting.
   * A child taken to learn from (zygote/prefault.ts) is a blank one, and is not counted as
   * claimed: one that copied or read learned pages ahead would teach them back. A claim takes
   * a blank child only when no child with learned pages is ready, so that one waits for the
   * learner under a steady load.
   */
  take(forLearning = false): PoolChild | null {
    // Oldest first, children with the lesson before blank ones; a learner, blank ones only.
    for (const blank of forLearning ? [true] : [false, true]) {
      for (const c of this.children.values()) {
        if ((c.prefaultGeneration === 0) !== blank) continue;
        if (c.stepPidfd < 0 && !readReady(c)) continue;
        this.children.delete(c.pid);
        // A learner (zygote/prefault.ts) serves no spawn: not a claim.
        if (!forLearning) this.counts.claimed++;
        return c;
      }
    }
    return null;
  }

  /** A pool child that died or is being retired: out of the pool (its caller reaps it). */
  remove(pid: number): PoolChild | undefined {
    const c = this.children.get(pid);
    if (c) {
      this.children.delete(pid);
      this.counts.retired++;
    }
    return c;
  }

  /** Whether a blank child (prefaultGeneration 0) is in the pool, ready or not. */
  get hasBlank(): boolean {
    for (const c of this.children.values()) if (c.prefaultGeneration === 0) return true;
    return false;
  }

  /** Children idle for longer than maxIdleMs, to be retired. */
  expired(now: number): PoolChild[] {
    return [...this.children.values()].filter((c) => now - c.forkedAt > this.options.maxIdleMs);
  }

  /** When the next idle child expires (performance.now()), or Infinity. */
  nextExpiry(): number {
    let next = Infinity;
    for (const c of this.children.values()) next = Math.min(next, c.forkedAt + this.options.maxIdleMs);
    return next;
  }
}

/** Reads the child's "ready" packet if it has come: its step's pidfd. */
function readReady(c: PoolChild): boolean {
  let packet;
  try {
    packet = native.recvPacket(c.claimFd, 16);
  } catch {
    return false;
  }
  if (packet === null || packet === 'eof') return false;
  const ok = packet.data.toString() === 'ready' && packet.fds.length === 1;
  if (!ok) {
    for (const fd of packet.fds) native.close(fd);
    return false;
  }
  c.stepPidfd = packet.fds[0];
  return true;
}

/** Closes what the zygote holds for a pool child that will never be claimed. */
export function closePoolChild(c: PoolChild): void {
  for (const fd of [c.claimFd, c.reportFd, c.stepPidfd]) if (fd >= 0) native.close(fd);
  c.claimFd = c.reportFd = c.stepPidfd = -1;
}
