// Giving back the heap the zygote's serving grew, once it has gone quiet.
//
// In a Node process that runs its event loop, V8's memory reducer does this: some seconds after
// a burst it collects in reduce-memory mode, shrinking the young generation and unmapping free
// pages. Its timer is a task of Node's loop, which the zygote never runs (it serves from its own
// poll loop), so the zygote's heap only grew: under a steady stream of spawns the young
// generation went 4 -> 32 MB resident (V8's cap) and old space kept 3 MB of fragmentation, while
// live objects stayed at ~7 MB (RSS 61 -> 94 MB over 3,000 spawns). Every fork copies the page
// tables of all of it. native.reduceHeap() brought it back to 57 MB, flat from then on.
// The memory reducer itself is off in the zygote (--no-memory-reducer, protocol/config.ts): the
// timer task it armed after each collection waited in the parked loop, and every child forked
// later ran it.
//
// The collection is a pause of 30-60 ms here (several full GCs), so it is run only when worth it
// (the heap has grown since the last one) and only after the loop has been idle a while: a
// spawn that comes in the middle waits for it, once.
import { getHeapStatistics } from 'node:v8';
import { native } from '../native/index.js';

/** How long after the last spawn the zygote counts as quiet. */
export const HEAP_TRIM_IDLE_MS = 2_000;
/** Growth of the committed heap, since the last trim, that is worth one. */
export const HEAP_TRIM_GROWTH_BYTES = 1024 * 1024;

export interface HeapTrimmed {
  beforeBytes: number;
  afterBytes: number;
  ms: number;
}

export class HeapTrim {
  /** When the last spawn came; null once trimmed (or nothing came since start). */
  private lastSpawnAt: number | null = null;
  /** The committed heap after the last trim (at start: after the warm-up's collection). */
  private baseline = getHeapStatistics().total_heap_size;

  /** A spawn came: the heap may grow, and the zygote is not quiet. */
  noteSpawn(now: number): void {
    this.lastSpawnAt = now;
  }

  /** When to look again (a poll timeout), or null when nothing is pending. */
  nextDeadline(): number | null {
    return this.lastSpawnAt === null ? null : this.lastSpawnAt + HEAP_TRIM_IDLE_MS;
  }

  /** Trims if the zygote has been quiet long enough and the heap grew; says what it did. */
  trimIfDue(now: number): HeapTrimmed | null {
    if (this.lastSpawnAt === null || now - this.lastSpawnAt < HEAP_TRIM_IDLE_MS) return null;
    this.lastSpawnAt = null;
    const beforeBytes = getHeapStatistics().total_heap_size;
    if (beforeBytes < this.baseline + HEAP_TRIM_GROWTH_BYTES) return null;
    const t0 = performance.now();
    native.reduceHeap();
    const afterBytes = getHeapStatistics().total_heap_size;
    this.baseline = afterBytes;
    return { beforeBytes, afterBytes, ms: performance.now() - t0 };
  }
}
