// Who gets the zygote's next child: the caps on live children (in all and per client uid), and
// the bounded queue a spawn waits in while it does not fit (the zygote is full, or its uid has
// its most live children). Fair: when a child is reaped, of the waiting spawns that fit, the
// one of the uid with the fewest live children goes first (round robin among equals, first
// come first served within a uid), and no uid may hold the slots every other uid needs
// (maxChildrenPerUid leaves each of them one). Each uid may fill only its share of the queue.
// Pure bookkeeping: the serve loop forks, replies, and closes the fds of what it is handed
// back (zygote/server.ts).
import type { AdmissionPolicy, CapacityCap } from '../protocol/admission.js';

/** A spawn waiting for a slot. fds: its mount sources, owned by the queue while it waits. */
export interface Waiting<Owner, Request> {
  owner: Owner;
  uid: number;
  id: number;
  request: Request;
  fds: number[];
  /** When (performance.now()) it is refused for waiting too long. */
  deadline: number;
  seq: number;
}

export type Verdict = { kind: 'admit' } | { kind: 'queue' } | { kind: 'refuse'; cap: CapacityCap; limit: number; message: string };

export class Admission<Owner, Request> {
  /** Client uid of each live child, by pid. */
  private readonly uidOf = new Map<number, number>();
  private readonly liveByUid = new Map<number, number>();
  private readonly waiting: Waiting<Owner, Request>[] = [];
  /**
   * When each uid was last served from the queue (a serial): the least recently served of
   * equals goes first. One entry per client uid that ever queued (only --allow-uid uids spawn).
   */
  private readonly lastServed = new Map<number, number>();
  private serial = 0;

  constructor(readonly policy: AdmissionPolicy) {}

  /** Live children of the zygote (forked, not yet reaped). */
  get live(): number {
    return this.uidOf.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  liveOf(uid: number): number {
    return this.liveByUid.get(uid) ?? 0;
  }

  queuedOf(uid: number): number {
    let n = 0;
    for (const w of this.waiting) if (w.uid === uid) n++;
    return n;
  }

  /** Whether a spawn of uid could be forked now, as far as the caps go. */
  private fits(uid: number): boolean {
    return this.live < this.policy.maxChildren && this.liveOf(uid) < this.policy.maxChildrenPerUid;
  }

  /**
   * What to do with a new spawn of uid: fork it now, queue it, or refuse it (which cap). It is
   * forked now only if it fits and no waiting spawn that fits would be passed over (those are
   * served at the end of this round, in their fair order, this one among them).
   */
  consider(uid: number): Verdict {
    const p = this.policy;
    if (this.fits(uid) && !this.waiting.some((w) => this.fits(w.uid))) return { kind: 'admit' };
    const queued = this.queuedOf(uid);
    if (p.maxQueue === 0) {
      if (this.live >= p.maxChildren) return refuse('children', p.maxChildren, `the zygote has ${this.live} live children, its cap (${p.maxChildren}), and no queue`);
      return refuse('children-per-uid', p.maxChildrenPerUid, `uid ${uid} has ${this.liveOf(uid)} live children, the most one client uid may have (${p.maxChildrenPerUid}), and the zygote has no queue`);
    }
    if (this.waiting.length >= p.maxQueue) return refuse('queue-full', p.maxQueue, `${this.fullness(uid)}, and ${this.waiting.length} spawns waiting, as many as its queue holds (${p.maxQueue})`);
    if (queued >= p.maxQueuePerUid) return refuse('queue-full', p.maxQueuePerUid, `${this.fullness(uid)}, and uid ${uid} has ${queued} spawns waiting, its share of the queue (${p.maxQueuePerUid})`);
    return { kind: 'queue' };
  }

  /** Why a spawn of uid does not fit now, for messages. */
  fullness(uid: number): string {
    const p = this.policy;
    if (this.live >= p.maxChildren) return `the zygote has ${this.live} live children, its cap (${p.maxChildren})`;
    if (this.liveOf(uid) >= p.maxChildrenPerUid) return `uid ${uid} has ${this.liveOf(uid)} live children, the most one client uid may have (${p.maxChildrenPerUid})`;
    return 'spawns that came first are waiting';
  }

  /** Queues a spawn consider() said may wait. */
  enqueue(w: Omit<Waiting<Owner, Request>, 'seq' | 'deadline'>, now: number): void {
    this.waiting.push({ ...w, deadline: now + this.policy.queueTimeoutMs, seq: this.serial++ });
  }

  /** Whether owner has a spawn of this id waiting. */
  isWaiting(owner: Owner, id: number): boolean {
    return this.waiting.some((w) => w.owner === owner && w.id === id);
  }

  /**
   * The waiting spawn to fork now, taken off the queue, or null when none fits. Of those that
   * fit: the uid with the fewest live children, then the one served least recently, then the
   * first to come. The caller forks it (or refuses it for another reason) before asking again.
   */
  next(): Waiting<Owner, Request> | null {
    let best = -1;
    let key: [number, number, number] = [Infinity, Infinity, Infinity];
    for (const [i, w] of this.waiting.entries()) {
      if (!this.fits(w.uid)) continue;
      const k: [number, number, number] = [this.liveOf(w.uid), this.lastServed.get(w.uid) ?? -1, w.seq];
      if (k[0] < key[0] || (k[0] === key[0] && (k[1] < key[1] || (k[1] === key[1] && k[2] < key[2])))) {
        best = i;
        key = k;
      }
    }
    if (best < 0) return null;
    const [w] = this.waiting.splice(best, 1);
    this.lastServed.set(w.uid, this.serial++);
    return w;
  }

  /** Takes off the queue, and returns, the spawns that waited past their deadline. */
  expired(now: number): Waiting<Owner, Request>[] {
    return this.remove((w) => w.deadline <= now);
  }

  /** Takes off the queue, and returns, owner's spawns (its client is gone). */
  dropOwner(owner: Owner): Waiting<Owner, Request>[] {
    return this.remove((w) => w.owner === owner);
  }

  /** Takes off the queue, and returns, every waiting spawn (shutdown). */
  drain(): Waiting<Owner, Request>[] {
    return this.waiting.splice(0);
  }

  /** The earliest queue deadline, or null. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const w of this.waiting) if (next === null || w.deadline < next) next = w.deadline;
    return next;
  }

  /** A child of uid's was forked. */
  started(pid: number, uid: number): void {
    this.uidOf.set(pid, uid);
    this.liveByUid.set(uid, this.liveOf(uid) + 1);
  }

  /** A child was reaped: its slot is free (and, with a uid range, so is its uid). */
  reaped(pid: number): void {
    const uid = this.uidOf.get(pid);
    if (uid === undefined) return;
    this.uidOf.delete(pid);
    const left = this.liveOf(uid) - 1;
    if (left > 0) this.liveByUid.set(uid, left);
    else this.liveByUid.delete(uid);
  }

  private remove(pred: (w: Waiting<Owner, Request>) => boolean): Waiting<Owner, Request>[] {
    const out: Waiting<Owner, Request>[] = [];
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (pred(this.waiting[i])) out.unshift(...this.waiting.splice(i, 1));
    }
    return out;
  }
}

function refuse(cap: CapacityCap, limit: number, message: string): Verdict {
  return { kind: 'refuse', cap, limit, message };
}
