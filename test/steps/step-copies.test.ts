// runStep's copies of single-file steps (steps/step-copies.ts): one directory per content of a
// module, reused by every run of that content, a new one for a module rewritten in place (even
// at the same size within one timestamp tick), all removed when the process exits.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStep, startZygote, stepRunner, type Zygote } from '../../dist/index.js';

let z: Zygote;
let tmp: string;
let steps: string;
const savedTmpdir = process.env.TMPDIR;
const input = tableFromArrays({ x: Float64Array.of(1, 2) });

beforeAll(async () => {
  // Set before this process's first runStep: its copies are made here.
  tmp = mkdtempSync(join(tmpdir(), 'zygote-copies-test-'));
  process.env.TMPDIR = tmp;
  steps = mkdtempSync(join(tmp, 'src-'));
  z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
});
afterAll(async () => {
  await z?.close();
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  rmSync(tmp, { recursive: true, force: true });
});

/** A step returning { v: value }; the same length for every one-digit value. */
function stepSource(value: number): string {
  return `import { tableFromArrays } from 'apache-arrow';\nexport default () => tableFromArrays({ v: Int32Array.of(${value}) });\n`;
}

async function valueOf(module: string): Promise<number> {
  const out = await runStep(z, { module, input });
  if (!out.ok) throw new Error(`${out.error.kind}: ${out.error.message}`);
  const v = out.table.getChild('v')!.get(0) as number;
  out.release();
  return v;
}

/** The copy directories and what each holds. */
function copies(): Record<string, string[]> {
  const [root, ...more] = readdirSync(tmp).filter((n) => n.startsWith('zygote-steps-'));
  expect(more).toEqual([]);
  if (!root) return {};
  return Object.fromEntries(readdirSync(join(tmp, root)).map((d) => [d, readdirSync(join(tmp, root, d))]));
}

describe("runStep's copies of single-file steps", () => {
  it('makes one copy for runs of the same content, read-only and alone in its directory', async () => {
    const module = join(steps, 'one.mjs');
    writeFileSync(module, stepSource(1));
    for (let i = 0; i < 3; i++) expect(await valueOf(module)).toBe(1);
    const made = copies();
    expect(Object.values(made)).toEqual([['one.mjs']]);
    const root = readdirSync(tmp).find((n) => n.startsWith('zygote-steps-'))!;
    const file = join(tmp, root, Object.keys(made)[0], 'one.mjs');
    expect(statSync(file).mode & 0o777).toBe(0o444);
    expect(readFileSync(file, 'utf8')).toBe(stepSource(1));
  });

  it('runs the new content of a module rewritten in place at the same size at once (the copy is keyed by content, not timestamps)', async () => {
    const module = join(steps, 'two.mjs');
    writeFileSync(module, stepSource(2));
    expect(await valueOf(module)).toBe(2);
    const before = Object.keys(copies()).length;
    // Same path, same size, within the same timestamp tick as like as not.
    writeFileSync(module, stepSource(3));
    expect(await valueOf(module)).toBe(3);
    expect(Object.keys(copies()).length).toBe(before + 1);
    // Back to the first content: its copy is reused.
    writeFileSync(module, stepSource(2));
    expect(await valueOf(module)).toBe(2);
    expect(Object.keys(copies()).length).toBe(before + 1);
  });

  it('removes every copy when the process exits', () => {
    const own = mkdtempSync(join(tmp, 'exit-'));
    const module = join(steps, 'one.mjs');
    const script = `
      import { runStep, startZygote, stepRunner } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      import { tableFromArrays } from 'apache-arrow';
      const z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
      const out = await runStep(z, { module: ${JSON.stringify(module)}, input: tableFromArrays({ x: Float64Array.of(1) }) });
      await z.close();
      console.log(JSON.stringify({ ok: out.ok, during: (await import('node:fs')).readdirSync(process.env.TMPDIR) }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: own }, encoding: 'utf8', timeout: 60_000, cwd: new URL('../..', import.meta.url).pathname });
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { ok: boolean; during: string[] };
    expect(seen.ok).toBe(true);
    // Control: the copy was there while the process ran.
    expect(seen.during.some((n) => n.startsWith('zygote-steps-'))).toBe(true);
    expect(readdirSync(own)).toEqual([]);
  });
});
