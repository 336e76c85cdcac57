// The user namespaces a client's mounts are idmapped through (native/sandbox/idmap.cc): the
// client's uid and gid shown as the child's, nothing else mapped. So a step reads and writes a
// client's directory with the client's own rights (its files as their owner, anyone else's as
// a stranger), never root's, and nothing is chowned. One namespace per (client, child) pair,
// kept for reuse: making one costs a clone and two map writes.
import { native } from '../../native/index.js';

/** Namespaces kept at most; the least recently used one is closed past it. */
const MAX_KEPT = 64;

export interface IdPair {
  uid: number;
  gid: number;
}

export class Idmaps {
  /** By "clientUid:clientGid>childUid:childGid", in least-recently-used order. */
  private readonly kept = new Map<string, number>();
  private helpersLeft = 0;

  /** An fd of the namespace mapping client to child (owned here: do not close it). */
  fd(client: IdPair, child: IdPair): number {
    const key = `${client.uid}:${client.gid}>${child.uid}:${child.gid}`;
    const have = this.kept.get(key);
    if (have !== undefined) {
      this.kept.delete(key);
      this.kept.set(key, have);
      return have;
    }
    const fd = native.makeIdmapUserns(client.uid, child.uid, client.gid, child.gid);
    this.helpersLeft++;
    this.kept.set(key, fd);
    if (this.kept.size > MAX_KEPT) {
      const [oldest, oldFd] = this.kept.entries().next().value as [string, number];
      this.kept.delete(oldest);
      native.close(oldFd);
    }
    return fd;
  }

  /** Whether helpers of new namespaces wait to be reaped (sweep() when idle). */
  get sweepPending(): boolean {
    return this.helpersLeft > 0;
  }

  sweep(): void {
    this.helpersLeft = native.reapIdmapHelpers();
  }

  /**
   * Reaps until no helper is left, waiting up to timeoutMs: at start-up, before anything is
   * served, so a namespace made then leaves no zombie for the serve loop to find idle.
   */
  settle(timeoutMs: number): void {
    const deadline = performance.now() + timeoutMs;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (this.sweep(); this.sweepPending && performance.now() < deadline; this.sweep()) Atomics.wait(pause, 0, 0, 1);
  }
}
