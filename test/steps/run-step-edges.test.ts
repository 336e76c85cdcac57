// The edges of a step a new user hits first: a memory limit too small for Node, and a step that
// dies before it reads its request (which used to reach the renderer as a raw EPIPE).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeStepRequest, MIN_MEMORY_BYTES, runStep, startZygote, stepRunner, talkToStep, type Zygote } from '../../dist/index.js';
import { ECHO_MAIN } from '../helpers/index.js';

const DOUBLE = new URL('../fixtures/steps/double.mjs', import.meta.url).pathname;
const MiB = 2 ** 20;

let steps: Zygote;
let echo: Zygote;

beforeAll(async () => {
  steps = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
  echo = await startZygote({ main: ECHO_MAIN });
});
afterAll(async () => {
  await steps?.close();
  await echo?.close();
});

describe('a memory limit too small for a Node child', () => {
  it('is refused up front, by spawn and runStep alike, naming the option and the floor', async () => {
    expect(MIN_MEMORY_BYTES).toBe(32 * MiB);
    await expect(echo.spawn({ args: ['exit', 0], limits: { memoryBytes: 16 * MiB } })).rejects.toThrow(/`limits\.memoryBytes` to be at least 33554432 \(32 MiB\)/);
    await expect(runStep(steps, { module: DOUBLE, limits: { memoryBytes: 4 * MiB } })).rejects.toThrow(TypeError);
    await expect(startZygote({ main: ECHO_MAIN, limits: { memoryBytes: MiB } })).rejects.toThrow(/at least 33554432/);
  });

  it('positive control: at the floor a step runs, every time (20 in a row: some runs of children peak at twice the usual)', async () => {
    const { tableFromArrays } = await import('apache-arrow');
    const peaks: string[] = [];
    for (let i = 0; i < 20; i++) {
      const out = await runStep(steps, { module: DOUBLE, input: tableFromArrays({ x: Int32Array.from([1, 2, 3]) }), limits: { memoryBytes: MIN_MEMORY_BYTES } });
      peaks.push(out.exit?.memoryPeakBytes ? `${(out.exit.memoryPeakBytes / MiB).toFixed(1)} MiB` : '?');
      expect(out.ok, out.ok ? '' : `step ${i + 1}: ${out.error.message} (peaks so far: ${peaks.join(', ')})`).toBe(true);
      if (out.ok) out.release();
    }
  });
});

describe('a step module that is not there', () => {
  it('is a TypeError naming the path and the reason, before anything starts', async () => {
    const err = await runStep(steps, { module: '/no/such/step.mjs' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe('Expected `module` to be the path of a readable step module, got "/no/such/step.mjs": ENOENT');
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    await expect(runStep(steps, { module: '/tmp' })).rejects.toThrow(/which is not a regular file/);
  });
});

describe('a step that dies before it reads its request', () => {
  it('gives an outcome with its exit, not a raw EPIPE thrown at the renderer', async () => {
    // A request larger than a pipe's buffer: the write is still pending when the child exits 3.
    const request = encodeStepRequest({ module: '/step/x.mjs', params: { big: 'x'.repeat(512 * 1024) }, outputPath: '/output/output.arrow', files: [] });
    const child = await echo.spawn({ args: ['exit', 3] });
    const io = await talkToStep({ stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited: child.exited, kill: () => child.kill() }, request, { resultTimeoutMs: 10_000, stderrBytes: 4096 });
    expect(io.result).toBeNull();
    expect(io.protocolError?.reason).toBe('truncated');
    expect(io.exit).toMatchObject({ code: 3, reason: 'exit' });
  });
});
