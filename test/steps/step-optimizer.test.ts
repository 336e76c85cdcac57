// A child pauses V8's optimizing compiler for the runtime's own one-shot work (native/optimizer.ts)
// and resumes it for the step: the step's hot code, at its module's top level and in its
// default export, is still optimized, from a fresh fork and from a pool child. The control
// pauses the compiler from inside the step and sees the same code stay unoptimized, so the check
// can tell the two apart.
import { fileURLToPath } from 'node:url';
import { tableFromArrays } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStep, startZygote, stepRunner, type Zygote } from '../../dist/index.js';

const STEP = fileURLToPath(new URL('../fixtures/steps/optimizer-status.mjs', import.meta.url));
const input = tableFromArrays({ x: Int32Array.of(1) });
const zygotes: Record<string, Zygote> = {};

beforeAll(async () => {
  zygotes.fork = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
  zygotes.pool = await startZygote({ main: stepRunner, preload: ['apache-arrow'], pool: { size: 2 } });
});
afterAll(async () => {
  await Promise.all(Object.values(zygotes).map((z) => z.close()));
});

async function statuses(z: Zygote, pause: boolean): Promise<{ topLevel: boolean; inStep: boolean }> {
  const out = await runStep(z, { module: STEP, input, params: { pause } });
  if (!out.ok) throw new Error(`${out.error.kind}: ${out.error.message}\n${out.stderr.text}`);
  const row = { topLevel: out.table.getChild('topLevel')!.get(0) as boolean, inStep: out.table.getChild('inStep')!.get(0) as boolean };
  out.release();
  return row;
}

describe.each(['fork', 'pool'])('a step run by a %s child', (kind) => {
  it("gets its hot code optimized, at its module's top level and in its function", async () => {
    expect(await statuses(zygotes[kind], false)).toEqual({ topLevel: true, inStep: true });
  });

  it('control: with the compiler paused in the step, the same code stays unoptimized', async () => {
    expect(await statuses(zygotes[kind], true)).toEqual({ topLevel: true, inStep: false });
  });
});
