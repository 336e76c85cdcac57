// The child's filesystem: a fresh root of read-only binds of just what it needs (node, its
// libraries, main's directory, the node_modules it loads from), its own /proc, a private
// size-capped /tmp, and per spawn an input and an output directory. Nothing else of the host
// is there. Each attack with its positive control (the mount-namespace layer skipped, or the
// mount made writable).
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpawnError, startZygote, type Mount, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import { collect } from '../helpers/index.js';

const MAIN = new URL('../fixtures/sandbox-main.mjs', import.meta.url);
const TMP_BYTES = 1 << 20;
let z: Zygote;
let hostDir: string;
let secret: string;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true, sandbox: { tmpBytes: TMP_BYTES } });
  // Outside /tmp, world-readable and world-writable: only the root's make-up can hide it.
  hostDir = mkdtempSync('/var/tmp/zygote-fs-');
  chmodSync(hostDir, 0o777);
  secret = join(hostDir, 'renderer-secret');
  writeFileSync(secret, 'db-password', { mode: 0o644 });
});
afterAll(async () => {
  await z?.close();
  rmSync(hostDir, { recursive: true, force: true });
});

async function run<T>(args: unknown[], skip: SandboxLayer[] = [], mounts: Mount[] = []): Promise<T> {
  const child = await z.spawn({ args, sandbox: { dangerouslySkip: skip }, mounts });
  const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  expect(status.code, err).toBe(0);
  return JSON.parse(out) as T;
}

describe('nothing of the host but what the child needs', () => {
  it("a world-readable secret file of the renderer's is not there: ENOENT", async () => {
    expect(await run(['try-read', secret])).toEqual({ ok: false, code: 'ENOENT' });
  });

  it('positive control (skips mount-namespace): the same child reads it', async () => {
    expect(await run(['try-read', secret], ['mount-namespace'])).toEqual({ ok: true, text: 'db-password' });
  });

  it('/etc (passwd, shadow), /root and /home do not exist; / holds only the root\'s own entries and the binds\' top directories', async () => {
    for (const path of ['/etc/passwd', '/etc/shadow', '/root/.bashrc', '/home']) {
      expect(await run(['try-read', path]), path).toEqual({ ok: false, code: 'ENOENT' });
    }
    const top = await run<string[]>(['ls', '/']);
    for (const name of ['dev', 'proc', 'tmp', 'usr']) expect(top).toContain(name);
    for (const name of ['etc', 'root', 'home', 'var', 'sys', 'boot']) expect(top).not.toContain(name);
  });

  it('positive control (skips mount-namespace): /etc/passwd is readable by the same uid', async () => {
    expect(await run<{ ok: boolean }>(['try-read', '/etc/passwd'], ['mount-namespace'])).toMatchObject({ ok: true });
  });

  it('sees its main module\'s directory, but not the project files beside it', async () => {
    const fixtures = dirname(fileURLToPath(MAIN));
    expect(await run<string[]>(['ls', fixtures])).toContain('sandbox-main.mjs');
    const project = dirname(dirname(fixtures));
    const top = await run<string[]>(['ls', project]);
    expect(top).toContain('node_modules');
    expect(top).not.toContain('README.md');
    expect(top).not.toContain('src');
    // test/ is there only as the path to main's directory: fixtures and nothing else.
    expect(await run<string[]>(['ls', dirname(fixtures)])).toEqual(['fixtures']);
  });

  it("its cwd is the new root's /, and process.cwd() says so; without the new root it keeps the zygote's", async () => {
    expect(await run(['cwd'])).toBe('/');
    expect(await run(['cwd'], ['mount-namespace'])).toBe(process.cwd());
  });

  it('/dev has null, zero, random and urandom and nothing else of the host', async () => {
    expect(await run<string[]>(['ls', '/dev'])).toEqual(['fd', 'null', 'random', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']);
  });
});

describe('read-only', () => {
  it('cannot write into what it sees, even as root of its user namespace: EROFS', async () => {
    const fixtures = dirname(fileURLToPath(MAIN));
    expect(await run(['write', join(fixtures, 'planted'), 10])).toEqual({ ok: false, code: 'EROFS' });
    expect(await run(['write', '/planted', 10])).toEqual({ ok: false, code: 'EROFS' });
    expect(existsSync(join(fixtures, 'planted'))).toBe(false);
  });

  it('a read-only mount of a world-writable directory refuses writes (EROFS) but is readable', async () => {
    const mounts = [{ source: hostDir, target: '/input' }];
    expect(await run(['write', '/input/planted', 10], [], mounts)).toEqual({ ok: false, code: 'EROFS' });
    expect(await run(['try-read', '/input/renderer-secret'], [], mounts)).toEqual({ ok: true, text: 'db-password' });
    expect(existsSync(join(hostDir, 'planted'))).toBe(false);
  });

  it('positive control: the same mount made writable takes the write, and the host sees it, owned by the child\'s uid', async () => {
    const out = mkdtempSync(join(hostDir, 'out-'));
    expect(await run(['write', '/output/result', 10], [], [{ source: out, target: '/output', writable: true }])).toEqual({ ok: true, code: null });
    expect(readFileSync(join(out, 'result'), 'utf8')).toBe('z'.repeat(10));
    expect(statSync(join(out, 'result')).uid).toBe(65534);
  });
});

describe('Landlock, under the mount namespace', () => {
  it('with the mount namespace skipped, Landlock alone refuses a write into a world-writable host directory: EACCES', async () => {
    const target = join(hostDir, 'landlock-planted');
    expect(await run(['write', target, 10], ['mount-namespace'])).toEqual({ ok: false, code: 'EACCES' });
    expect(existsSync(target)).toBe(false);
    // Reading is still allowed: Landlock here guards writes.
    expect(await run(['try-read', secret], ['mount-namespace'])).toEqual({ ok: true, text: 'db-password' });
  });

  it('positive control (skips mount-namespace and landlock): the same write lands on the host', async () => {
    const target = join(hostDir, 'landlock-control');
    expect(await run(['write', target, 10], ['mount-namespace', 'landlock'])).toEqual({ ok: true, code: null });
    expect(readFileSync(target, 'utf8')).toBe('z'.repeat(10));
  });
});

describe('mounts are per spawn', () => {
  it('a child does not see the mounts of another child running at the same time', async () => {
    const a = await z.spawn({ args: ['wait-for', '/input/never', 1000], mounts: [{ source: hostDir, target: '/input' }] });
    // /input is there in every child (an empty mount point of the shared template root), but
    // not what another child has mounted on it.
    expect(await run(['exists', '/input/renderer-secret'], [], [])).toBe(false);
    expect(await run<string[]>(['ls', '/input'], [], [])).toEqual([]);
    expect(JSON.parse(await collect(a.stdout))).toBe(false);
    expect((await a.exited).code).toBe(0);
  });

  it('refuses a bad mount with a SpawnError naming it, and the zygote carries on', async () => {
    const bad: [Mount, RegExp][] = [
      [{ source: 'relative', target: '/x' }, /mounts\[0\]\.source must be an absolute path/],
      [{ source: hostDir, target: 'x' }, /mounts\[0\]\.target must be an absolute path/],
      [{ source: hostDir, target: '/proc/x' }, /overlaps \/proc, \/dev or \/tmp/],
      [{ source: hostDir, target: '/' }, /mounts\[0\]\.target must be a normalized path other than \//],
      [{ source: hostDir, target: '/a/../b' }, /normalized/],
      [{ source: join(hostDir, 'missing'), target: '/x' }, /cannot be used: ENOENT/],
      [{ source: hostDir, target: '/usr' }, /overlaps \/usr/],
      [{ source: hostDir, target: dirname(fileURLToPath(MAIN)) }, /would hide .*sandbox-main\.mjs, a module the zygote loaded/],
    ];
    for (const [mount, message] of bad) {
      const err = await z.spawn({ args: ['exists', '/'], mounts: [mount] }).catch((e: unknown) => e);
      expect(err, JSON.stringify(mount)).toBeInstanceOf(SpawnError);
      expect((err as Error).message).toMatch(message);
    }
    expect(await run(['exists', '/'])).toBe(true);
  });
});

describe('the root template', () => {
  it('a mount onto a directory the template lacks makes the child build its whole root itself, with the same result', async () => {
    const mounts = [{ source: hostDir, target: '/data/in' }];
    expect(await run(['try-read', '/data/in/renderer-secret'], [], mounts)).toEqual({ ok: true, text: 'db-password' });
    expect(await run(['try-read', '/etc/passwd'], [], mounts)).toEqual({ ok: false, code: 'ENOENT' });
    expect(await run(['write', '/data/in/planted', 1], [], mounts)).toEqual({ ok: false, code: 'EROFS' });
  });

  it("only the child that builds its own root runs the 'private mounts' step: a failure there is fail-closed too", async () => {
    const err = await z.spawn({ args: ['exists', '/'], mounts: [{ source: hostDir, target: '/data/in' }], sandbox: { dangerouslyInjectFailure: { step: 'private mounts', errno: 'EPERM' } } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ step: 'private mounts', code: 'EPERM' });
  });
});

describe('private /tmp', () => {
  it("does not see the host's /tmp, and what it writes there never reaches the host", async () => {
    const hostFile = join(tmpdir(), `zygote-host-visible-${process.pid}`);
    writeFileSync(hostFile, 'host');
    try {
      expect(await run(['exists', hostFile])).toBe(false);
      expect(await run(['exists', hostFile], ['mount-namespace'])).toBe(true); // positive control
      const childFile = join('/tmp', `zygote-child-wrote-${process.pid}`);
      expect(await run(['write', childFile, 100])).toEqual({ ok: true, code: null });
      expect(existsSync(childFile)).toBe(false);
    } finally {
      rmSync(hostFile, { force: true });
    }
  });

  it('filling /tmp stops at its size with ENOSPC; the host is untouched', async () => {
    const target = `/tmp/zygote-fill-${process.pid}`;
    expect(await run(['write', target, 4 * TMP_BYTES])).toEqual({ ok: false, code: 'ENOSPC' });
    expect(await run(['write', target, TMP_BYTES / 2])).toEqual({ ok: true, code: null });
    expect(existsSync(target)).toBe(false);
  });

  it('a spawn may set its own /tmp size (limits.tmpBytes)', async () => {
    const child = await z.spawn({ args: ['write', '/tmp/big', 3 * TMP_BYTES], limits: { tmpBytes: 4 * TMP_BYTES } });
    const [out, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(status.code).toBe(0);
    expect(JSON.parse(out)).toEqual({ ok: true, code: null });
  });

  it('positive control (skips mount-namespace): the same large write goes to the host /tmp', async () => {
    const target = join(tmpdir(), `zygote-fill-control-${process.pid}`);
    try {
      expect(await run(['write', target, 4 * TMP_BYTES], ['mount-namespace', 'credentials'])).toEqual({ ok: true, code: null });
      expect(existsSync(target)).toBe(true);
    } finally {
      rmSync(target, { force: true });
    }
  });
});
