// What the soak's parent and its client processes (soak-client.ts) say over the fork IPC channel.
import type { SpawnKind } from './soak-plan.js';

/** How a spawn ended, against what its plan expected (soak-plan.ts). */
export type Outcome = 'ok' | 'spawnFailed' | 'wrongExit' | 'wrongOutput' | 'hung' | 'lost';
export const OUTCOMES: readonly Outcome[] = ['ok', 'spawnFailed', 'wrongExit', 'wrongOutput', 'hung', 'lost'];
export type Counts = Record<Outcome, number>;

/** The client's start-up argument (argv[2], JSON). */
export interface ClientConfig {
  index: number;
  socket: string;
  network: boolean;
  /** A spawn not exited this long after its request is killed and counted hung. */
  childTimeoutMs: number;
}

export interface Failure {
  i: number;
  kind: SpawnKind;
  outcome: Outcome;
  detail: string;
}

export type ToClient =
  /** Run spawns first, first+stride, ... below end, `concurrency` at a time. */
  | { type: 'run'; phase: string; first: number; stride: number; end: number; concurrency: number }
  /** Close the connection and exit. */
  | { type: 'close' };

export type FromClient =
  | { type: 'ready'; pid: number; uid: number }
  | { type: 'progress'; phase: string; done: number }
  | { type: 'done'; phase: string; counts: Counts; byKind: Partial<Record<SpawnKind, number>>; failures: Failure[] }
  /** Something outside any one spawn failed (connect, close): the run fails. */
  | { type: 'error'; message: string };

export function emptyCounts(): Counts {
  return { ok: 0, spawnFailed: 0, wrongExit: 0, wrongOutput: 0, hung: 0, lost: 0 };
}
