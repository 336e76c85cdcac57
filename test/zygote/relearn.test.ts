// zygote/prefault.ts and zygote/pool.ts: a learner is a blank pool child, one that copied and
// read nothing ahead. A pool child that copied the last lesson's pages owns them (pagemap:
// exclusive) and one that read them has them accessed, so a learner taken from those would
// report the old lesson back with the new: lessons would only grow, by every page the zygote's
// heap has moved away from, up to 32 MiB copied per pool child. The pool itself is real here:
// real socketpairs, the "ready" packet with a real fd, as pool children send it.
import { closeSync, openSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../dist/native/index.js';
import { PrefaultLearner, RELEARN_AFTER_FORKS } from '../../dist/zygote/prefault.js';
import { WarmPool, type PoolChild } from '../../dist/zygote/pool.js';

const PAGE = 4096;
const LESSON = { written: [0x7f00_0000_0000, 4 * PAGE], accessed: [0x7f00_1000_0000, 8 * PAGE] };

describe('which pool children a lesson goes to', () => {
  it('before the first lesson: every child is blank', () => {
    const l = new PrefaultLearner(true);
    expect(l.wantsLearner).toBe(true);
    expect(l.forFork(false)).toEqual({ prefault: [], pretouch: [], generation: 0 });
    expect(l.forFork(true)).toEqual({ prefault: [], pretouch: [], generation: 0 });
  });

  it('after a lesson: children copy and read it, and record its generation', () => {
    const l = new PrefaultLearner(true);
    l.adopt(LESSON.written, LESSON.accessed);
    expect(l.wantsLearner).toBe(false);
    expect(l.forFork(false)).toEqual({ prefault: LESSON.written, pretouch: LESSON.accessed, generation: 1 });
  });

  it('when it is time to learn again: one blank child for the learner, the rest with the lesson', () => {
    const l = new PrefaultLearner(true);
    l.adopt(LESSON.written, LESSON.accessed);
    for (let i = 0; i < RELEARN_AFTER_FORKS; i++) expect(l.forFork(false).generation).toBe(1);
    expect(l.wantsLearner).toBe(true);
    // This fork would otherwise copy and read the old lesson, and a learner taken from it
    // would report those pages as its own.
    expect(l.forFork(false)).toEqual({ prefault: [], pretouch: [], generation: 0 });
    // The pool already holds a blank child: the others keep the lesson meanwhile.
    expect(l.forFork(true)).toEqual({ prefault: LESSON.written, pretouch: LESSON.accessed, generation: 1 });
  });

  it('a main that cannot rehearse never wants a learner, and its children are all blank', () => {
    const l = new PrefaultLearner(false);
    expect(l.wantsLearner).toBe(false);
    expect(l.forFork(false)).toEqual({ prefault: [], pretouch: [], generation: 0 });
  });
});

describe('which ready pool child is taken', () => {
  const open: number[] = [];
  afterEach(() => {
    for (const fd of open.splice(0)) native.close(fd);
  });

  /** A pool child record whose step-to-be has said "ready" (with an fd, as its pidfd) on a real socketpair. */
  function readyChild(pid: number, generation: number, ready = true): PoolChild {
    const [zygoteEnd, childEnd] = native.socketpair();
    open.push(zygoteEnd, childEnd);
    native.setNonBlocking(zygoteEnd, true);
    if (ready) {
      const fd = openSync('/dev/null', 'r');
      expect(native.sendPacket(childEnd, Buffer.from('ready'), [fd])).toBe(true);
      closeSync(fd);
    }
    return { pid, pidfd: -1, claimFd: zygoteEnd, reportFd: -1, stepPidfd: -1, cgroup: null, forkedAt: performance.now(), prefaultGeneration: generation };
  }

  function poolOf(...children: PoolChild[]): WarmPool {
    const pool = new WarmPool({ size: children.length, maxIdleMs: 60_000 });
    for (const c of children) pool.add(c);
    return pool;
  }

  /** The received pidfd stand-in of a taken child, closed with the rest. */
  function taken(c: PoolChild | null): number | null {
    if (c && c.stepPidfd >= 0) open.push(c.stepPidfd);
    return c?.pid ?? null;
  }

  it('a learner is only ever a blank child, ready or waited for', () => {
    const pool = poolOf(readyChild(1, 2), readyChild(2, 2));
    expect(pool.hasBlank).toBe(false);
    expect(taken(pool.take(true))).toBeNull();
    expect(pool.idle).toBe(2);
    pool.add(readyChild(3, 0, false));
    expect(pool.hasBlank).toBe(true);
    expect(taken(pool.take(true))).toBeNull(); // not ready yet
    pool.add(readyChild(4, 0));
    expect(taken(pool.take(true))).toBe(4);
    expect(pool.counts.claimed).toBe(0); // a learner serves no spawn
  });

  it('a claim takes the oldest child with the lesson first, and a blank one only when no other is ready', () => {
    const pool = poolOf(readyChild(1, 0), readyChild(2, 3), readyChild(3, 3, false), readyChild(4, 3));
    expect(taken(pool.take())).toBe(2);
    expect(taken(pool.take())).toBe(4);
    // Child 3 has not said ready: the blank one serves rather than nobody.
    expect(taken(pool.take())).toBe(1);
    expect(taken(pool.take())).toBeNull();
    expect(pool.counts.claimed).toBe(3);
  });

  it('before any lesson (all blank): oldest first, as ever', () => {
    const pool = poolOf(readyChild(1, 0), readyChild(2, 0));
    expect(taken(pool.take())).toBe(1);
    expect(taken(pool.take())).toBe(2);
  });
});
