// Handing out a uid per live child from a range, so concurrent children are strangers.

export class UidPool {
  private readonly free: number[];
  private readonly used = new Set<number>();

  constructor(start: number, count: number) {
    this.free = Array.from({ length: count }, (_, i) => start + count - 1 - i);
  }

  /** A uid no live child has, or null when the range is exhausted. */
  take(): number | null {
    const uid = this.free.pop();
    if (uid === undefined) return null;
    this.used.add(uid);
    return uid;
  }

  /** Returns a uid once its child has been reaped (not before: its files and signals stay its own until then). */
  release(uid: number): void {
    if (!this.used.delete(uid)) return;
    // Reuse the least recently freed uid last.
    this.free.unshift(uid);
  }
}
