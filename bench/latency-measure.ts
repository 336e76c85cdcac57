// One latency sample and one memory sample of a running variant, each bounded in time.
import { readTreePrivateMemory, type PrivateMemory } from './lib/procfs.js';
import { firstChunk, within } from './lib/waits.js';
import type { RunningVariant, Step, StepMode } from './latency-variants.js';

/** Milliseconds from the spawn request to the first byte on the step's stdout. */
export async function timeToFirstByte(variant: RunningVariant, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  return withStep(variant, 'exit', timeoutMs, () => performance.now() - t0);
}

/** The private memory of a step that is alive and has written its first byte. */
export async function stepMemory(variant: RunningVariant, timeoutMs: number): Promise<PrivateMemory> {
  return withStep(variant, 'hold', timeoutMs, (step) => readTreePrivateMemory(step.pid));
}

/**
 * Launches a step, waits for its first byte, calls atFirstByte, then closes its stdin and
 * waits for it to go. A step that misses a deadline is killed, and the sample fails.
 */
async function withStep<T>(variant: RunningVariant, mode: StepMode, timeoutMs: number, atFirstByte: (step: Step) => T): Promise<T> {
  const step = await within(variant.launch(mode), timeoutMs, `launching a ${mode} step`);
  // A step may be gone before its stdin is closed; EPIPE then is expected, not an error.
  step.stdin.on('error', () => undefined);
  try {
    await within(firstChunk(step.stdout), timeoutMs, `the first byte of step ${step.pid}`);
    const value = atFirstByte(step);
    step.stdout.resume();
    step.stdin.end();
    await within(step.exited, timeoutMs, `the exit of step ${step.pid}`);
    return value;
  } catch (err) {
    step.kill();
    await within(step.exited, timeoutMs, `the exit of killed step ${step.pid}`).catch(() => undefined);
    throw err;
  }
}
