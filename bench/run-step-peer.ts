// What every peer of the runStep bench is: something that runs the identity step on a table,
// start to validated finish, and says how long that took. Each peer file makes one kind.
import type { Table } from 'apache-arrow';
import type { StepTimings } from 'zygote';

/** The limits of a limited step: memory and pids, as runStep gets them. */
export const STEP_LIMITS = { memoryBytes: 512 * 2 ** 20, pids: 64 } as const;

/** One cell of the bench: a table, with or without memory and pids limits. */
export interface StepCase {
  /** "10 rows", "1M rows". */
  label: string;
  table: Table;
  limited: boolean;
}

export interface Faults {
  minor: number;
  major: number;
}

/** One measured step. */
export interface Sample {
  ms: number;
  /** The step process's own page faults (it reports them at exit), when it could say. */
  faults: Faults | null;
  /** runStep's own timestamps, when asked for. */
  timings?: StepTimings;
  /** Peer-specific parts of the time (the isolate's start, load, run). */
  parts?: Record<string, number>;
}

/** A live step being held (it waits) so its memory can be read. */
export interface Held {
  /** The step's outermost process (zygote: its pid namespace's init, whose child is the step); null in-process. */
  pid: number | null;
  /** In-process peers: the step's own heap, in bytes. */
  heapBytes?: number;
}

export interface RunningPeer {
  /** A long-lived process the steps depend on (the zygote), whose RSS is a standing cost. */
  residentPid: number | null;
  run(c: StepCase, opts?: { timings?: boolean }): Promise<Sample>;
  /** Runs a step that waits; calls atHold while it does; resolves once it has finished. */
  hold?<T>(c: StepCase, atHold: (h: Held) => T): Promise<T>;
  /** Why it cannot run a limited step here, if it cannot (its limited cells are skipped). */
  noLimits?: string;
  /** What the peer says of itself after the runs (a pool's stats()), if anything. */
  stats?(): unknown;
  close(): Promise<void>;
}

export interface Peer {
  name: string;
  description: string;
  /** A running peer, or why it cannot run here (the bench reports it as skipped). */
  start(): Promise<RunningPeer | { skipped: string }>;
}

const FAULTS_LINE = /^zygote-bench-faults (\d+) (\d+)$/m;

/** The faults line the identity step writes at exit, from its stderr. */
export function faultsFrom(stderr: string): Faults | null {
  const m = FAULTS_LINE.exec(stderr);
  return m ? { minor: Number(m[1]), major: Number(m[2]) } : null;
}

/** The identity step's stderr says it is holding. */
export const HOLD_MARK = 'zygote-bench-hold';

/** Polls until f() is true or ms pass; every wait in the bench ends. */
export async function until(f: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!f()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
