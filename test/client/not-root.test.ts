// A zygote started without the privileges its sandbox needs fails at start, naming the layer and
// pointing at `zygote doctor`, instead of starting and then failing every spawn with a raw
// unshare error. Run for real as an unprivileged uid, from a copy of the package that uid can read.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchPackage } from '../helpers/deputy.js';

const NOBODY = 65534;
let scratch: string;
let pkg: string;

beforeAll(() => {
  ({ scratch, pkg } = scratchPackage('zygote-not-root-'));
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** startZygote then one spawn, in a node run as uid; prints what happened as JSON. */
function startAs(uid: number | null): { started: boolean; name?: string; code?: string; message?: string; exit?: unknown } {
  const script = `
    const { startZygote } = await import(${JSON.stringify(join(pkg, 'dist/index.js'))});
    let out;
    try {
      const z = await startZygote({ main: ${JSON.stringify(join(pkg, 'test/fixtures/deputy-main.mjs'))} });
      const c = await z.spawn({ args: [] });
      c.stdout.resume(); c.stderr.resume();
      out = { started: true, exit: (await c.exited).reason };
      await z.close();
    } catch (e) {
      out = { started: false, name: e.name, code: e.code, message: e.message };
    }
    console.log(JSON.stringify(out));
  `;
  const node = [process.execPath, '--input-type=module', '-e', script];
  const argv = uid === null ? node : ['setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', ...node];
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: pkg, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

describe('a zygote without the privileges its sandbox needs', () => {
  it('fails at start with a ZygoteStartError naming the layer and zygote doctor', () => {
    const r = startAs(NOBODY);
    expect(r).toMatchObject({ started: false, name: 'ZygoteStartError', code: 'ERR_ZYGOTE_START' });
    expect(r.message).toMatch(/building the children's root failed \(.*EPERM.*\): the sandbox's mount-namespace layer is not available here[\s\S]*run `zygote doctor`/);
  });

  it('makes zygote run say so in one line, exit 1, with no stack trace', () => {
    writeFileSync(join(scratch, 'in.csv'), 'x\n1\n', { mode: 0o644 });
    writeFileSync(join(scratch, 'step.mjs'), 'export default (t) => t;\n', { mode: 0o644 });
    const r = spawnSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', process.execPath, join(pkg, 'dist/cli.js'), 'run', join(scratch, 'step.mjs'), '--input', join(scratch, 'in.csv')], {
      cwd: pkg,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^zygote run: zygote failed to start: building the children's root failed .*run `zygote doctor`/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('positive control: the same package started as root runs a sandboxed child', () => {
    expect(startAs(null)).toMatchObject({ started: true, exit: 'exit' });
  });
});
