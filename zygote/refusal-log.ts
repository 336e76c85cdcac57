// Log lines for refusals that can come by the thousand (a client flooding the socket): the
// first of a kind is logged at once, the rest of its interval only counted, and one line
// gives the count when the interval ends. No timers: the serve loop calls flushDue() on every
// round and wakes for nextFlush() (zygote/server.ts).
import type { Log } from './log.js';

/** A kind of refusal, and how its summary line reads: "{verb} 2,999 more {what} in the last 10 s". */
export interface RefusalKind {
  key: string;
  /** "refused" */
  verb: string;
  /** "connections from uid 1000" */
  what: string;
}

interface Window {
  verb: string;
  what: string;
  start: number;
  suppressed: number;
  /** Suppressed refusals by reason ("connections-per-uid: 2,999"). */
  byReason: Map<string, number>;
}

/** How many kinds are tracked apart; past that, refusals of new kinds share one (bounded memory). */
const MAX_KINDS = 1024;
const OVERFLOW: RefusalKind = { key: '*', verb: 'refused', what: 'requests of other uids' };

export class RefusalLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Log,
    readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A refusal: line is logged if no other of its kind was in this interval, else counted under reason. */
  note(kind: RefusalKind, reason: string, line: string): void {
    this.flushDue();
    if (!this.windows.has(kind.key) && this.windows.size >= MAX_KINDS) kind = OVERFLOW;
    const w = this.windows.get(kind.key);
    if (!w) {
      this.windows.set(kind.key, { verb: kind.verb, what: kind.what, start: this.now(), suppressed: 0, byReason: new Map() });
      this.log.info('refused', line);
      return;
    }
    w.suppressed++;
    w.byReason.set(reason, (w.byReason.get(reason) ?? 0) + 1);
  }

  /**
   * Ends the intervals that are over: one line for each that suppressed something (and its
   * kind keeps being counted for another interval), none for the others (the next refusal of
   * that kind is logged at once).
   */
  flushDue(): void {
    const now = this.now();
    for (const [key, w] of this.windows) {
      if (now - w.start < this.intervalMs) continue;
      if (w.suppressed === 0) {
        this.windows.delete(key);
        continue;
      }
      this.summarize(w, now);
      this.windows.set(key, { verb: w.verb, what: w.what, start: now, suppressed: 0, byReason: new Map() });
    }
  }

  /** When (performance.now()) the next summary is due, or null when none is pending. */
  nextFlush(): number | null {
    let next: number | null = null;
    for (const w of this.windows.values()) {
      if (w.suppressed > 0 && (next === null || w.start + this.intervalMs < next)) next = w.start + this.intervalMs;
    }
    return next;
  }

  /** At exit: the counts not yet logged. */
  flushAll(): void {
    const now = this.now();
    for (const w of this.windows.values()) if (w.suppressed > 0) this.summarize(w, now);
    this.windows.clear();
  }

  private summarize(w: Window, now: number): void {
    const reasons = [...w.byReason].map(([r, n]) => `${r}: ${count(n)}`).join(', ');
    this.log.info('refused', `${w.verb} ${count(w.suppressed)} more ${w.what} in the last ${seconds(now - w.start)} (${reasons})`);
  }
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 ? Math.round(s) : s.toFixed(1)} s`;
}
