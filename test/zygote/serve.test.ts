// `zygote serve` end to end: the socket, peer checks, logs, shutdown, and connect().
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ZygoteRefusedError, ZygoteStartError } from '../../dist/client/index.js';
import { native } from '../../dist/native/index.js';
import { binary, itNeeds } from '../helpers/host.js';
import { CLI, collect, ECHO_MAIN, isAlive, ROOT, waitFor } from '../helpers/index.js';

const DEPUTY_MAIN = new URL('../fixtures/deputy-main.mjs', import.meta.url).pathname;

interface Served {
  proc: ChildProcess;
  socket: string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Served[] = [];
const dirs: string[] = [];

async function serve(extra: string[] = [], opts: { socket?: string; expectExit?: boolean } = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'zygote-serve-'));
  dirs.push(dir);
  const path = opts.socket ?? join(dir, 'z.sock');
  const proc = spawn(process.execPath, [CLI, 'serve', '--socket', path, '--main', ECHO_MAIN.pathname, ...extra], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const served = { proc, socket: path, stderr: () => err, exit };
  running.push(served);
  // The exact line: "nothing is listening on it" (the stale-socket message) must not match.
  const listening = () => err.includes(`listening on ${path} `);
  await waitFor(() => listening() || proc.exitCode !== null, 15_000, 'the server to listen');
  if (!listening() && !opts.expectExit) throw new Error(`zygote serve exited early: ${err}`);
  return served;
}

afterEach(async () => {
  for (const s of running.splice(0)) {
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill('SIGKILL');
      await s.exit;
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('zygote serve', () => {
  it('serves connect() clients on a 0600 socket, with the configured env and a log line per spawn and exit', async () => {
    const s = await serve(['--preload', 'apache-arrow', '--env', 'A=1', '--env', 'B=x=y']);
    expect(statSync(s.socket).mode & 0o777).toBe(0o600);
    const z = await connect(s.socket);
    // execve: the CLI process itself became the zygote, the parent of each child (its init).
    const waiting = await z.spawn({ args: ['cat'] });
    expect(readFileSync(`/proc/${waiting.pid}/status`, 'utf8')).toMatch(new RegExp(`^PPid:\\s+${s.proc.pid}$`, 'm'));
    waiting.stdin.end();
    expect((await waiting.exited).code).toBe(0);
    const child = await z.spawn({ args: ['whoami'], name: 'who' });
    const out = JSON.parse(await collect(child.stdout));
    expect(out.env).toEqual({ A: '1', B: 'x=y' });
    expect((await child.exited).code).toBe(0);
    await z.close();
    await waitFor(() => /exit id=2 pid=\d+ code=0/.test(s.stderr()), 5000, 'the exit log line');
    expect(s.stderr()).toMatch(new RegExp(`spawn id=2 pid=${child.pid} name="who" for client fd=\\d+ uid=0`));
  });

  it('keeps serving other clients when one client dies, and kills only that client\'s children', async () => {
    const s = await serve();
    const steady = await connect(s.socket);
    const survivor = await steady.spawn({ args: ['hang'] });
    await new Promise((r) => survivor.stdout.once('data', r));
    const doomed = spawn(process.execPath, [new URL('../fixtures/connect-and-hang.mjs', import.meta.url).pathname, s.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { childPid } = JSON.parse(await new Promise<string>((r) => doomed.stdout!.once('data', (d) => r(String(d)))));
    doomed.kill('SIGKILL');
    await waitFor(() => !isAlive(childPid), 5000, "the dead client's child to be killed");
    expect(isAlive(survivor.pid)).toBe(true);
    const next = await steady.spawn({ args: ['exit', 0] });
    expect((await next.exited).code).toBe(0);
    await steady.close();
  });

  it('refuses a peer whose uid is not allowed (SO_PEERCRED) with a ZygoteRefusedError saying why, and says so in its log', async () => {
    const s = await serve(['--allow-uid', '4242']);
    const err = await connect(s.socket, { timeoutMs: 5000 }).catch((e: unknown) => e);
    // Root passes the socket's 0600 mode and ACL; the peer check is what refuses it.
    expect(err).toBeInstanceOf(ZygoteRefusedError);
    expect(err).toBeInstanceOf(ZygoteStartError);
    expect(err).toMatchObject({ code: 'ERR_ZYGOTE_REFUSED', reason: 'not-allowed', limit: null });
    expect((err as Error).message).toContain('refused this connection (not-allowed): uid 0 is not in --allow-uid');
    await waitFor(() => s.stderr().includes('refused connection from uid 0'), 5000, 'the refusal in the log');
  });

  it('positive control: the same server lets an allowed uid in', async () => {
    const s = await serve(['--allow-uid', '4242', '--allow-uid', '0']);
    const z = await connect(s.socket);
    await z.close();
  });

  it('holds at most 64 connections of one uid by default: the next is refused at once, and the zygote serves on', async () => {
    const s = await serve();
    const held: number[] = [];
    try {
      // The backlog keeps their order: the zygote accepts these 64 before the next.
      for (let i = 0; i < 64; i++) held.push(native.connectUnix(s.socket));
      const err = await connect(s.socket, { timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ZygoteRefusedError);
      expect(err).toMatchObject({ reason: 'connections-per-uid', limit: 64 });
      await waitFor(() => s.stderr().includes('refused connection from uid 0'), 5000, 'the refusal in the log');
      expect(s.stderr()).toContain('uid 0 has 64 connections already');
    } finally {
      for (const fd of held.splice(0)) native.close(fd);
    }
    // Positive control: once those are gone (the zygote sees them hang up), it is served again.
    let z = null;
    for (let i = 0; i < 50 && !z; i++) {
      z = await connect(s.socket, { timeoutMs: 5000 }).catch(() => null);
      if (!z) await new Promise((r) => setTimeout(r, 50));
    }
    expect(z).not.toBe(null);
    const child = await z!.spawn({ args: ['exit', 0] });
    expect((await child.exited).code).toBe(0);
    await z!.close();
  });

  it('stops on SIGTERM: kills and reaps its children, removes the socket, exits 0', async () => {
    const s = await serve();
    const z = await connect(s.socket);
    const child = await z.spawn({ args: ['hang'] });
    await new Promise((r) => child.stdout.once('data', r));
    s.proc.kill('SIGTERM');
    expect(await s.exit).toEqual({ code: 0, signal: null });
    expect(isAlive(child.pid)).toBe(false);
    expect(existsSync(s.socket)).toBe(false);
    await expect(child.exited).resolves.toMatchObject({ signal: 'SIGKILL' });
    await z.close();
  });

  it('positive control: replaces a stale socket of its own uid left by a crashed server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-stale-'));
    dirs.push(dir);
    const path = join(dir, 'z.sock');
    native.close(native.listenUnix(path, 1)); // bound, then abandoned: nobody listens
    expect(existsSync(path)).toBe(true);
    const s = await serve([], { socket: path });
    expect(s.stderr()).toContain('removing stale socket');
    const z = await connect(path);
    await z.close();
  });

  it('refuses to start where --socket names a regular file (a typo), and leaves the file as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-typo-'));
    dirs.push(dir);
    const path = join(dir, 'important.txt');
    writeFileSync(path, 'not a socket');
    const s = await serve([], { socket: path, expectExit: true });
    expect((await s.exit).code).toBe(1);
    expect(s.stderr()).toContain(`--socket ${path} exists and is not a socket (it is a regular file): refusing to replace it; remove it or choose another path`);
    expect(readFileSync(path, 'utf8')).toBe('not a socket');
  });

  it("refuses to replace a stale socket that is not its own uid's, and leaves it there", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-foreign-'));
    dirs.push(dir);
    const path = join(dir, 'z.sock');
    native.close(native.listenUnix(path, 1)); // abandoned: nobody listens
    chownSync(path, 4242, 4242);
    const s = await serve([], { socket: path, expectExit: true });
    expect((await s.exit).code).toBe(1);
    expect(s.stderr()).toContain(`--socket ${path} is a socket owned by uid 4242, not by this server's uid 0: refusing to replace it`);
    expect(lstatSync(path).isSocket()).toBe(true);
  });

  it('refuses to start on a socket another zygote is serving', async () => {
    const first = await serve();
    const second = await serve([], { socket: first.socket, expectExit: true });
    expect((await second.exit).code).toBe(1);
    expect(second.stderr()).toContain(`--socket ${first.socket}: another process is already listening on ${first.socket}`);
  });

  itNeeds(binary('unshare', 'util-linux'), "copies a client's mounts from the client's own mount namespace when the zygote runs in another (a sidecar, ip netns exec)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-mntns-'));
    dirs.push(dir);
    const socket = join(dir, 'z.sock');
    const src = mkdtempSync('/var/tmp/zygote-mntns-src-');
    dirs.push(src);
    writeFileSync(join(src, 'hello'), 'from the client');
    const proc = spawn('unshare', ['--mount', '--propagation', 'private', process.execPath, CLI, 'serve', '--socket', socket, '--main', DEPUTY_MAIN], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    running.push({ proc, socket, stderr: () => err, exit });
    await waitFor(() => err.includes(`listening on ${socket} `) || proc.exitCode !== null, 15_000, 'the server to listen');
    expect(statSync(`/proc/${proc.pid}/ns/mnt`).ino).not.toBe(statSync('/proc/self/ns/mnt').ino);
    const z = await connect(socket);
    const child = await z.spawn({ args: ['read', '/tmp/in/hello'], mounts: [{ source: src, target: '/tmp/in' }] });
    expect(JSON.parse(await collect(child.stdout))).toEqual({ ok: true, text: 'from the client' });
    // An output filesystem beside it: the zygote's detached tmpfs, captured from in there too.
    const writer = await z.spawn({ args: ['write', '/output/f', 'through the sidecar'], mounts: [{ source: src, target: '/tmp/in' }], output: {} });
    expect(JSON.parse(await collect(writer.stdout))).toEqual({ ok: true });
    expect(readFileSync(`${writer.output!.path}/f`, 'utf8')).toBe('through the sidecar');
    writer.output!.close();
    await z.close();
  });

  it('explains its usage', async () => {
    const help = spawn(process.execPath, [CLI, 'serve', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const text = await collect(help.stdout!);
    for (const opt of ['--socket <path>', '--main <module>', '--preload <module>', '--env <K=V>', '--allow-uid <uid>']) expect(text).toContain(opt);
    const bad = spawn(process.execPath, [CLI, 'serve', '--socket', '/tmp/x.sock'], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(await collect(bad.stderr!)).toContain('--main is required (or ZYGOTE_MAIN, or `main` in the --config file)');
  });
});

describe('zygote serve --pool', () => {
  it('keeps N children forked ahead and serves spawns with them (the log says so), refilling after each', async () => {
    const s = await serve(['--pool', '2']);
    const z = await connect(s.socket);
    try {
      const pooled = () => readFileSync(`/proc/${s.proc.pid}/task/${s.proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).filter((p) => {
        try {
          // A pool child whose setup is done: its init has split off the step-to-be.
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'zygote-pool' && readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim() !== '';
        } catch {
          return false;
        }
      });
      await waitFor(() => pooled().length === 2, 10_000, 'the pool to fill');
      const ahead = pooled();
      const child = await z.spawn({ args: ['echo-args', 'pooled'] });
      expect(ahead).toContain(child.pid);
      const [out, status] = await Promise.all([collect(child.stdout), child.exited]);
      expect(out).toBe('["pooled"]');
      expect(status.code).toBe(0);
      expect(s.stderr()).toContain(`pid=${child.pid} name="" for client`);
      expect(s.stderr()).toMatch(new RegExp(`spawn id=\\d+ pid=${child.pid} .*\\(from the pool\\)`));
      await waitFor(() => pooled().length === 2, 10_000, 'the pool to refill');
    } finally {
      await z.close();
    }
  });

  it('refuses a --pool outside 1 to 64, and --pool-max-idle without --pool, naming the flag', async () => {
    for (const [args, message] of [
      [['--pool', '65'], /--pool.*1 to 64/],
      [['--pool-max-idle', '100'], /--pool-max-idle needs --pool/],
    ] as const) {
      const s = await serve([...args], { expectExit: true });
      expect((await s.exit).code).not.toBe(0);
      expect(s.stderr()).toMatch(message);
    }
  });
});
