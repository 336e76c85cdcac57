// `zygote serve` is no confused deputy: a client gets from it nothing its own uid could not
// do. The real CLI runs as root with --allow-uid N; the client is a real process running as the
// unprivileged uid N (setpriv), importing the built package. Each attack is paired with a
// positive control: the same request where the client's own rights allow it (its own files),
// or root's own client asking for the same thing.
//
// The checkout may sit in a directory N cannot enter, so the package (hard links where the
// filesystem allows: no data copied) and the fixtures are laid out in a 0755 scratch directory
// under /var/tmp, and the server runs from there too, so both sides load the same files.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asClient as asDeputyClient, scratchPackage, type ClientRun } from '../helpers/deputy.js';
import { bounded, ROOT, waitFor } from '../helpers/index.js';

/** The unprivileged client's uid, and one the server does not list. */
const N = 23456;
const UNLISTED = 23457;

let scratch: string;
let pkg: string;
/** N's own directory, and root's things it must not get at. */
let mine: string;
let rootOnly: string;
let privateDir: string;
let rootDir: string;
let victim: string;
const servers: ChildProcess[] = [];

/** `zygote serve` from the scratch package, as root, allowing root and N; resolves once it listens. */
async function serve(name: string, args: string[]): Promise<string> {
  const socket = join(scratch, `${name}.sock`);
  const cp = spawn(process.execPath, [join(pkg, 'dist/cli.js'), 'serve', '--socket', socket, '--allow-uid', '0', '--allow-uid', String(N), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(cp);
  let err = '';
  cp.stderr!.on('data', (d) => (err += d));
  await waitFor(() => err.includes(`listening on ${socket} `) || cp.exitCode !== null, 20_000, `zygote serve ${name} to listen`);
  if (cp.exitCode !== null) throw new Error(`zygote serve ${name} exited: ${err}`);
  return socket;
}

function asClient(uid: number, socket: string, ops: unknown[]): Promise<ClientRun> {
  return asDeputyClient(pkg, uid, socket, ops);
}

const spawnOp = (args: unknown[], mounts: unknown[]) => ({ kind: 'spawn', args, mounts });
const rawOp = (args: unknown[], mounts: unknown[]) => ({ kind: 'raw-spawn', args, mounts });

let socket: string;

beforeAll(async () => {
  ({ scratch, pkg } = scratchPackage('zygote-deputy-'));
  mine = join(scratch, 'mine');
  mkdirSync(mine);
  writeFileSync(join(mine, 'own-secret'), 'N only', { mode: 0o600 });
  chownSync(join(mine, 'own-secret'), N, N);
  chownSync(mine, N, N);
  rootOnly = join(scratch, 'root-only');
  writeFileSync(rootOnly, 'root secret', { mode: 0o600 });
  privateDir = join(scratch, 'private');
  mkdirSync(privateDir, { mode: 0o700 });
  writeFileSync(join(privateDir, 'secret'), 'behind a 0700 directory', { mode: 0o644 });
  rootDir = join(scratch, 'root-dir');
  mkdirSync(rootDir, { mode: 0o755 });
  writeFileSync(join(rootDir, 'keep'), 'root data', { mode: 0o644 });
  victim = join(scratch, 'victim');
  mkdirSync(victim, { mode: 0o755 });
  socket = await serve('deputy', ['--main', join(pkg, 'test/fixtures/deputy-main.mjs')]);
});

afterAll(async () => {
  for (const cp of servers) {
    if (cp.exitCode !== null || cp.signalCode !== null) continue;
    const exited = new Promise((resolve) => cp.once('exit', resolve));
    cp.kill('SIGTERM');
    await bounded(exited, 10_000, 'zygote serve to stop').catch(() => cp.kill('SIGKILL'));
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('--allow-uid N lets uid N connect, and nobody else', () => {
  it('uid N connects and spawns: the 0600 socket carries an ACL entry for N', async () => {
    const st = statSync(socket);
    expect(st.uid).toBe(0);
    // With an ACL the group bits show its mask (rw), while the owning group itself has nothing.
    expect(st.mode & 0o777).toBe(0o660);
    const run = await asClient(N, socket, [spawnOp(['read', '/in/own-secret'], [{ source: mine, target: '/in' }])]);
    expect(run.uid).toBe(N);
    expect(run.results).toEqual([{ ok: true, out: { ok: true, text: 'N only' }, stderr: '', code: 0 }]);
  });

  it('an unlisted uid cannot even connect: EACCES from connect(2)', async () => {
    const run = await asClient(UNLISTED, socket, [spawnOp(['ls', '/'], [])]);
    expect(run.results[0]).toMatchObject({ ok: false, name: 'ZygoteStartError' });
    expect(run.results[0].message).toMatch(/cannot connect to the zygote at .*: connect failed: EACCES/);
  });
});

describe("a client's mount sources are opened by the client, as itself", () => {
  it('a root-only 0600 file is refused to uid N: a SpawnError naming the path and the reason', async () => {
    const run = await asClient(N, socket, [spawnOp(['read', '/in/x'], [{ source: rootOnly, target: '/tmp/x' }]), spawnOp(['read', '/in/x'], [{ source: join(privateDir, 'secret'), target: '/tmp/x' }])]);
    expect(run.results[0]).toMatchObject({ ok: false, name: 'SpawnError', step: 'mount source', code: 'ERR_ZYGOTE_SPAWN', errno: 'EACCES' });
    expect(run.results[0].message).toBe(`spawn child failed at mount source: mounts[0].source ${rootOnly} is not readable by this process: EACCES (Permission denied)`);
    // Inside a directory N may not enter: the client's own open fails, whether the file is there or not.
    expect(run.results[1]).toMatchObject({ ok: false, name: 'SpawnError', step: 'mount source', code: 'ERR_ZYGOTE_SPAWN', errno: 'EACCES' });
    expect(run.results[1].message).toContain(`mounts[0].source ${join(privateDir, 'secret')} cannot be opened by this process: EACCES`);
    const missing = await asClient(N, socket, [spawnOp(['ls', '/'], [{ source: join(privateDir, 'no-such-file'), target: '/tmp/x' }])]);
    expect(missing.results[0]).toMatchObject({ errno: 'EACCES', message: expect.stringContaining('cannot be opened by this process: EACCES') });
  });

  it("positive control: root's own client mounting the same file reads it", async () => {
    const run = await asClient(0, socket, [spawnOp(['read', '/tmp/x'], [{ source: rootOnly, target: '/tmp/x' }])]);
    expect(run.results).toEqual([{ ok: true, out: { ok: true, text: 'root secret' }, stderr: '', code: 0 }]);
  });

  it("positive control: uid N mounting its own 0600 file reads it (the mount shows N's files as the child's)", async () => {
    const run = await asClient(N, socket, [spawnOp(['read', '/tmp/x'], [{ source: join(mine, 'own-secret'), target: '/tmp/x' }])]);
    expect(run.results[0]).toMatchObject({ ok: true, out: { ok: true, text: 'N only' } });
  });

  it("a client that skips the library's checks (O_PATH fds by hand) still cannot read the root-only file: EACCES in the step", async () => {
    const run = await asClient(N, socket, [rawOp(['read', '/tmp/x'], [{ source: rootOnly, target: '/tmp/x' }])]);
    // The zygote takes the fd (N could reach the path), but through a mount idmapped to N's
    // ids root's file belongs to nobody the step is: it has the rights N has, none.
    expect(run.results[0]).toMatchObject({ ok: true, out: { ok: false, code: 'EACCES' } });
  });

  it('a root-owned directory keeps its owner, mode and contents after a writable-mount attempt', async () => {
    const before = statSync(rootDir);
    const run = await asClient(N, socket, [
      spawnOp(['write', '/out/planted', 'x'], [{ source: rootDir, target: '/out', writable: true }]),
      rawOp([['write', '/out/planted', 'x'], ['append', '/out/keep', 'x'], ['chmod', '/out', 0o777], ['chmod', '/out/keep', 0o666]], [{ source: rootDir, target: '/out', writable: true }]),
    ]);
    expect(run.results[0]).toMatchObject({ ok: false, name: 'SpawnError', step: 'mount source', code: 'ERR_ZYGOTE_SPAWN', errno: 'EACCES' });
    expect(run.results[0].message).toContain(`${rootDir} is not readable and writable by this process: EACCES`);
    // Root's files show as nobody's (unmapped): no write, and a chmod is EOVERFLOW.
    expect(run.results[1]).toMatchObject({ ok: true, out: [{ ok: false, code: 'EACCES' }, { ok: false, code: 'EACCES' }, { ok: false, code: 'EOVERFLOW' }, { ok: false, code: 'EOVERFLOW' }] });
    const after = statSync(rootDir);
    expect({ uid: after.uid, gid: after.gid, mode: after.mode }).toEqual({ uid: before.uid, gid: before.gid, mode: before.mode });
    expect(readdirSync(rootDir)).toEqual(['keep']);
    expect(readFileSync(join(rootDir, 'keep'), 'utf8')).toBe('root data');
    expect(statSync(join(rootDir, 'keep'))).toMatchObject({ uid: 0, mode: 0o100644 });
  });

  it("positive control: uid N's own directory, writable, takes the step's file, which is N's on the host (nothing chowned)", async () => {
    const out = join(mine, 'out');
    mkdirSync(out, { mode: 0o700 });
    chownSync(out, N, N);
    const run = await asClient(N, socket, [spawnOp(['write', '/out/result', 'from the step'], [{ source: out, target: '/out', writable: true }])]);
    expect(run.results[0]).toMatchObject({ ok: true, out: { ok: true } });
    expect(readFileSync(join(out, 'result'), 'utf8')).toBe('from the step');
    expect(statSync(join(out, 'result')).uid).toBe(N);
    expect(statSync(out)).toMatchObject({ uid: N, mode: 0o40700 });
  });

  it('sources on sysfs, procfs and devtmpfs are refused: a SpawnError naming the filesystem', async () => {
    const run = await asClient(N, socket, [
      spawnOp(['ls', '/tmp/x'], [{ source: '/sys/kernel/mm', target: '/tmp/x' }]),
      spawnOp(['ls', '/tmp/x'], [{ source: '/proc/1', target: '/tmp/x' }]),
      spawnOp(['ls', '/tmp/x'], [{ source: '/dev', target: '/tmp/x' }]),
    ]);
    for (const [i, fs] of ['sysfs', 'procfs', 'devtmpfs'].entries()) {
      expect(run.results[i]).toMatchObject({ ok: false, name: 'SpawnError', step: 'mount source', code: 'ERR_ZYGOTE_SPAWN', errno: 'EPERM' });
      expect(run.results[i].message).toContain(`is on a pseudo filesystem (${fs}): EPERM`);
    }
  });

  it("a client that skips the library's checks gets a procfs source refused by the child: no step code runs", async () => {
    const run = await asClient(N, socket, [rawOp(['ls', '/tmp/x'], [{ source: '/proc/1', target: '/tmp/x' }]), rawOp(['ls', '/tmp/x'], [{ source: '/sys/kernel/mm', target: '/tmp/x' }])]);
    expect(run.results[0]).toMatchObject({ ok: false, kind: 'spawnFailed', step: 'mounts[0]: pseudo filesystem (procfs)', errnoName: 'EPERM', sandbox: true });
    expect(run.results[1]).toMatchObject({ ok: false, kind: 'spawnFailed', step: 'mounts[0]: pseudo filesystem (sysfs)', errnoName: 'EPERM', sandbox: true });
  });

  it('positive control: the same client by hand, with a directory of its own, gets its step run', async () => {
    const run = await asClient(N, socket, [rawOp(['read', '/tmp/x/own-secret'], [{ source: mine, target: '/tmp/x' }])]);
    expect(run.results[0]).toMatchObject({ ok: true, out: { ok: true, text: 'N only' }, code: 0 });
  });
});

describe('mount points are made without following symlinks', () => {
  it('a loop swapping a directory of the mount for a symlink, beside spawns with a nested target, creates nothing outside', async () => {
    const dir = join(mine, 'race');
    mkdirSync(dir);
    chownSync(dir, N, N);
    const run = await asClient(N, socket, [{ kind: 'race', dir, victim, spawns: 150 }]);
    const outcomes = run.results[0].outcomes as Record<string, number>;
    // Nothing was made where the symlink pointed, by root or anyone.
    expect(readdirSync(victim)).toEqual([]);
    // The race was real: some spawns found the directory, some found the symlink (ENOTDIR or
    // ELOOP: never followed) or the name missing mid-rename (ENOENT), and those were refused
    // before any step code ran. A step that ran may find the name renamed away since (ENOENT).
    const refusal = /^mounts\[1\]: mount point: E(LOOP|NOTDIR|NOENT)$/;
    expect(outcomes['ran (saw inner)'] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(0);
    const refused = Object.entries(outcomes).filter(([k]) => refusal.test(k));
    expect(refused.reduce((n, [, c]) => n + c, 0), JSON.stringify(outcomes)).toBeGreaterThan(0);
    expect(Object.keys(outcomes).every((k) => k.startsWith('ran (') || refusal.test(k)), JSON.stringify(outcomes)).toBe(true);
    expect(existsSync(join(victim, 'inner'))).toBe(false);
  });
});

describe('an output filesystem for an unprivileged client', () => {
  it("holds what the step wrote as N's, whatever its mode: N reads a 0600 file, opens up a 0500 directory and removes it all", async () => {
    const steps = [
      ['write', '/output/secret', 'N only'],
      ['chmod', '/output/secret', 0o600],
      ['mkdir', '/output/locked', 0o700],
      ['write', '/output/locked/inner', 'x'],
      ['chmod', '/output/locked/inner', 0o000],
      ['chmod', '/output/locked', 0o500],
      ['stat', '/output/secret'],
    ];
    const run = await asClient(N, socket, [{ kind: 'output', args: steps }]);
    const r = run.results[0];
    expect(r).toMatchObject({ ok: true, code: 0, text: 'N only', owner: { uid: N, gid: N, mode: 0o600 }, lockedMode: 0o500, left: [] });
    // Positive control, the child's view: the same file is its own (root of its user namespace,
    // which is the sandbox's uid on the host), through the idmap.
    expect(r.child.slice(0, 6).every((o: { ok: boolean }) => o.ok)).toBe(true);
    expect(r.child[6]).toMatchObject({ ok: true, uid: 0, gid: 0 });
  });
});

describe('runStep() from an unprivileged client', () => {
  it("runs a step as uid N: its output filesystem is N's, read through its fd", async () => {
    const stepSocket = await serve('steps', ['--main', join(pkg, 'dist/steps/step-runner.js'), '--preload', 'apache-arrow']);
    const module = join(mine, 'double.mjs');
    copyFileSync(join(ROOT, 'test/fixtures/steps/double.mjs'), module);
    chownSync(module, N, N);
    const run = await asClient(N, stepSocket, [{ kind: 'run-step', module, rows: [1, 2, 3] }]);
    expect(run.results[0]).toEqual({ ok: true, rows: [2, 4, 6] });
  });
});
