// Memory and pids limits through a per-child cgroup: a bomb ends as 'oom' or 'pids-limit',
// from the cgroup's own counters, and nothing else is harmed; a limited child's figures are its
// cgroup's; nothing of the zygote's is left once it exits. Runs on the host (v1) and in the
// cgroup v2 guest (vitest.guest.config.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Limits, type Zygote } from '../../dist/client/index.js';
import { collect, ECHO_MAIN, isAlive, waitFor } from '../helpers/index.js';

const HOG_MAIN = new URL('../fixtures/hog-main.mjs', import.meta.url);
import { ATTACK_MAIN } from './attack-helpers.js';

let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN });
});
afterAll(async () => {
  await z?.close();
});

async function run(args: unknown[], limits: Limits) {
  const child = await z.spawn({ args, limits });
  const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  return { child, stdout, stderr, status };
}

/** Every cgroup directory named for zygote pid, under any mounted hierarchy. */
function zygoteCgroups(pid: number): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 4 || !existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name === `zygote-${pid}`) out.push(`${dir}/${e.name}`);
      else walk(`${dir}/${e.name}`, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return out;
}

describe('memory limit', () => {
  it("ends a Buffer bomb as 'oom' (the cgroup's OOM-kill counter, not a guess from SIGKILL), while a sibling and the zygote carry on", async () => {
    const sibling = await z.spawn({ args: ['sleep', 1500] });
    const { status } = await run(['memory-bomb'], { memoryBytes: 128 << 20 });
    expect(status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    expect(isAlive(z.pid)).toBe(true);
    const [, siblingStatus] = await Promise.all([collect(sibling.stdout), sibling.exited]);
    expect(siblingStatus).toMatchObject({ code: 0, reason: 'exit' });
  });

  it("ends a native malloc bomb (outside V8's heap and its limits) as 'oom' too; the next spawn works", async () => {
    const attacker = await startZygote({ main: ATTACK_MAIN });
    try {
      const bomb = await attacker.spawn({ args: ['malloc_touch', 4096], limits: { memoryBytes: 128 << 20 } });
      const [, , status] = await Promise.all([collect(bomb.stdout), collect(bomb.stderr), bomb.exited]);
      expect(status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
      // Positive control: the same native allocation under the limit completes.
      const fine = await attacker.spawn({ args: ['malloc_touch', 32], limits: { memoryBytes: 128 << 20 } });
      const [out, , fineStatus] = await Promise.all([collect(fine.stdout), collect(fine.stderr), fine.exited]);
      expect(fineStatus).toMatchObject({ code: 0, reason: 'exit' });
      expect(JSON.parse(out)).toEqual({ ok: true, errno: null, value: 32 });
    } finally {
      await attacker.close();
    }
  });

  it('positive control: the same limit lets a child that stays under it finish', async () => {
    const { stdout, status } = await run(['allocate', 50], { memoryBytes: 256 << 20 });
    expect(stdout).toBe('allocated 50 MiB');
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
  });

  it('a SIGKILL that is not the OOM killer is not reported as oom', async () => {
    const child = await z.spawn({ args: ['hang'], limits: { memoryBytes: 256 << 20 } });
    await new Promise((r) => child.stdout.once('data', r));
    child.kill();
    expect((await child.exited).reason).toBe('killed');
  });
});

describe('pids limit', () => {
  it("stops a thread bomb cleanly ('pids-limit', EAGAIN inside the step), and the next spawn works", async () => {
    // The wall-time limit only guards against a hang: under emulation (the cgroup v2 guest) a bomb takes tens of seconds.
    const { stdout, status } = await run(['thread-bomb'], { pids: 20, wallTimeMs: 120_000 });
    expect(stdout).toMatch(/^stopped after \d+ workers: .*EAGAIN/);
    expect(status).toMatchObject({ code: 3, reason: 'pids-limit' });
    const next = await run(['echo-args', 'after'], {});
    expect(JSON.parse(next.stdout)).toEqual(['after']);
  });

  it('refuses a pids limit too small for Node itself, saying why', async () => {
    await expect(z.spawn({ args: ['exit', 0], limits: { pids: 5 } })).rejects.toThrow('Expected `limits.pids` to be at least 10: Node itself needs that many threads (below it, it hangs or aborts), got 5');
  });
});

describe("a limited child's figures", () => {
  const LIMIT = 64 << 20;

  it("count what it wrote to its /tmp (a tmpfs) in memoryPeakBytes, which its RSS never shows", async () => {
    const child = await z.spawn({ args: ['fill-tmp', 200], limits: { memoryBytes: 512 << 20, tmpBytes: 256 << 20 } });
    const [stdout, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(stdout).toBe('wrote 200 MiB');
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
    expect(status.memoryPeakBytes).toBeGreaterThanOrEqual(200 << 20);
    // Its RSS is its mapped pages: the file's pages are in the page cache, not mapped. A 1 MiB
    // write buffer at a time cannot bring it near 200 MiB.
    expect(status.maxRssBytes).toBeLessThan(150 << 20);
  });

  it('positive control: without a cgroup (no memory or pids limit, and no pool) there is no peak to report', async () => {
    const child = await z.spawn({ args: ['fill-tmp', 8], limits: { memoryBytes: null, pids: null, tmpBytes: 16 << 20 } });
    const [stdout, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(stdout).toBe('wrote 8 MiB');
    // A pool child has a cgroup of its own whatever its limits (the "pool" test project).
    if ((await z.stats()).poolSize > 0) expect(status.memoryPeakBytes).toBeGreaterThanOrEqual(8 << 20);
    else expect(status.memoryPeakBytes).toBeNull();
    expect(status.maxRssBytes).toBeGreaterThan(0);
  });
  let hog: Zygote;
  beforeAll(async () => {
    hog = await startZygote({ main: HOG_MAIN });
  });
  afterAll(async () => {
    await hog?.close();
  });

  async function burnThenAllocate(mib: number) {
    const child = await hog.spawn({ args: ['burn-then-allocate', 1000, mib], limits: { memoryBytes: LIMIT } });
    const [stdout, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    return { stdout, status };
  }

  it("come from its cgroup when the OOM killer ends it: peak memory at its limit, and the CPU time the step burned (not its init's)", async () => {
    const { status } = await burnThenAllocate(200);
    expect(status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    // The peak charged to the cgroup reached the limit, and can never pass it.
    expect(status.memoryPeakBytes).toBeGreaterThanOrEqual(LIMIT * 0.75);
    expect(status.memoryPeakBytes).toBeLessThanOrEqual(LIMIT);
    expect(status.cpuMs).toBeGreaterThanOrEqual(1000);
  });

  it('positive control: the same step under its limit exits, with its own peak and CPU time', async () => {
    const { stdout, status } = await burnThenAllocate(20);
    expect(stdout).toBe('allocated 20 MiB');
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
    expect(status.memoryPeakBytes).toBeGreaterThanOrEqual(20 << 20);
    expect(status.memoryPeakBytes).toBeLessThan(LIMIT);
    // The step's own RSS, reported by its init: the 20 MiB it touched, on top of the pages it
    // maps from the zygote.
    expect(status.maxRssBytes).toBeGreaterThanOrEqual(20 << 20);
    expect(status.cpuMs).toBeGreaterThanOrEqual(1000);
  });
});

describe('cgroup lifecycle', () => {
  it('removes each child cgroup once the child is reaped (when the zygote is next idle)', async () => {
    const child = await z.spawn({ args: ['hang'], limits: { memoryBytes: 64 << 20, pids: 32 } });
    await new Promise((r) => child.stdout.once('data', r));
    // Its own cgroups, as the host sees them (v1: one per controller; v2: one).
    const own = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')
      .split('\n')
      .map((line) => /^\d+:([^:]*):(\/.*zygote-\d+\/child-\d+)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => (m[1] === '' ? `/sys/fs/cgroup${m[2]}` : `/sys/fs/cgroup/${m[1].split(',').find((c) => c === 'memory' || c === 'pids') ?? m[1]}${m[2]}`));
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((d) => existsSync(d))).toBe(true);
    child.kill();
    await child.exited;
    await waitFor(() => own.every((d) => !existsSync(d)), 5000, 'the child cgroups to be removed');
  });

  it("removes the zygote's whole cgroup tree when it exits, not only the children's", async () => {
    const own = await startZygote({ main: ECHO_MAIN });
    const pid = own.pid;
    try {
      const child = await own.spawn({ args: ['hang'], limits: { memoryBytes: 64 << 20, pids: 32 } });
      await new Promise((r) => child.stdout.once('data', r));
      // Positive control: while it serves a limited child, its tree is there to find.
      expect(zygoteCgroups(pid).length).toBeGreaterThan(0);
    } finally {
      await own.close();
    }
    await waitFor(() => !existsSync(`/proc/${pid}`), 5000, 'the zygote to exit');
    expect(zygoteCgroups(pid)).toEqual([]);
  });
});
