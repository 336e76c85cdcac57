// Running one stress child to its end and classifying it: ok, hung, crashed, wrong output, or
// not spawned at all.
import type { Limits, Zygote } from 'zygote';
import { readAll, TimeoutError, within } from './lib/waits.js';

export type Outcome = 'ok' | 'hung' | 'crashed' | 'wrong' | 'spawnFailed';

export interface ChildResult {
  outcome: Outcome;
  seed: number;
  pid: number | null;
  /** Spawn request to exit (or to the kill, for a hung child). */
  wallMs: number;
  /** What went wrong, for every outcome but ok. */
  detail?: string;
}

/** How long a killed child may take to be reported reaped. */
const KILL_GRACE_MS = 5_000;

export async function runChild(z: Zygote, seed: number, name: string, expected: string, timeoutMs: number, limits: Limits = {}): Promise<ChildResult> {
  const t0 = performance.now();
  let child;
  try {
    child = await z.spawn({ args: [seed], name, limits });
  } catch (err) {
    return { outcome: 'spawnFailed', seed, pid: null, wallMs: performance.now() - t0, detail: (err as Error).message };
  }
  const base = { seed, pid: child.pid };
  child.stdin.end(); // the step reads no input
  const stdout = readAll(child.stdout);
  const stderr = readAll(child.stderr);
  let status;
  try {
    [status] = await within(Promise.all([child.exited, stdout]), timeoutMs, `child ${child.pid} (seed ${seed})`);
  } catch (err) {
    if (!(err instanceof TimeoutError)) {
      // exited rejects only when the zygote is gone, taking the child with it.
      return { ...base, outcome: 'crashed', wallMs: performance.now() - t0, detail: `lost with the zygote: ${(err as Error).message}` };
    }
    // Killed so that it cannot outlive the run; the zygote still reaps it.
    child.kill();
    await within(child.exited, KILL_GRACE_MS, 'reaping a killed child').catch(() => undefined);
    return { ...base, outcome: 'hung', wallMs: performance.now() - t0, detail: err.message };
  }
  const wallMs = performance.now() - t0;
  const errText = await within(stderr, KILL_GRACE_MS, 'stderr').catch(() => '');
  if (status.code !== 0 || status.signal !== null) {
    const how = status.signal !== null ? `signal ${status.signal}` : `exit code ${status.code}`;
    return { ...base, outcome: 'crashed', wallMs, detail: `${how}; stderr: ${errText.slice(-500)}` };
  }
  const out = await stdout;
  if (out !== expected) return { ...base, outcome: 'wrong', wallMs, detail: `stdout ${JSON.stringify(out.slice(0, 200))}, expected ${JSON.stringify(expected)}` };
  return { ...base, outcome: 'ok', wallMs };
}
