// The child's root holds exactly what the zygote loaded: the module files of main, the preloads
// and the zygote itself (with the package.json files Node reads for them), node and its
// libraries, and nothing else of the directories they live in. A renderer's .env beside its
// main, a secret beside a step module and a package nobody imported stay out. Each attack
// beside its positive control (the mount namespace skipped: the host's view).
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { tableFromArrays } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStep, startZygote, stepRunner, type SandboxLayer, type Zygote } from '../../dist/index.js';
import { collect } from '../helpers/index.js';

let dir: string;
let z: Zygote;
let steps: Zygote;

/** A main that reads a file, lists a directory or imports a module when asked, and says what happened. */
const MAIN_SOURCE = `
import { readFileSync, readdirSync } from 'node:fs';
import { marker } from 'loaded-pkg';
export default async function main(action, arg) {
  let out;
  try {
    if (action === 'read') out = { ok: true, text: readFileSync(arg, 'utf8') };
    else if (action === 'list') out = { ok: true, names: readdirSync(arg).sort() };
    else if (action === 'import') out = { ok: true, marker: (await import(arg)).marker, same: (await import(arg)).marker === marker };
  } catch (e) {
    out = { ok: false, code: e.code };
  }
  process.stdout.write(JSON.stringify(out));
}
`;

function write(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o644 });
}

beforeAll(async () => {
  // World-traversable (the positive controls read it as the child's uid), not under the host's /tmp.
  dir = mkdtempSync('/var/tmp/zygote-exact-root-');
  chmodSync(dir, 0o755);
  write(join(dir, 'package.json'), JSON.stringify({ name: 'renderer', type: 'module' }));
  write(join(dir, 'main.mjs'), MAIN_SOURCE);
  write(join(dir, '.env'), 'DATABASE_PASSWORD=hunter2\n');
  for (const pkg of ['loaded-pkg', 'unloaded-pkg']) {
    mkdirSync(join(dir, 'node_modules', pkg), { recursive: true, mode: 0o755 });
    write(join(dir, 'node_modules', pkg, 'package.json'), JSON.stringify({ name: pkg, type: 'module', exports: './index.js' }));
    write(join(dir, 'node_modules', pkg, 'index.js'), `export const marker = ${JSON.stringify(pkg)} + ':' + Math.random();\n`);
    write(join(dir, 'node_modules', pkg, 'secret.txt'), `secret of ${pkg}\n`);
  }
  chmodSync(join(dir, 'node_modules'), 0o755);
  z = await startZygote({ main: join(dir, 'main.mjs'), preload: ['loaded-pkg'], dangerouslyAllowUnsandboxed: true });
  steps = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
});
afterAll(async () => {
  await z?.close();
  await steps?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function run<R>(args: unknown[], skip: SandboxLayer[] = []): Promise<R> {
  const child = await z.spawn({ args, sandbox: { dangerouslySkip: skip } });
  const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  expect(status, err).toMatchObject({ code: 0, reason: 'exit' });
  return JSON.parse(out) as R;
}

describe("beside the zygote's main", () => {
  it("the renderer's .env is not in the child's root: ENOENT", async () => {
    expect(await run(['read', join(dir, '.env')])).toEqual({ ok: false, code: 'ENOENT' });
  });
  it('positive control (skips mount-namespace): the same child reads it', async () => {
    expect(await run(['read', join(dir, '.env')], ['mount-namespace'])).toEqual({ ok: true, text: 'DATABASE_PASSWORD=hunter2\n' });
  });

  it("main's directory shows only what was loaded: main, the package.json Node read, node_modules", async () => {
    expect(await run(['list', dir])).toEqual({ ok: true, names: ['main.mjs', 'node_modules', 'package.json'] });
    expect(await run(['list', join(dir, 'node_modules')])).toEqual({ ok: true, names: ['loaded-pkg'] });
    expect(await run(['list', join(dir, 'node_modules', 'loaded-pkg')])).toEqual({ ok: true, names: ['index.js', 'package.json'] });
  });
});

describe('in node_modules', () => {
  it('a package nobody imported is not there: its files are ENOENT and importing it fails', async () => {
    expect(await run(['read', join(dir, 'node_modules', 'unloaded-pkg', 'secret.txt')])).toEqual({ ok: false, code: 'ENOENT' });
    expect(await run(['import', 'unloaded-pkg'])).toEqual({ ok: false, code: 'ERR_MODULE_NOT_FOUND' });
  });
  it('positive control (skips mount-namespace): the same child reads and imports it', async () => {
    expect(await run(['read', join(dir, 'node_modules', 'unloaded-pkg', 'secret.txt')], ['mount-namespace'])).toEqual({ ok: true, text: 'secret of unloaded-pkg\n' });
    expect(await run(['import', 'unloaded-pkg'], ['mount-namespace'])).toMatchObject({ ok: true, marker: expect.stringMatching(/^unloaded-pkg:/) });
  });

  it("a file of a loaded package that was never loaded is not there; the preloaded module is the zygote's own instance", async () => {
    expect(await run(['read', join(dir, 'node_modules', 'loaded-pkg', 'secret.txt')])).toEqual({ ok: false, code: 'ENOENT' });
    const a = await run<{ ok: boolean; marker: string; same: boolean }>(['import', 'loaded-pkg']);
    const b = await run<{ ok: boolean; marker: string; same: boolean }>(['import', 'loaded-pkg']);
    // Evaluated once, in the zygote: every child holds that evaluation, not a fresh one.
    expect(a).toMatchObject({ ok: true, same: true });
    expect(b.marker).toBe(a.marker);
  });
});

describe('beside a step module (runStep)', () => {
  const table = tableFromArrays({ x: Int32Array.from([1, 2, 3]) });

  function stepDir(name: string, files: Record<string, string>): string {
    const d = join(dir, 'steps', name);
    mkdirSync(d, { recursive: true, mode: 0o755 });
    for (const [f, text] of Object.entries(files)) write(join(d, f), text);
    return d;
  }

  // Reads a path and fails with what happened, or returns the table: the outcome says which.
  const PROBE = `
import { readFileSync } from 'node:fs';
export default function (table, params) {
  for (const p of params.paths) {
    try { readFileSync(p); } catch (e) { if (e.code !== 'ENOENT') throw e; continue; }
    throw new Error('read ' + p);
  }
  return table;
}
`;

  it("another file beside a single-file step is not shown to it, at /step nor at its host path", async () => {
    const d = stepDir('user-1', { 'step.mjs': PROBE, 'other-users-data.csv': 'secret\n' });
    const out = await runStep(steps, { module: join(d, 'step.mjs'), input: table, params: { paths: ['/step/other-users-data.csv', join(d, 'other-users-data.csv')] } });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (out.ok) out.release();
  });

  it('positive control: the same step reading its own module file sees it (the probe does read what is there)', async () => {
    const d = stepDir('user-2', { 'step.mjs': PROBE });
    const out = await runStep(steps, { module: join(d, 'step.mjs'), input: table, params: { paths: ['/step/step.mjs'] } });
    // (Its message names the module as the renderer knows it: /step/step.mjs is put back as its path.)
    expect(out).toMatchObject({ ok: false, error: { kind: 'error', message: expect.stringContaining(`read ${join(d, 'step.mjs')}`) } });
  });

  it('a step that is a package of its own (a package.json beside it) imports its own files', async () => {
    const d = stepDir('user-3', {
      'package.json': JSON.stringify({ type: 'module' }),
      'helper.js': 'export const double = (t) => t;\n',
      'step.js': "import { double } from './helper.js';\nexport default (table) => double(table);\n",
    });
    const out = await runStep(steps, { module: join(d, 'step.js'), input: table });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (out.ok) out.release();
  });

  it("a packaged step's stack trace names its files where the renderer keeps them", async () => {
    const d = stepDir('user-5', {
      'package.json': JSON.stringify({ type: 'module' }),
      'helper.js': "export const fail = () => { throw new Error('helper failed'); };\n",
      'step.js': "import { fail } from './helper.js';\nexport default () => fail();\n",
    });
    const out = await runStep(steps, { module: join(d, 'step.js'), input: table });
    expect(out).toMatchObject({ ok: false, error: { kind: 'error', message: expect.stringContaining(`file://${d}/helper.js:`) } });
  });

  it('a step importing a package its zygote did not load gets a clear error naming the remedy', async () => {
    const d = stepDir('user-4', { 'step.mjs': "import 'commander';\nexport default (t) => t;\n" });
    const out = await runStep(steps, { module: join(d, 'step.mjs'), input: table });
    expect(out).toMatchObject({ ok: false, error: { kind: 'error', message: expect.stringMatching(/Cannot find package 'commander'[\s\S]*preload the package/) } });
  });

  it("the renderer's step directories are left as they were", () => {
    // The renderer's own tree is untouched by runStep (it copies, never moves or chmods the original).
    expect(readdirSync(join(dir, 'steps')).sort()).toEqual(['user-1', 'user-2', 'user-3', 'user-4', 'user-5']);
  });
});

describe("a zygote whose modules live under the host's /tmp (a checkout there, as CI's is)", () => {
  it("copies them in although the root's staging point hides /tmp, and shows them over the child's own /tmp", async () => {
    const under = mkdtempSync(join(tmpdir(), 'zygote-under-tmp-'));
    chmodSync(under, 0o755);
    try {
      write(join(under, 'package.json'), JSON.stringify({ name: 'under-tmp', type: 'module' }));
      mkdirSync(join(under, 'node_modules', 'loaded-pkg'), { recursive: true });
      write(join(under, 'node_modules', 'loaded-pkg', 'package.json'), JSON.stringify({ name: 'loaded-pkg', type: 'module', exports: './index.js' }));
      write(join(under, 'node_modules', 'loaded-pkg', 'index.js'), "export const marker = 'under /tmp';\n");
      write(join(under, 'main.mjs'), MAIN_SOURCE);
      write(join(under, 'secret.txt'), 'not loaded\n');
      const t = await startZygote({ main: join(under, 'main.mjs'), preload: ['loaded-pkg'] });
      try {
        const ask = async (args: unknown[]) => {
          const child = await t.spawn({ args });
          const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
          expect(status, err).toMatchObject({ code: 0, reason: 'exit' });
          return JSON.parse(out) as unknown;
        };
        expect(await ask(['import', 'loaded-pkg'])).toMatchObject({ ok: true, marker: 'under /tmp', same: true });
        expect(await ask(['list', under])).toEqual({ ok: true, names: ['main.mjs', 'node_modules', 'package.json'] });
        expect(await ask(['read', join(under, 'secret.txt')])).toEqual({ ok: false, code: 'ENOENT' });
      } finally {
        await t.close();
      }
    } finally {
      rmSync(under, { recursive: true, force: true });
    }
  });
});

