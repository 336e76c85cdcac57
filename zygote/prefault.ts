// Learning which pages a claimed child writes, so pool children copy them before their claim.
//
// On these machines a copy-on-write fault costs 10-16 us and a claimed step took ~1,200 of
// them, most before its first byte. A learner, a pool child taken out of the pool, runs main's
// rehearsal (its optional `rehearse` export: for the step runner, one whole step's path on
// in-memory files) and stops; the zygote then reads which of its pages are its own now (present
// and exclusively mapped, /proc/PID/pagemap bits 63 and 56: a page still shared with the zygote
// was never written) and kills it. Later pool children copy those ranges
// (MADV_POPULATE_WRITE, native/prefault.cc) before they say they are ready, off any claim's
// path. Soft-dirty bits would say the same, but these kernels lack them.
//
// Reads cost too: a forked child's page-table entries start "not accessed", and on these VMs
// the first access through each traps to the hypervisor (6 us a read, measured; no fault is
// counted). Which pages the learner read is in no /proc file, so the learner measures it
// itself as its last act: it times one read of each page of its readable private mappings
// (memory and regular files) that it has an entry for, and those that read fast were accessed
// since its fork (native/pretouch.cc). It sends them with its answer, and pool children read
// them once (native/pretouch.h) before they are ready.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** The most a pool child copies ahead: 8,192 pages (32 MiB). */
export const MAX_PREFAULT_PAGES = 8192;
/** The most a pool child reads ahead: 16,384 pages (64 MiB). */
export const MAX_PRETOUCH_PAGES = 16384;
/** A learner's answer: its word, a newline, then its accessed pages as float64 [start, length] pairs (at most 8,192 ranges). */
export const MAX_LEARNER_ANSWER_BYTES = 64 + 8192 * 16;
const PAGE = 4096;
const PRESENT = 1n << 63n;
const EXCLUSIVE = 1n << 56n;

/** [start, length, ...] byte ranges, as native forkChild takes them. */
export type PrefaultRanges = number[];

/**
 * The pages pid has written since it was forked, as merged ranges: in its private writable
 * anonymous mappings (the JS heap, malloc's heap, its stack), present and mapped by it alone.
 * At most MAX_PREFAULT_PAGES pages, the lowest addresses first.
 */
export function writtenPages(pid: number): { ranges: PrefaultRanges; pages: number } {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  const ranges: PrefaultRanges = [];
  let pages = 0;
  try {
    for (const line of maps.split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const [, from, to, perms, inode, path] = m;
      if (perms[0] !== 'r' || perms[1] !== 'w' || perms[3] !== 'p') continue;
      if (inode !== '0' || (path !== '' && path !== '[heap]' && path !== '[stack]')) continue;
      const start = BigInt(`0x${from}`);
      const count = Number((BigInt(`0x${to}`) - start) / BigInt(PAGE));
      const entries = Buffer.alloc(count * 8);
      const n = readSync(fd, entries, 0, entries.length, (start / BigInt(PAGE)) * 8n);
      let run = -1;
      const flush = (end: number) => {
        if (run < 0) return;
        const len = Math.min(end - run, MAX_PREFAULT_PAGES - pages);
        if (len > 0) {
          ranges.push(Number(start) + run * PAGE, len * PAGE);
          pages += len;
        }
        run = -1;
      };
      for (let i = 0; i < n / 8; i++) {
        const v = entries.readBigUInt64LE(i * 8);
        const own = (v & PRESENT) !== 0n && (v & EXCLUSIVE) !== 0n;
        if (own && run < 0) run = i;
        if (!own) flush(i);
      }
      flush(n / 8);
      if (pages >= MAX_PREFAULT_PAGES) break;
    }
  } finally {
    closeSync(fd);
  }
  return { ranges, pages };
}

/** The learner's answer, as it sends it on its claim socket. */
export function encodeLearnerAnswer(said: 'rehearsed' | 'failed', accessed: readonly number[]): Buffer {
  const pairs = Buffer.from(Float64Array.from(accessed).buffer);
  return Buffer.concat([Buffer.from(`${said}\n`), pairs]);
}

/**
 * Reads a learner's answer: its word, and the ranges it read (checked: whole pages, in order,
 * none past 2^47; a malformed list is dropped, the word kept).
 */
export function decodeLearnerAnswer(data: Buffer): { said: string; accessed: PrefaultRanges } {
  const eol = data.indexOf(0x0a);
  if (eol < 0) return { said: data.toString(), accessed: [] };
  const said = data.subarray(0, eol).toString();
  const rest = data.subarray(eol + 1);
  if (rest.length % 16 !== 0) return { said, accessed: [] };
  const copy = new Float64Array(rest.length / 8);
  Buffer.from(copy.buffer).set(rest);
  const accessed = Array.from(copy);
  let end = 0;
  for (let i = 0; i < accessed.length; i += 2) {
    const [start, length] = [accessed[i], accessed[i + 1]];
    const ok = Number.isSafeInteger(start) && Number.isSafeInteger(length) && start % PAGE === 0 && length > 0 && length % PAGE === 0 && start >= end && start + length <= 2 ** 47;
    if (!ok) return { said, accessed: [] };
    end = start + length;
  }
  return { said, accessed };
}

/** The pid a pidfd refers to (its fdinfo), or null. */
export function pidOfPidfd(pidfd: number): number | null {
  const m = /^Pid:\s+(-?\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'));
  const pid = m ? Number(m[1]) : -1;
  return pid > 0 ? pid : null;
}

/** How often the serve loop looks for a ready pool child to learn from while it wants one. */
export const LEARNER_POLL_MS = 50;
/** A learner is killed if it has not rehearsed by then. */
export const LEARN_TIMEOUT_MS = 10_000;
/** Learned again after this many pool forks: the zygote's heap moves a little as it serves. */
export const RELEARN_AFTER_FORKS = 200;

/**
 * The serve loop's side of learning: when to take a learner, what pool forks copy. One learner
 * at a time, only for a main that can rehearse; until the first one has rehearsed, pool children
 * copy nothing.
 */
export class PrefaultLearner {
  /** What the next pool fork copies. */
  private ranges: PrefaultRanges = [];
  /** What the next pool fork reads. */
  private accessed: PrefaultRanges = [];
  private forksSince = 0;
  private learned = false;
  /** Counts the ranges learned: a pool child records the one it copied. */
  generation = 0;
  learner: { pid: number; claimFd: number; stepPidfd: number; since: number } | null = null;

  constructor(private readonly canRehearse: boolean) {}

  /** Whether to take a ready pool child out of the pool to learn from now. */
  get wantsLearner(): boolean {
    return this.canRehearse && this.learner === null && (!this.learned || this.forksSince >= RELEARN_AFTER_FORKS);
  }

  /**
   * A pool child is being forked: the ranges it copies, those it reads, and the generation it
   * records. While a learner is wanted and the pool holds no blank child (generation 0), the
   * child is blank: it copies and reads nothing, so that what a learner reports was touched by
   * its rehearsal alone (a child that read the last lesson ahead would report it all again,
   * and lessons would only ever grow).
   */
  forFork(poolHasBlank: boolean): { prefault: PrefaultRanges; pretouch: PrefaultRanges; generation: number } {
    const blank = this.wantsLearner && !poolHasBlank;
    this.forksSince++;
    if (blank) return { prefault: [], pretouch: [], generation: 0 };
    return { prefault: this.ranges, pretouch: this.accessed, generation: this.generation };
  }

  /**
   * The learner answered ("rehearsed", "failed") or went away (null): learns what it wrote,
   * and takes what it says it read, if it rehearsed. Returns a line for the log. The caller
   * kills it.
   */
  finish(said: string | null, accessed: PrefaultRanges = []): string {
    const l = this.learner!;
    this.learner = null;
    this.learned = true;
    this.forksSince = 0;
    if (said !== 'rehearsed') return `the prefault learner (pid ${l.pid}) did not rehearse (${said ?? 'it went away'}): pool children copy ${this.ranges.length / 2} ranges as before`;
    const pid = pidOfPidfd(l.stepPidfd);
    if (pid === null) return `the prefault learner (pid ${l.pid}) exited before it could be read`;
    const { ranges, pages } = writtenPages(pid);
    this.adopt(ranges, accessed);
    let read = 0;
    for (let i = 1; i < accessed.length; i += 2) read += accessed[i] / PAGE;
    return `learned from a rehearsal (pid ${pid}): pool children copy ${pages} pages in ${ranges.length / 2} ranges and read ${read} pages in ${accessed.length / 2} ranges before their claim`;
  }

  /** Takes a lesson: what pool children forked from now on copy (written) and read (accessed). */
  adopt(written: PrefaultRanges, accessed: PrefaultRanges): void {
    this.ranges = written;
    this.accessed = accessed;
    this.learned = true;
    this.forksSince = 0;
    this.generation++;
  }
}
