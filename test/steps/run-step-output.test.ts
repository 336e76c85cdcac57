// runStep's /output is an output filesystem of the step's own (spawn({ output })): a tmpfs of
// limits.outputBytes and outputFiles with no host path. A step that writes past either gets
// ENOSPC and a typed outcome ('output-limit'), nothing of it lands under TMPDIR, and whatever it
// makes there (3,000 nested directories) goes without a recursive remover and without a throw.
// Each attack beside the positive control that shows the same step succeeding with room.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromArrays } from 'apache-arrow';
import { runStep, startZygote, stepRunner, type StepOutcome, type Zygote } from '../../dist/index.js';

const HOG = new URL('../fixtures/steps/output-hog.mjs', import.meta.url).pathname;
const MiB = 2 ** 20;

let z: Zygote;
/** TMPDIR of this file's runSteps: a directory of its own, so other tests' steps do not show. */
let tmp: string;
const savedTmpdir = process.env.TMPDIR;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'zygote-output-test-'));
  process.env.TMPDIR = tmp;
  z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
});
afterAll(async () => {
  await z?.close();
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/**
 * What runStep left in this file's TMPDIR: its per-step directories. The step copies
 * (zygote-steps-*, steps/step-copies.ts) are kept for the life of the process by design; what
 * is inside them is one directory per step version, with the module alone.
 */
function stepDirs(): string[] {
  return readdirSync(tmp).filter((name) => !name.startsWith('zygote-steps-'));
}

/** Free bytes of TMPDIR's filesystem. */
function freeInTmpdir(): number {
  const st = statfsSync(tmpdir());
  return st.bavail * st.bsize;
}

/** Runs the hog step; checks it left no directory of runStep's behind, and returns its outcome. */
async function hog(params: Record<string, string | number>, limits: Record<string, number> = {}): Promise<StepOutcome> {
  expect(tmpdir()).toBe(tmp);
  const out = await runStep(z, { module: HOG, params, limits: { wallTimeMs: 60_000, ...limits } });
  expect(stepDirs()).toEqual([]);
  return out;
}

describe('a step that writes more than limits.outputBytes', () => {
  it("gets ENOSPC once outputBytes are written (3 x outputBytes/2): kind 'output-limit', and TMPDIR did not take the bytes", async () => {
    const free = freeInTmpdir();
    const out = await hog({ attack: 'fill', count: 3, bytes: 32 * MiB }, { outputBytes: 64 * MiB });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.kind).toBe('output-limit');
    expect(out.error.message).toContain('the step filled its output filesystem (limits.outputBytes 67108864 bytes, limits.outputFiles 4096 files)');
    expect(out.error.message).toContain('ENOSPC');
    // 64 MiB went to the tmpfs: TMPDIR's filesystem lost far less than that (other tests write too).
    expect(free - freeInTmpdir()).toBeLessThan(32 * MiB);
  });

  it('positive control: with outputBytes 128 MiB the same writes succeed', async () => {
    const out = await hog({ attack: 'fill', count: 3, bytes: 32 * MiB }, { outputBytes: 128 * MiB });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (out.ok) {
      expect(out.table.numRows).toBe(3);
      out.release();
    }
  });
});

describe('a step that makes more than limits.outputFiles files', () => {
  it("stops at the inode cap (4096 by default) trying 100,000: kind 'output-limit'", async () => {
    const out = await hog({ attack: 'files', count: 100_000 });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.kind).toBe('output-limit');
    expect(out.error.message).toContain('limits.outputFiles 4096 files');
  });

  it('positive control: 4,500 files fail under the default cap and succeed with outputFiles 5000', async () => {
    const under = await hog({ attack: 'files', count: 4500 });
    expect(under.ok ? 'ok' : under.error.kind).toBe('output-limit');
    const out = await hog({ attack: 'files', count: 4500 }, { outputFiles: 5000 });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (out.ok) out.release();
  });
});

describe('a step that nests 3,000 directories in its output', () => {
  it('gives a typed outcome (no throw from a cleanup) and leaves nothing behind in TMPDIR', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    let out: StepOutcome;
    try {
      out = await hog({ attack: 'nest', depth: 3000 });
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    // The tree was removed from the output too (the table's mapping keeps that filesystem): no
    // cleanup warning.
    expect(warnings.map((w) => w.message)).toEqual([]);
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (out.ok) {
      expect(out.table.numRows).toBe(3);
      out.release();
    }
  });

  it('positive control: the same 3,000 directories, made in a host directory, break a recursive remover', async () => {
    const root = mkdtempSync(join(tmp, 'nest-'));
    const cwd = process.cwd();
    try {
      process.chdir(root);
      for (let i = 0; i < 3000; i++) {
        mkdirSync('d');
        process.chdir('d');
      }
    } finally {
      process.chdir(cwd);
    }
    let thrown: unknown = null;
    try {
      rmSync(root, { recursive: true, force: true });
    } catch (err) {
      thrown = err;
    }
    // What runStep used to do: the remover itself throws (Node 20: its own stack overflows).
    expect((thrown as Error | null)?.message).toMatch(/Maximum call stack size exceeded|ENAMETOOLONG/);
    const { removeTree } = await import('../../dist/steps/remove-tree.js');
    expect(removeTree(root)).toEqual([]);
    expect(stepDirs()).toEqual([]);
  });
});

describe('an input table held in memory', () => {
  const COUNT = new URL('../fixtures/steps/count.mjs', import.meta.url).pathname;
  const big = () => tableFromArrays({ x: new Float64Array(3 * 2 ** 20) }); // 24 MiB of doubles

  it("is written into the step's output filesystem, and one that does not fit is an 'output-limit' before the step runs", async () => {
    const out = await runStep(z, { module: COUNT, input: big(), limits: { outputBytes: 16 * MiB } });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.kind).toBe('output-limit');
    expect(out.error.message).toMatch(/the input table \(\d+ bytes written when it failed\) does not fit in the step's output filesystem.*limits\.outputBytes 16777216/);
    // The child was ended before its request: nothing of the step ran.
    expect(out.exit).not.toBeNull();
    expect(out.stderr.bytes).toBe(0);
    expect(stepDirs()).toEqual([]);
  });

  it('positive control: with room for it (64 MiB), the step reads the same table', async () => {
    const out = await runStep(z, { module: COUNT, input: big(), limits: { outputBytes: 64 * MiB } });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (!out.ok) return;
    expect(out.table.getChild('rows')!.get(0)).toBe(3 * 2 ** 20);
    out.release();
  });
});
