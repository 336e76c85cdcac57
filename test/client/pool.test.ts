// The warm pool (startZygote({ pool })): a spawn is served by a child forked before it was
// asked for, which gets every per-spawn layer at its claim (stdio, mounts, limits, uid) and
// is never reused; what a fresh fork makes per process (randomness, its pid view) is its own.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError, startZygote, type Zygote } from '../../dist/client/index.js';
import { collect, ECHO_MAIN, isAlive, waitFor } from '../helpers/index.js';

const DEPUTY_MAIN = new URL('../fixtures/deputy-main.mjs', import.meta.url);
let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN, pool: { size: 2 }, sandbox: { uidRange: { start: 310_000, count: 8 } } });
});
afterAll(async () => {
  await z?.close();
});

/** Pids of the zygote's idle pool children (their comm is "zygote-pool"), dead ones not yet reaped left out. */
function poolPids(zpid: number): number[] {
  const children = readFileSync(`/proc/${zpid}/task/${zpid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.filter((pid) => {
    if (!isAlive(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'zygote-pool';
    } catch {
      return false;
    }
  });
}

/** Pool children whose setup is done: their init has split off the step-to-be. */
function readyPoolPids(zpid: number): number[] {
  return poolPids(zpid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() !== '';
    } catch {
      return false;
    }
  });
}

/**
 * Waits until the pool holds n children that have split off their step and said they are ready
 * (stats().poolIdle: a pool child whose step exists may still be setting up, and a spawn then
 * forks fresh), and returns them.
 */
async function readyPool(zy: Zygote, n: number, what: string): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = readyPoolPids(zy.pid);
    // The same children before and after the zygote says they are ready (not one that left meanwhile).
    if (pids.length === n && (await zy.stats()).poolIdle === n && String(readyPoolPids(zy.pid)) === String(pids)) return pids;
    if (Date.now() > deadline) throw new Error(`timed out after 10000 ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** When a process started, in clock ticks since boot (/proc/PID/stat field 22). */
function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

async function run(zy: Zygote, args: unknown[], opts: Parameters<Zygote['spawn']>[0] = {}) {
  const child = await zy.spawn({ ...opts, args });
  const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  return { child, stdout, stderr, status };
}

describe('a warm pool', () => {
  it('keeps its size of children forked ahead, and serves a spawn with one of them (forked before the spawn was asked for)', async () => {
    const ahead = await readyPool(z, 2, 'the pool to fill');
    const before = ahead.map(startTicks);
    // Ticks are 10 ms: wait two so a child forked for this spawn would start later than these.
    await new Promise((r) => setTimeout(r, 30));
    const child = await z.spawn({ args: ['sleep', 200] });
    expect(ahead).toContain(child.pid);
    expect(startTicks(child.pid)).toBe(before[ahead.indexOf(child.pid)]);
    const [out, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(out).toBe('sleeping\n');
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
    // Refilled, with a new child: one child, one spawn.
    await waitFor(() => poolPids(z.pid).length === 2 && !poolPids(z.pid).includes(child.pid), 10_000, 'the pool to refill');
  });

  it('serves a spawn with no memory and no pids limit too, measured by the cgroup it has anyway', async () => {
    const ahead = await readyPool(z, 2, 'the pool to fill');
    const child = await z.spawn({ args: ['sleep', 50], limits: { memoryBytes: null, pids: null } });
    expect(ahead).toContain(child.pid);
    expect(child.limits).toMatchObject({ memoryBytes: null, pids: null });
    const [, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
    // Its cgroup's peak: the step's memory at least (a fresh fork without limits has no cgroup: null).
    expect(status.memoryPeakBytes).toBeGreaterThan(1 << 20);
  });

  it('gives each claimed child its own randomness and pid view, as a fresh fork has', async () => {
    const a = JSON.parse((await run(z, ['whoami'])).stdout);
    const b = JSON.parse((await run(z, ['whoami'])).stdout);
    expect(a.random).not.toBe(b.random);
    // Pid 2 of a namespace of its own (its init is pid 1), whoever claimed it.
    expect([a.pid, b.pid]).toEqual([2, 2]);
    expect(a.ppid).toBe(1);
  });

  it('runs the claimed step as the uid its claim brought (from the uid range), never root', async () => {
    const child = await z.spawn({ args: ['hang'] });
    const hostStep = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim());
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${hostStep}/status`, 'utf8'))!.slice(1).map(Number);
    expect(uids[0]).toBeGreaterThanOrEqual(310_000);
    expect(uids[0]).toBeLessThan(310_008);
    expect(new Set(uids).size).toBe(1);
    // Its init dropped to the default uid (65534), not root.
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]).toBe('65534');
    child.kill();
    expect((await child.exited).reason).toBe('killed');
  });

  it('applies the limits of the claim: a memory bomb ends as oom, a step past its wall time as timeout', async () => {
    const oom = await run(z, ['memory-bomb'], { limits: { memoryBytes: 64 << 20 } });
    expect(oom.status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    expect(oom.status.memoryPeakBytes).toBeGreaterThanOrEqual(48 << 20);
    const slow = await run(z, ['hang'], { limits: { wallTimeMs: 300 } });
    expect(slow.status.reason).toBe('timeout');
  });

  it('passes a signal from kill() to the claimed step itself (its init cannot pass it on)', async () => {
    const child = await z.spawn({ args: ['hang'] });
    const lines = collect(child.stdout);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGTERM');
    const status = await child.exited;
    expect(status).toMatchObject({ signal: 'SIGTERM', reason: 'killed' });
    await lines;
  });

  it("binds the claim's mounts into the claimed child's root, read-only unless writable", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-pool-'));
    try {
      writeFileSync(join(dir, 'in.txt'), 'from the client');
      const dz = await startZygote({ main: DEPUTY_MAIN, pool: { size: 1 } });
      try {
        await readyPool(dz, 1, 'the pool to fill');
        const child = await dz.spawn({ args: [['read', '/input/in.txt'], ['write', '/input/x', 'no'], ['write', '/output/y', 'yes']], mounts: [{ source: dir, target: '/input' }, { source: join(dir), target: '/output', writable: true }] });
        const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
        expect(status.code, err).toBe(0);
        const r = JSON.parse(out);
        expect(r[0]).toMatchObject({ ok: true, text: 'from the client' });
        expect(r[1]).toMatchObject({ ok: false, code: 'EROFS' });
        expect(r[2]).toMatchObject({ ok: true });
        expect(readFileSync(join(dir, 'y'), 'utf8')).toBe('yes');
      } finally {
        await dz.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails closed: a claimed child whose claim cannot be applied in full (seccomp, made to fail) never runs the step', async () => {
    const iz = await startZygote({ main: ECHO_MAIN, pool: { size: 1 }, dangerouslyAllowUnsandboxed: true });
    try {
      const [pooled] = await readyPool(iz, 1, 'the pool child to be ready');
      const err = await iz.spawn({ args: ['echo-args', 'ran'], sandbox: { dangerouslyInjectFailure: { step: 'seccomp', errno: 'EPERM' } } }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SandboxError);
      expect((err as SandboxError).message).toMatch(/seccomp/);
      // It was the pool child that failed (and is gone), and the next spawn is served.
      await waitFor(() => !isAlive(pooled), 10_000, 'the failed pool child to be reaped');
      expect((await run(iz, ['echo-args', 'after'])).stdout).toBe('["after"]');
    } finally {
      await iz.close();
    }
  });

  it('retires an idle child after maxIdleMs and replaces it', async () => {
    const short = await startZygote({ main: ECHO_MAIN, pool: { size: 1, maxIdleMs: 300 } });
    try {
      await waitFor(() => poolPids(short.pid).length === 1, 10_000, 'the pool to fill');
      const first = poolPids(short.pid)[0];
      await waitFor(() => !isAlive(first) && poolPids(short.pid).length === 1, 10_000, 'the idle child to be replaced');
      expect(poolPids(short.pid)[0]).not.toBe(first);
    } finally {
      await short.close();
    }
  });

  it('stats() counts the spawns the pool served and those that forked fresh (a spawn that skips a layer forks)', async () => {
    const sz = await startZygote({ main: ECHO_MAIN, pool: { size: 1 }, dangerouslyAllowUnsandboxed: true });
    try {
      await readyPool(sz, 1, 'the pool to fill');
      expect(await sz.stats()).toEqual({ busy: 0, queued: 0, poolIdle: 1, poolSize: 1, claimed: 0, forked: 0, retired: 0 });
      const held = await sz.spawn({ args: ['hang'] });
      await new Promise((r) => held.stdout.once('data', r));
      // A layer a pool child has before any claim skipped (its own UTS namespace): no pool
      // child is made that way, so it forks fresh, pool child ready or not.
      await run(sz, ['echo-args', 'fresh'], { sandbox: { dangerouslySkip: ['uts-namespace'] } });
      expect(await sz.stats()).toMatchObject({ busy: 1, claimed: 1, forked: 1, poolSize: 1 });
      held.kill();
      await held.exited;
    } finally {
      await sz.close();
    }
  });

  it('refuses a bad pool option with a TypeError naming it', async () => {
    await expect(startZygote({ main: ECHO_MAIN, pool: { size: 0 } })).rejects.toThrow(/pool\.size.*1 to 64/);
    await expect(startZygote({ main: ECHO_MAIN, pool: { size: 1, idle: 3 } as never })).rejects.toThrow(TypeError);
    await expect(startZygote({ main: ECHO_MAIN, pool: 2 as never })).rejects.toThrow(/`pool` option/);
  });

  it('leaves no pool child behind when the zygote closes', async () => {
    const zz = await startZygote({ main: ECHO_MAIN, pool: { size: 3 } });
    await waitFor(() => poolPids(zz.pid).length === 3, 10_000, 'the pool to fill');
    const kids = poolPids(zz.pid);
    await zz.close();
    await waitFor(() => kids.every((p) => !isAlive(p)), 10_000, 'the pool children to be gone');
  });
});
