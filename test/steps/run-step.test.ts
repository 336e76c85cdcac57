// runStep(): the renderer's round trip. A good step gives a validated table; every way a
// hostile step can misbehave gives its own error kind, the renderer survives, and the next
// step runs fine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnIn, layoutOf, setInt32, setInt64, validTables, wideTable } from '../fixtures/arrow-files.js';
import { runStep, startZygote, stepRunner, type StepOutcome, type Zygote } from '../../dist/index.js';

const GOOD = fileURLToPath(new URL('../fixtures/steps/double.mjs', import.meta.url));
const HOSTILE = fileURLToPath(new URL('../fixtures/steps/hostile.mjs', import.meta.url));
const input = tableFromArrays({ x: Float64Array.of(1, 2, 3, 4) });
let z: Zygote;
let dir: string;

beforeAll(async () => {
  // The hostile steps import 'zygote' itself (to speak the protocol badly): a step sees only
  // what its zygote loaded, so that is preloaded too.
  z = await startZygote({ main: stepRunner, preload: ['apache-arrow', 'zygote'] });
  dir = mkdtempSync(join(tmpdir(), 'zygote-run-step-'));
});
afterAll(async () => {
  await z?.close();
  rmSync(dir, { recursive: true, force: true });
});

function failure(out: StepOutcome) {
  if (out.ok) throw new Error('expected the step to fail');
  return out.error;
}

/** After every attack: the same zygote still runs a good step. */
async function expectNextStepWorks(): Promise<void> {
  const out = await runStep(z, { module: GOOD, input, params: { label: 'after' } });
  expect(out.ok, out.ok ? '' : `${out.error.kind}: ${out.error.message}`).toBe(true);
}

const attack = (name: string, extra: Record<string, string> = {}, limits = {}) =>
  runStep(z, { module: HOSTILE, input, params: { attack: name, ...extra }, limits: { wallTimeMs: 10_000, ...limits } });

describe('a good step', () => {
  it('returns the validated table, the result, its stderr and the exit', async () => {
    const out = await runStep(z, { module: GOOD, input, params: { label: 'hi' } });
    if (!out.ok) throw new Error(`${out.error.kind}: ${out.error.message}`);
    expect(out.result).toMatchObject({ rows: 4, columns: 2 });
    expect(Array.from(out.table.getChild('x')!.toArray())).toEqual([2, 4, 6, 8]);
    expect(out.table.getChild('label')!.get(0)).toBe('hi');
    expect(out.stderr).toMatchObject({ text: 'double: 4 rows\n', truncated: false });
    expect(out.exit).toMatchObject({ code: 0, reason: 'exit' });
    out.release();
  });

  it('takes its input as the path of an Arrow file too', async () => {
    const path = join(dir, 'input.arrow');
    writeFileSync(path, tableToIPC(input, 'file'));
    const out = await runStep(z, { module: GOOD, input: path, params: {} });
    expect(out.ok && Array.from(out.table.getChild('x')!.toArray())).toEqual([2, 4, 6, 8]);
  });

  it('says where its time went when asked (timings: true): every part measured, adding up to the total; not otherwise', async () => {
    const out = await runStep(z, { module: GOOD, input, params: { label: 't' }, timings: true });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    const t = out.timings!;
    const parts = [t.prepareMs, t.spawnMs, t.requestMs, t.firstByteMs, t.resultMs, t.exitMs, t.outputMs, t.cleanupMs];
    for (const ms of parts) expect(ms).toBeGreaterThanOrEqual(0);
    expect(parts.reduce((a, b) => a! + b!, 0)).toBeCloseTo(t.totalMs, 6);
    // The child ran between the request and its first byte: that part is never empty.
    expect(t.firstByteMs).toBeGreaterThan(0);
    expect(await runStep(z, { module: GOOD, input, params: { label: 'u' } })).not.toHaveProperty('timings');
  });
});

describe('extra files', () => {
  it('are shown read-only beside the input, by name, and nothing else of their directory is', async () => {
    const lookup = join(dir, 'lookup.csv');
    writeFileSync(lookup, 'code,name\n1,one\n');
    writeFileSync(join(dir, 'not-given.txt'), 'secret');
    const FILES = fileURLToPath(new URL('../fixtures/steps/files.mjs', import.meta.url));
    const out = await runStep(z, { module: FILES, input, files: { 'lookup.csv': lookup } });
    if (!out.ok) throw new Error(`${out.error.kind}: ${out.error.message}`);
    // /input holds the extra files alone (an in-memory input table is written to /output).
    expect(out.table.toArray().map((r) => r.toJSON())).toEqual([{ name: 'lookup.csv', text: 'code,name\n1,one\n', input: 'lookup.csv' }]);
  });

  it('refuses a name that is not a plain file name', async () => {
    await expect(runStep(z, { module: GOOD, input, files: { '../x': join(dir, 'lookup.csv') } })).rejects.toThrow(/plain file names/);
  });
});

describe('a step that fails', () => {
  it("throws: kind 'error' with its stack trace", async () => {
    const e = failure(await attack('throw'));
    expect(e.kind).toBe('error');
    expect(e.message).toMatch(/^RangeError: the step broke on purpose\n\s+at .*hostile\.mjs/);
    // The trace names the module where the renderer keeps it, not the child's /step mount.
    expect(e.message).toContain(`file://${HOSTILE}:`);
    expect(e.message).not.toContain('/step/');
    await expectNextStepWorks();
  });

  it("returns something that is not a Table: kind 'error' saying so", async () => {
    expect(failure(await attack('not-a-table'))).toMatchObject({ kind: 'error', message: expect.stringContaining('not an apache-arrow Table') });
  });

  it("exits 3 without a result: kind 'error' with its exit and stderr", async () => {
    const e = failure(await attack('exit-3'));
    expect(e.kind).toBe('error');
    expect(e.message).toContain('exit code 3');
    expect(e.message).toContain('giving up');
  });

  it("loops past its wall time: kind 'timeout'", async () => {
    const out = await runStep(z, { module: HOSTILE, input, params: { attack: 'half-frame' }, limits: { wallTimeMs: 1_000 } });
    expect(failure(out).kind).toBe('timeout');
    await expectNextStepWorks();
  });

  it("runs out of memory under its limit: kind 'oom'", async () => {
    expect(failure(await attack('memory', {}, { memoryBytes: 256 << 20 })).kind).toBe('oom');
    await expectNextStepWorks();
  });

  it("floods stderr past its limit: kind 'output-limit', and the renderer kept only the first stderrBytes", async () => {
    const out = await runStep(z, { module: HOSTILE, input, params: { attack: 'stderr-bomb' }, limits: { wallTimeMs: 10_000, stderrBytes: 8 << 20 } });
    expect(failure(out).kind).toBe('output-limit');
    expect(out.stderr.text.length).toBe(64 * 1024);
    await expectNextStepWorks();
  });

  it("floods stdout: kind 'protocol' or 'output-limit' (refused at its first bytes, or cut at the cap, whichever comes first), then killed", async () => {
    const e = failure(await attack('flood'));
    expect(['protocol', 'output-limit']).toContain(e.kind);
    await expectNextStepWorks();
  });

  it('floods stderr: the step succeeds and stderr is kept up to its cap, marked truncated', async () => {
    const out = await runStep(z, { module: HOSTILE, input, params: { attack: 'stderr-flood' }, stderrBytes: 1000 });
    expect(out.ok).toBe(true);
    expect(out.stderr).toMatchObject({ truncated: true, bytes: 1 << 20 });
    expect(out.stderr.text.length).toBe(1000);
  });
});

describe('a step that breaks the result protocol', () => {
  it.each([
    ['garbage', /does not decode|claims \d+ bytes/],
    ['huge-header', /claims 2147483647 bytes/],
    ['result-then-more', /trailing|follow/],
    ['wrong-type', /exactly one|StepResult/],
    ['deep', /deep|depth|nest/],
    ['exit-silently', /0 (of|bytes)|no bytes|before/],
  ])("%s: kind 'protocol', with what was wrong", async (name, message) => {
    const t0 = performance.now();
    const e = failure(await attack(name));
    expect(e.kind, e.message).toBe('protocol');
    expect(e.message).toMatch(message);
    if (name === 'huge-header') expect(performance.now() - t0).toBeLessThan(5_000); // refused at the header, not after the sleep
    await expectNextStepWorks();
  });
});

describe('a step that leaves a bad output file', () => {
  it.each(['truncated-arrow', 'not-arrow', 'lying-rows', 'hard-link'])("%s: kind 'invalid-output'", async (name) => {
    const e = failure(await attack(name));
    expect(e.kind, e.message).toBe('invalid-output');
    await expectNextStepWorks();
  });

  // Malformed Arrow files made by the Arrow tests' own tools, written by the step as its output.
  const malformed: [string, () => { bytes: Uint8Array; rows: number; columns: number }, RegExp][] = [
    ['a footer without a schema', () => {
      const t = validTables().strings!;
      const bytes = tableToIPC(t, 'file');
      new DataView(bytes.buffer, bytes.byteOffset).setUint16(layoutOf(bytes).footerVtable + 4 + 2 * 1, 0, true);
      return { bytes, rows: t.numRows, columns: t.numCols };
    }, /no schema/],
    ['a batch whose lengths lie', () => {
      const bytes = tableToIPC(wideTable(1, 4), 'file');
      const m = layoutOf(bytes).batches[0]!;
      setInt64(bytes, m.lengthPos!, 1000);
      setInt64(bytes, m.nodes[0]!.pos, 1000);
      return { bytes, rows: 1000, columns: 1 };
    }, /less than the 4000 its length needs/],
    ['a dictionary that does not match its indices', () => {
      const t = validTables().dictionaries!;
      const bytes = tableToIPC(t, 'file');
      const layout = layoutOf(bytes);
      setInt32(bytes, columnIn(layout.batches[0]!, t.schema.fields, 0).buffers[1]!.start + 4, 1000);
      return { bytes, rows: t.numRows, columns: t.numCols };
    }, /index 1000 at row 1 is outside dictionary/],
  ];
  it.each(malformed)("writes %s: kind 'invalid-output', saying what is wrong", async (_what, make, message) => {
    const { bytes, rows, columns } = make();
    const out = await runStep(z, { module: HOSTILE, input, params: { attack: 'write-bytes', bytes: Buffer.from(bytes).toString('base64'), rows, columns } });
    const e = failure(out);
    expect(e.kind, e.message).toBe('invalid-output');
    expect(e.message).toMatch(message);
    await expectNextStepWorks();
  });

  it("makes its output a symlink to a renderer file: kind 'invalid-output', and the file is not read", async () => {
    const secret = join(dir, 'renderer-secret.arrow');
    writeFileSync(secret, tableToIPC(tableFromArrays({ x: Float64Array.of(7, 7, 7) }), 'file'));
    const e = failure(await attack('symlink', { target: secret }));
    expect(e.kind).toBe('invalid-output');
    expect(e.message).toMatch(/symbolic link/);
  });

  it("cannot hard-link a file from outside its output directory (EXDEV): kind 'error'", async () => {
    const e = failure(await attack('link-input'));
    expect(e).toMatchObject({ kind: 'error', message: expect.stringContaining('link refused: EXDEV') });
  });
});

describe('the sandbox', () => {
  it("a sandbox step that fails: kind 'sandbox', and no step code ran", async () => {
    const strict = await startZygote({ main: stepRunner, dangerouslyAllowUnsandboxed: true });
    try {
      const out = await runStep(strict, { module: GOOD, input, sandbox: { dangerouslyInjectFailure: { step: 'seccomp', errno: 'EPERM' } } });
      expect(failure(out)).toMatchObject({ kind: 'sandbox', message: expect.stringContaining('seccomp') });
      expect(out.exit).toBeNull();
      // Timed, the parts it never reached are null; its preparation and clean-up are measured.
      const timed = await runStep(strict, { module: GOOD, input, timings: true, sandbox: { dangerouslyInjectFailure: { step: 'seccomp', errno: 'EPERM' } } });
      expect(timed.timings).toMatchObject({ prepareMs: expect.any(Number), spawnMs: null, firstByteMs: null, exitMs: null, cleanupMs: expect.any(Number) });
    } finally {
      await strict.close();
    }
  });
});
