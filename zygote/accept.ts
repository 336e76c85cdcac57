// Taking connections off the listening socket without letting a flood of them wedge the serve
// loop or starve the clients already served:
// - fd headroom: a connection is refused if its fd lands in the top of RLIMIT_NOFILE, which is
//   kept for what spawns need (pipes, pidfds, mount fds), so connections alone never exhaust it;
// - out of fds anyway (EMFILE, ENFILE: the limit lowered under the zygote, or the system's
//   table full): the reserve fd is closed so the pending connection can be accepted, told why
//   and closed, then the reserve is reopened; without that the listening socket stays readable
//   and poll(2) wakes at once, forever;
// - any accept error or refusal for lack of fds: the socket is not watched for BACKOFF_MS;
// - at most MAX_PER_ROUND connections per wake-up, so other clients are served in between.
import { openSync, readFileSync } from 'node:fs';
import { native } from '../native/index.js';

/** How long the listening socket is left alone after running short of fds or memory. */
export const BACKOFF_MS = 100;
/** Connections taken per wake-up of the serve loop. */
const MAX_PER_ROUND = 64;
/** fds a child holds while it sets up: its pidfd, report pipe, and the client's ends of its stdio. */
export const FDS_PER_CHILD = 5;
/** fds one spawn needs for a moment: its pipes, at most 32 mount fds, cgroup and namespace fds. */
const FDS_PER_SPAWN = 64;

export type AcceptFailure = 'EMFILE' | 'ENFILE' | string;

export interface AcceptHooks {
  /** Tells the peer on fd why it is refused for lack of fds, logs it (rate-limited), closes fd. */
  refuseForFds(fd: number): void;
  /** accept4 failed (errno code); logged rate-limited by the caller. */
  failed(code: AcceptFailure, message: string, limit: number): void;
  /** RLIMIT_NOFILE was lowered: connections whose fds are at or above threshold must go. */
  shed(threshold: number): void;
}

export class Acceptor {
  private reserve = -1;
  private fdLimit = 0;
  /** Connection fds must stay below this. */
  threshold = 0;
  private backoffUntil = 0;

  constructor(
    private readonly listenFd: number,
    /** fds kept for children: maxChildren of them, and queued spawns' mount fds. */
    private readonly keptFds: number,
    private readonly hooks: AcceptHooks,
  ) {
    this.readLimit();
    this.openReserve();
  }

  /** Whether the listening socket is to be watched now. */
  watching(now: number): boolean {
    return now >= this.backoffUntil;
  }

  /** When the back-off ends, or null when there is none. */
  wakeAt(now: number): number | null {
    return now < this.backoffUntil ? this.backoffUntil : null;
  }

  /** The fds of pending connections (each below the threshold), until none is pending or this round had enough. */
  *connections(): Generator<number, void, void> {
    if (this.reserve < 0) this.openReserve();
    let short = false;
    try {
      for (let n = 0; n < MAX_PER_ROUND && this.watching(performance.now()); n++) {
        let fd: number | null;
        try {
          fd = native.accept(this.listenFd);
        } catch (err) {
          this.onAcceptError(err as NodeJS.ErrnoException, MAX_PER_ROUND - n);
          return;
        }
        if (fd === null) return;
        if (fd >= this.threshold) {
          // Each refusal frees its fd at once: the rest of the round's pending connections are told too.
          this.hooks.refuseForFds(fd);
          short = true;
          continue;
        }
        yield fd;
      }
    } finally {
      if (short) this.backOff();
    }
  }

  /** Whether an fd the zygote opened for a connection (its mount namespace) is in the headroom. */
  inHeadroom(fd: number): boolean {
    return fd >= this.threshold;
  }

  close(): void {
    if (this.reserve >= 0) native.close(this.reserve);
    this.reserve = -1;
  }

  private onAcceptError(err: NodeJS.ErrnoException, budget: number): void {
    const code = typeof err.code === 'string' ? err.code : 'unknown';
    this.backOff();
    if (code !== 'EMFILE' && code !== 'ENFILE') {
      // ENOBUFS, ENOMEM, or anything else: nothing to do but wait a little.
      this.hooks.failed(code, err.message, this.fdLimit);
      return;
    }
    // The reserve fd makes room for one at a time: reading the limit, then each pending
    // connection, which learns why and is closed at once.
    const hadReserve = this.reserve >= 0;
    this.close();
    const before = this.threshold;
    this.readLimit();
    this.hooks.failed(code, err.message, this.fdLimit);
    for (let n = 0; hadReserve && n < budget; n++) {
      let fd: number | null = null;
      try {
        fd = native.accept(this.listenFd);
      } catch {
        // Still none (ENFILE: another process took it): the back-off stands.
      }
      if (fd === null) break;
      this.hooks.refuseForFds(fd);
    }
    this.openReserve();
    if (this.threshold < before) this.hooks.shed(this.threshold);
  }

  private backOff(): void {
    this.backoffUntil = performance.now() + BACKOFF_MS;
  }

  /** RLIMIT_NOFILE (soft) as it is now: an operator may lower it under a running zygote (prlimit). */
  private readLimit(): void {
    let limit = this.fdLimit || 1024;
    try {
      const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      if (m) limit = m[1] === 'unlimited' ? 2 ** 31 - 1 : Number(m[1]);
    } catch {
      // No /proc: keep what was known.
    }
    this.fdLimit = limit;
    // Connections get at least half of the table, whatever the children are kept.
    this.threshold = limit - Math.min(Math.floor(limit / 2), this.keptFds + FDS_PER_SPAWN);
  }

  private openReserve(): void {
    try {
      this.reserve = openSync('/dev/null', 'r');
    } catch {
      // Out of fds right now: tried again at the next EMFILE.
      this.reserve = -1;
    }
  }
}
