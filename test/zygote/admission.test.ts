// The admission bookkeeping (zygote/admission.ts) and the policy's defaults
// (protocol/admission.ts), on their own: which spawn is forked, queued or refused, and in which
// order the queue is served. The serve tests run the same code in a real zygote.
import { describe, expect, it } from 'vitest';
import { Admission } from '../../dist/zygote/admission.js';
import { resolveAdmission, type AdmissionPolicy } from '../../dist/protocol/admission.js';
import { RefusalLog } from '../../dist/zygote/refusal-log.js';
import type { Log } from '../../dist/zygote/log.js';

const policy = (p: Partial<AdmissionPolicy>): AdmissionPolicy => ({ maxConnectionsPerUid: 64, maxChildren: 3, maxChildrenPerUid: 3, maxQueue: 8, maxQueuePerUid: 4, queueTimeoutMs: 1000, ...p });

describe('resolveAdmission', () => {
  it('derives the per-uid caps: one slot left for each other uid, and an equal share of the queue', () => {
    expect(resolveAdmission({}, { uids: 1, uidRangeCount: null })).toEqual({ maxConnectionsPerUid: 64, maxChildren: 256, maxChildrenPerUid: 256, maxQueue: 64, maxQueuePerUid: 64, queueTimeoutMs: 30_000 });
    expect(resolveAdmission({}, { uids: 3, uidRangeCount: null })).toMatchObject({ maxChildren: 256, maxChildrenPerUid: 254, maxQueuePerUid: 21 });
    expect(resolveAdmission({}, { uids: 2, uidRangeCount: 3 })).toMatchObject({ maxChildren: 3, maxChildrenPerUid: 2 });
    // More uids than slots: each may still have one.
    expect(resolveAdmission({ maxChildren: 2, maxQueue: 1 }, { uids: 5, uidRangeCount: null })).toMatchObject({ maxChildrenPerUid: 1, maxQueuePerUid: 1 });
    expect(resolveAdmission({ maxQueue: 0 }, { uids: 2, uidRangeCount: null })).toMatchObject({ maxQueue: 0, maxQueuePerUid: 0 });
  });
});

describe('Admission', () => {
  it('forks while there is room, then queues; refuses past the queue and past a uid\'s share of it', () => {
    const a = new Admission<string, null>(policy({ maxQueue: 3, maxQueuePerUid: 2 }));
    for (let pid = 1; pid <= 3; pid++) {
      expect(a.consider(10)).toEqual({ kind: 'admit' });
      a.started(pid, 10);
    }
    expect(a.consider(10).kind).toBe('queue');
    a.enqueue({ owner: 'c10', uid: 10, id: 1, request: null, fds: [] }, 0);
    a.enqueue({ owner: 'c10', uid: 10, id: 2, request: null, fds: [] }, 0);
    expect(a.consider(10)).toMatchObject({ kind: 'refuse', cap: 'queue-full', limit: 2 });
    a.enqueue({ owner: 'c20', uid: 20, id: 1, request: null, fds: [] }, 0);
    expect(a.consider(30)).toMatchObject({ kind: 'refuse', cap: 'queue-full', limit: 3 });
  });

  it('with no queue, names the cap that is full: children before children-per-uid', () => {
    const a = new Admission<string, null>(policy({ maxChildren: 2, maxChildrenPerUid: 1, maxQueue: 0, maxQueuePerUid: 0 }));
    a.started(1, 10);
    expect(a.consider(10)).toMatchObject({ kind: 'refuse', cap: 'children-per-uid', limit: 1 });
    a.started(2, 20);
    expect(a.consider(10)).toMatchObject({ kind: 'refuse', cap: 'children', limit: 2 });
  });

  it('serves the uid with the fewest live children first, round robin among equals, first come first served within a uid', () => {
    const a = new Admission<string, null>(policy({ maxChildren: 4, maxChildrenPerUid: 4 }));
    [[1, 10], [2, 10], [3, 20], [4, 30]].forEach(([pid, uid]) => a.started(pid, uid));
    const q = (uid: number, id: number) => a.enqueue({ owner: `c${uid}`, uid, id, request: null, fds: [] }, 0);
    q(10, 1);
    q(10, 2);
    q(20, 1);
    q(30, 1);
    q(20, 2);
    expect(a.next()).toBeNull(); // full
    const served: string[] = [];
    for (let pid = 1; pid <= 4; pid++) {
      a.reaped(pid);
      const w = a.next()!;
      served.push(`${w.uid}:${w.id}`);
      a.started(100 + pid, w.uid);
    }
    // Reaped 1 (uid 10 down to 1 live): 20 and 30 have 1 too, 10 queued first -> 10:1. Reaped 2
    // (10 back to 1): 20 and 30 equal, 20 first come -> 20:1. Reaped 3 (20 down to 1): 30 has
    // 1, served least recently -> 30:1. Reaped 4 (30 back to 1): 10 served before 20 -> 10:2.
    expect(served).toEqual(['10:1', '20:1', '30:1', '10:2']);
    expect(a.queued).toBe(1);
  });

  it('keeps a uid at its cap waiting while another uid takes the free slot, and times out what waited too long', () => {
    const a = new Admission<string, null>(policy({ maxChildren: 3, maxChildrenPerUid: 2 }));
    a.started(1, 10);
    a.started(2, 10);
    expect(a.consider(10).kind).toBe('queue');
    a.enqueue({ owner: 'c10', uid: 10, id: 3, request: null, fds: [7, 8] }, 0);
    // The free slot is not uid 10's: uid 20 gets it at once.
    expect(a.next()).toBeNull();
    expect(a.consider(20)).toEqual({ kind: 'admit' });
    expect(a.nextDeadline()).toBe(1000);
    expect(a.expired(999)).toEqual([]);
    expect(a.expired(1000)).toMatchObject([{ uid: 10, id: 3, fds: [7, 8] }]);
    expect(a.queued).toBe(0);
  });

  it('gives back the waiting spawns of a client that left', () => {
    const a = new Admission<string, null>(policy({ maxChildren: 1 }));
    a.started(1, 10);
    a.enqueue({ owner: 'x', uid: 10, id: 1, request: null, fds: [5] }, 0);
    a.enqueue({ owner: 'y', uid: 10, id: 1, request: null, fds: [] }, 0);
    expect(a.isWaiting('x', 1)).toBe(true);
    expect(a.dropOwner('x')).toMatchObject([{ owner: 'x', fds: [5] }]);
    expect(a.isWaiting('x', 1)).toBe(false);
    expect(a.drain()).toHaveLength(1);
  });
});

describe('RefusalLog', () => {
  function logged(): { log: Log; lines: string[] } {
    const lines: string[] = [];
    return { lines, log: { info: (_event: string, m: string) => lines.push(m), error: (_event: string, m: string) => lines.push(`error: ${m}`) } as unknown as Log };
  }

  it('logs the first refusal of a kind at once, counts the rest, and gives the count when the interval ends', () => {
    let now = 0;
    const { log, lines } = logged();
    const r = new RefusalLog(log, 10_000, () => now);
    const kind = { key: 'connection uid 7', verb: 'refused', what: 'connections from uid 7' };
    for (let i = 0; i < 3000; i++) {
      r.note(kind, i % 3 === 0 ? 'fds' : 'connections-per-uid', `refused connection ${i}`);
      now += 1;
    }
    expect(lines).toEqual(['refused connection 0']);
    expect(r.nextFlush()).toBe(10_000);
    now = 10_000;
    r.flushDue();
    expect(lines[1]).toBe('refused 2,999 more connections from uid 7 in the last 10 s (connections-per-uid: 2,000, fds: 999)');
    // A new interval: quiet, it ends without a line; the next refusal is logged at once.
    now = 20_000;
    r.flushDue();
    expect(lines).toHaveLength(2);
    expect(r.nextFlush()).toBeNull();
    r.note(kind, 'fds', 'refused again');
    expect(lines[2]).toBe('refused again');
  });

  it('keeps kinds apart, and at exit gives the counts not yet logged', () => {
    let now = 0;
    const { log, lines } = logged();
    const r = new RefusalLog(log, 10_000, () => now);
    for (const uid of [1, 2, 1, 2, 1]) r.note({ key: `spawn uid ${uid}`, verb: 'refused', what: `spawns of uid ${uid}` }, 'children', `refused spawn of uid ${uid}`);
    now = 2500;
    r.flushAll();
    expect(lines).toEqual(['refused spawn of uid 1', 'refused spawn of uid 2', 'refused 2 more spawns of uid 1 in the last 2.5 s (children: 2)', 'refused 1 more spawns of uid 2 in the last 2.5 s (children: 1)']);
  });
});
