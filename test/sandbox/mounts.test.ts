// A spawn's mounts, from the step's side: they are idmapped to the client (here root, an
// embedded zygote), so what the step writes is the client's on the host; it can never make a
// set-user-ID file there; and mount points are never made inside a client's directory, nor
// reached through a symlink in it. Each attack beside its positive control.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError, startZygote, type Mount, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import { collect } from '../helpers/index.js';

const MAIN = new URL('../fixtures/deputy-main.mjs', import.meta.url);
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
let z: Zygote;
let dir: string;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true });
  dir = mkdtempSync('/var/tmp/zygote-mounts-');
});
afterAll(async () => {
  await z?.close();
  rmSync(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function run(args: unknown[], mounts: Mount[], skip: SandboxLayer[] = []): Promise<any> {
  const child = await z.spawn({ args, mounts, sandbox: { dangerouslySkip: skip } });
  const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  expect(status.code, err).toBe(0);
  return JSON.parse(out);
}

describe('set-user-ID and set-group-ID bits', () => {
  it("a step cannot put one on a file in its writable mount (the file is its client's, root's here): EPERM", async () => {
    const out = mkdtempSync(join(dir, 'out-'));
    const mounts = [{ source: out, target: '/output', writable: true }];
    const r = await run([['write', '/output/f', 'x'], ['chmod', '/output/f', 0o4755], ['create', '/output/g', 0o4755], ['mkdir', '/output/d', 0o2755], ['chmod', '/output/f', 0o755]], mounts);
    expect(r).toEqual([{ ok: true }, { ok: false, code: 'EPERM' }, { ok: false, code: 'EPERM' }, { ok: false, code: 'EPERM' }, { ok: true }]);
    expect(statSync(join(out, 'f'))).toMatchObject({ uid: 0, mode: 0o100755 });
    expect(existsSync(join(out, 'g'))).toBe(false);
    expect(existsSync(join(out, 'd'))).toBe(false);
  });

  it('positive control (skips seccomp): the same chmod makes a set-user-ID file of root on the host', async () => {
    const out = mkdtempSync(join(dir, 'control-'));
    chmodSync(out, 0o700);
    try {
      const r = await run([['write', '/output/f', 'x'], ['chmod', '/output/f', 0o4755]], [{ source: out, target: '/output', writable: true }], ['seccomp']);
      expect(r).toEqual([{ ok: true }, { ok: true }]);
      const st = statSync(join(out, 'f'));
      expect(st.uid).toBe(0);
      expect(st.mode & (S_ISUID | S_ISGID)).toBe(S_ISUID);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('mount points', () => {
  it('are made on the child\'s own /tmp, parents and all', async () => {
    const src = mkdtempSync(join(dir, 'src-'));
    writeFileSync(join(src, 'hello'), 'hi');
    expect(await run(['read', '/tmp/a/b/c/hello'], [{ source: src, target: '/tmp/a/b/c' }])).toEqual({ ok: true, text: 'hi' });
  });

  it("are never made inside a client's mount: one that is not there is a SandboxError naming the mount", async () => {
    const outer = mkdtempSync(join(dir, 'outer-'));
    const inner = mkdtempSync(join(dir, 'inner-'));
    const err = await z.spawn({ args: ['ls', '/'], mounts: [{ source: outer, target: '/data', writable: true }, { source: inner, target: '/data/sub/x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ step: 'mounts[1]: mount point', code: 'ERR_ZYGOTE_SANDBOX', errno: 'ENOENT' });
    expect((err as Error).message).toBe(`sandbox step mounts[1]: mount point failed: ENOENT (No such file or directory) (mounts[1].source ${inner})`);
    expect(readdirSync(outer)).toEqual([]);
  });

  it('positive control: where the client made the mount point, the nested mount is there', async () => {
    const outer = mkdtempSync(join(dir, 'outer-'));
    const inner = mkdtempSync(join(dir, 'inner-'));
    mkdirSync(join(outer, 'sub/x'), { recursive: true });
    writeFileSync(join(inner, 'hello'), 'nested');
    expect(await run(['read', '/data/sub/x/hello'], [{ source: outer, target: '/data', writable: true }, { source: inner, target: '/data/sub/x' }])).toEqual({ ok: true, text: 'nested' });
  });

  it("are not reached through a symlink in a client's mount: refused, and nothing is made where it points", async () => {
    const outer = mkdtempSync(join(dir, 'outer-'));
    const inner = mkdtempSync(join(dir, 'inner-'));
    const victim = mkdtempSync(join(dir, 'victim-'));
    mkdirSync(join(victim, 'x'));
    symlinkSync(victim, join(outer, 'sub'));
    // The root is built before pivot_root here (/data is not in the template): an absolute
    // link would still lead into the host's tree if it were followed.
    const err = await z.spawn({ args: ['ls', '/'], mounts: [{ source: outer, target: '/data', writable: true }, { source: inner, target: '/data/sub/x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ step: 'mounts[1]: mount point', code: 'ERR_ZYGOTE_SANDBOX', errno: 'ENOTDIR' });
    expect(readdirSync(join(victim, 'x'))).toEqual([]);
  });
});
