// Operating `zygote serve`: --version, structured logs (format, level, file reopened on SIGHUP),
// the drain on SIGTERM (children finish, or end with reason 'shutdown'; a second signal cuts
// it), and `zygote health` (healthy; a stale socket, a removed cgroup, a deleted nftables
// table and a stopping server each unhealthy, each beside the healthy control).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { connect, SpawnError, startZygote, type ExitStatus } from '../../dist/client/index.js';
import { native } from '../../dist/native/index.js';
import { itNeeds, networkTestbed } from '../helpers/host.js';
import { bounded, cgroupDir, CLI, collect, ECHO_MAIN, ROOT, waitFor } from '../helpers/index.js';
import { startServed, stopAllServed } from '../helpers/served.js';

afterEach(stopAllServed);

/** How long the zygote reuses a health answer (zygote/server.ts), plus a margin. */
const HEALTH_CACHE_MS = 1_100;

/** `zygote health --socket`: its exit code and what it printed. */
function health(socket: string, ...extra: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, 'health', '--socket', socket, ...extra], { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
  return { code: r.status, out: r.stdout + r.stderr };
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('zygote --version', () => {
  it("prints package.json's version", () => {
    const r = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});

describe('logs', () => {
  it('--log-format json: one object a line, with time, level and event; a spawn and its exit with pid, name, uid, reason and wallMs', async () => {
    const s = await startServed(['--log-format', 'json']);
    const z = await connect(s.socket);
    const child = await z.spawn({ args: ['echo-args', 'x'], name: 'logged' });
    const [, exit] = await Promise.all([collect(child.stdout), child.exited]);
    expect(exit.code).toBe(0);
    await z.close();
    await waitFor(() => s.stderr().includes('"event":"exit"'), 5_000, 'the exit record');
    const records = jsonLines(s.stderr());
    for (const r of records) {
      expect(new Date(r.time as string).toISOString()).toBe(r.time);
      expect(['error', 'info', 'debug']).toContain(r.level);
      expect(typeof r.event).toBe('string');
      expect(r.zygote).toBe(s.proc.pid);
    }
    expect(records.find((r) => r.event === 'spawn')).toMatchObject({ level: 'info', pid: child.pid, name: 'logged', uid: 65534, clientUid: 0 });
    expect(records.find((r) => r.event === 'exit')).toMatchObject({ pid: child.pid, name: 'logged', reason: 'exit', code: 0, wallMs: expect.any(Number) });
  });

  it('--log-level error: an error is logged, no info line is (the text control logs both)', async () => {
    for (const level of ['error', 'info'] as const) {
      const s = await startServed(['--log-level', level], { silent: level === 'error' });
      // A client that sends garbage: the zygote logs it as an error and drops the client.
      const fd = native.connectUnix(s.socket);
      native.sendPacket(fd, Buffer.from([0, 0, 0, 3, 1, 2, 3]), []);
      await waitFor(() => s.stderr().includes('error: bad frame'), 5_000, 'the bad-frame error line');
      native.close(fd);
      if (level === 'error') expect(s.stderr().split('\n').filter((l) => l !== '' && !l.includes(' error: '))).toEqual([]);
      else expect(s.stderr()).toContain('listening on');
    }
  });

  it('--log-file: appended to, and reopened on SIGHUP (after logrotate moved it); SIGHUP does not stop the server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-log-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'zygote.log');
    const s = await startServed(['--log-file', file], { logFile: file });
    expect(s.stderr()).toBe('');
    renameSync(file, `${file}.1`);
    s.proc.kill('SIGHUP');
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('log reopened'), 5_000, 'the reopened log');
    const z = await connect(s.socket);
    const child = await z.spawn({ args: ['echo-args'] });
    await child.exited;
    await z.close();
    await waitFor(() => readFileSync(file, 'utf8').includes(`exit id=`), 5_000, 'the exit line in the new file');
    expect(readFileSync(`${file}.1`, 'utf8')).toContain('listening on');
    expect(readFileSync(`${file}.1`, 'utf8')).not.toContain('exit id=');
    expect(s.proc.exitCode).toBeNull();
    expect(health(s.socket).code).toBe(0);
  });
});

describe('the drain on SIGTERM', () => {
  it('lets a running child finish, refuses new spawns meanwhile, then exits 0', async () => {
    const s = await startServed(['--drain-ms', '10000']);
    const z = await connect(s.socket);
    const child = await z.spawn({ args: ['sleep', 1500] });
    s.proc.kill('SIGTERM');
    await waitFor(() => s.stderr().includes('shutting down'), 5_000, 'the stop to begin');
    // The socket is gone at once; the connection stays, and new spawns are refused.
    expect(existsSync(s.socket)).toBe(false);
    await expect(z.spawn({ args: ['echo-args'] })).rejects.toThrow(SpawnError);
    expect(await z.health()).toMatchObject({ healthy: false, problems: [expect.stringContaining('shutting down')] });
    const exit = await bounded(child.exited, 10_000, 'the drained child');
    expect(exit).toMatchObject({ code: 0, reason: 'exit' });
    expect(await bounded(s.exit, 10_000, 'the server to exit')).toEqual({ code: 0, signal: null });
  });

  it("kills a child still running when the drain ends: its reason is 'shutdown', not 'signal'", async () => {
    const s = await startServed(['--drain-ms', '400']);
    const z = await connect(s.socket);
    const child = await z.spawn({ args: ['hang'] });
    s.proc.kill('SIGTERM');
    const exit: ExitStatus = await bounded(child.exited, 10_000, 'the child killed by the drain');
    expect(exit).toMatchObject({ reason: 'shutdown', signal: 'SIGKILL' });
    expect(exit.wallMs).toBeGreaterThanOrEqual(400);
    expect((await bounded(s.exit, 10_000, 'the server to exit')).code).toBe(0);
  });

  it('a second SIGTERM ends a long drain at once', async () => {
    const s = await startServed(['--drain-ms', '600000']);
    const z = await connect(s.socket);
    const child = await z.spawn({ args: ['hang'] });
    s.proc.kill('SIGTERM');
    await waitFor(() => s.stderr().includes('shutting down'), 5_000, 'the stop to begin');
    s.proc.kill('SIGTERM');
    expect(await bounded(child.exited, 10_000, 'the child after the second signal')).toMatchObject({ reason: 'shutdown' });
    expect(s.stderr()).toContain('drain cut short');
    await bounded(s.exit, 10_000, 'the server to exit');
  });

  it('an embedded zygote closed by its client drains nothing: its children end at once', async () => {
    const z = await startZygote({ main: ECHO_MAIN });
    const child = await z.spawn({ args: ['hang'] });
    const t0 = performance.now();
    await z.close();
    const exit = await bounded(child.exited, 10_000, 'the child of the closed zygote');
    expect(exit.reason).toBe('killed');
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});

describe('zygote health', () => {
  it('checks at most once a second, whoever asks (each check forks): 50 questions at once, one check', async () => {
    const s = await startServed(['--log-level', 'debug']);
    const z = await connect(s.socket);
    const answers = await Promise.all(Array.from({ length: 50 }, () => z.health()));
    expect(answers.every((a) => a.healthy)).toBe(true);
    // The log line comes on the zygote's stderr, a pipe apart from the answers' socket: wait for it.
    const checks = () => s.stderr().match(/health checked: healthy/g)?.length ?? 0;
    await waitFor(() => checks() >= 1, 5_000, 'the health check to be logged');
    expect(checks()).toBe(1);
    // A second later the next question checks again.
    await new Promise((r) => setTimeout(r, HEALTH_CACHE_MS));
    await z.health();
    await waitFor(() => checks() >= 2, 5_000, 'the second health check to be logged');
    expect(checks()).toBe(2);
    await z.close();
  });

  it('says healthy, with the checks it ran, on the CLI and through the client', async () => {
    const s = await startServed();
    const r = health(s.socket);
    expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/^healthy \(serving, fork, cgroups\)/) });
    const z = await connect(s.socket);
    expect(await z.health()).toEqual({ healthy: true, problems: [], checks: ['serving', 'fork', 'cgroups'] });
    await z.close();
    const embedded = await startZygote({ main: ECHO_MAIN, pool: { size: 1 } });
    expect(await embedded.health()).toEqual({ healthy: true, problems: [], checks: ['serving', 'fork', 'cgroups', 'pool'] });
    await embedded.close();
  });

  it("says unhealthy for a stale socket (the server SIGKILLed), where `test -S` would pass", async () => {
    const s = await startServed();
    expect(health(s.socket).code).toBe(0);
    s.proc.kill('SIGKILL');
    await s.exit;
    expect(existsSync(s.socket)).toBe(true);
    expect(health(s.socket)).toMatchObject({ code: 1, out: expect.stringContaining('nothing is listening on it (a stale socket)') });
    expect(health(join(s.dir, 'none.sock'))).toMatchObject({ code: 1, out: expect.stringContaining('no such socket') });
  });

  it('--wait-ms retries until the server is up', async () => {
    const s = await startServed();
    s.proc.kill('SIGKILL');
    await s.exit;
    // A new server on the same path, started while health is already waiting.
    const cp = spawn(process.execPath, [CLI, 'health', '--socket', s.socket, '--wait-ms', '30000', '--timeout-ms', '2000'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    const waiting = new Promise<{ code: number | null; out: string }>((resolve) => {
      let out = '';
      cp.stdout.on('data', (d) => (out += d));
      cp.once('exit', (code) => resolve({ code, out }));
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(cp.exitCode).toBeNull();
    await startServed([], { socket: s.socket });
    expect(await bounded(waiting, 40_000, 'health --wait-ms')).toMatchObject({ code: 0, out: expect.stringMatching(/^healthy/) });
  });

  it("says unhealthy when its memory cgroup was removed under it, naming it", async (ctx) => {
    const s = await startServed();
    expect(health(s.socket).code).toBe(0);
    const own = cgroupDir(s.proc.pid!, 'memory');
    expect(own).not.toBeNull();
    // cgroup v2 below the root: the zygote lives in its own tree's supervisor leaf, which cannot be removed under it.
    if (own!.endsWith(`/zygote-${s.proc.pid}/supervisor`)) return ctx.skip('the zygote lives inside its cgroup tree here (cgroup v2 below the root)');
    const parent = `${own}/zygote-${s.proc.pid}`;
    expect(existsSync(parent)).toBe(true);
    rmdirSync(parent);
    await new Promise((r) => setTimeout(r, HEALTH_CACHE_MS)); // an answer is reused for a second
    expect(health(s.socket)).toMatchObject({ code: 1, out: expect.stringContaining(`the memory cgroup ${parent} is gone`) });
  });

  // In a network namespace of its own: a networked zygote turns on IPv4 forwarding where it
  // runs, and new namespaces made meanwhile by other tests would inherit it from the host's.
  itNeeds(networkTestbed(), "says unhealthy when its nftables table was deleted under it (--network)", async () => {
    const ns = `zt-health-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns], { timeout: 10_000 });
    onTestFinished(() => void spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 }));
    const inNs = (...cmd: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: 10_000 });
    inNs('ip', 'link', 'set', 'lo', 'up');
    // No cgroups in there (`ip netns exec` remounts /sys): no memory or pids limit by default.
    const s = await startServed(['--network-subnet', '10.203.0.0/24', '--default-memory', 'none', '--default-pids', 'none'], { prefix: ['ip', 'netns', 'exec', ns] });
    onTestFinished(async () => {
      s.proc.kill('SIGKILL');
      await s.exit;
    });
    expect(health(s.socket)).toMatchObject({ code: 0, out: expect.stringContaining('nftables') });
    const del = inNs('nft', 'delete', 'table', 'inet', `zygote_${s.proc.pid}`);
    expect(del.status, del.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, HEALTH_CACHE_MS));
    expect(health(s.socket)).toMatchObject({ code: 1, out: expect.stringContaining(`nftables table inet zygote_${s.proc.pid} is gone`) });
  });
});

