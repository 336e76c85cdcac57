// Safe defaults: a child whose spawn gives no limits still runs under the defaults
// (protocol/limits.ts): a thread bomb, a fork bomb and a memory balloon end as 'pids-limit' and
// 'oom', the zygote and a sibling live on, the next spawn works; a handle's and a spawn's own
// limits replace the defaults, as the child's cgroup files show; null lifts one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, startZygote, type Limits, type Zygote, type ZygoteChild } from '../../dist/client/index.js';
import { existsSync } from 'node:fs';
import { cgroupDir, childCgroupFile, collect, ECHO_MAIN, isAlive } from '../helpers/index.js';
import { ATTACK_MAIN } from './attack-helpers.js';

/** A cgroup file's limit that is none: no cgroup of its own (null), v2's "max", or v1's page-rounded 2^63-1. */
function unlimited(value: string | null): boolean {
  return value === null || value === 'max' || BigInt(value) >= 2n ** 62n;
}

const MiB = 2 ** 20;
let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN });
});
afterAll(async () => {
  await z?.close();
});

/** A child that says it is running and waits to be killed; its cgroup files can be read meanwhile. */
async function hanging(zygote: Zygote, limits?: Limits): Promise<ZygoteChild> {
  const child = await zygote.spawn({ args: ['hang'], limits });
  await new Promise((r) => child.stdout.once('data', r));
  return child;
}

async function finish(child: ZygoteChild) {
  child.kill();
  await child.exited;
}

describe('the defaults, with no limits given', () => {
  it('put the child in a cgroup of its own with memory 1 GiB (no swap) and pids 32, and report every default in child.limits', async () => {
    const child = await hanging(z);
    expect(childCgroupFile(child.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(DEFAULT_LIMITS.memoryBytes));
    // No swap either, where the kernel accounts it (memsw = limit).
    if (existsSync(`${cgroupDir(child.pid, 'memory')}/memory.memsw.limit_in_bytes`)) expect(childCgroupFile(child.pid, 'memory', 'memory.memsw.limit_in_bytes')).toBe(String(DEFAULT_LIMITS.memoryBytes));
    expect(childCgroupFile(child.pid, 'pids', 'pids.max')).toBe('32');
    expect(child.limits).toEqual({ wallTimeMs: 60_000, cpuTimeMs: null, memoryBytes: 1024 * MiB, pids: 32, tmpBytes: 64 * MiB, fileBytes: 1024 * MiB, nofile: 256, outputBytes: 1024 * MiB, outputFiles: 4096, stdoutBytes: 64 * MiB, stderrBytes: 16 * MiB });
    await finish(child);
  });

  it('give the child a 64 MiB /tmp', async () => {
    const child = await z.spawn({ args: ['tmp-size'] });
    const [out, status] = await Promise.all([collect(child.stdout), child.exited]);
    expect(status.reason).toBe('exit');
    expect(Number(out)).toBe(DEFAULT_LIMITS.tmpBytes);
  });

  it("end a thread bomb as 'pids-limit' (EAGAIN inside the step); the zygote and a sibling live, and the next spawn works", async () => {
    const sibling = await hanging(z);
    const bomb = await z.spawn({ args: ['thread-bomb'] });
    const [out, status] = await Promise.all([collect(bomb.stdout), bomb.exited]);
    expect(out).toMatch(/^stopped after \d+ workers: .*EAGAIN/);
    expect(status).toMatchObject({ code: 3, reason: 'pids-limit' });
    expect(isAlive(z.pid)).toBe(true);
    expect(isAlive(sibling.pid)).toBe(true);
    const next = await z.spawn({ args: ['echo-args', 'after'] });
    expect(JSON.parse(await collect(next.stdout))).toEqual(['after']);
    expect((await next.exited).reason).toBe('exit');
    await finish(sibling);
  });

  it("end a memory balloon as 'oom' at 1 GiB; the zygote and a sibling live, and the next spawn works", async () => {
    const sibling = await hanging(z);
    const bomb = await z.spawn({ args: ['memory-bomb'] });
    const [, , status] = await Promise.all([collect(bomb.stdout), collect(bomb.stderr), bomb.exited]);
    expect(status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    expect(isAlive(z.pid)).toBe(true);
    expect(isAlive(sibling.pid)).toBe(true);
    const next = await z.spawn({ args: ['allocate', 50] });
    expect(await collect(next.stdout)).toBe('allocated 50 MiB');
    expect((await next.exited).reason).toBe('exit');
    await finish(sibling);
  });

  it("cut stdout at 64 MiB ('output-limit') when the spawn sets no output cap", async () => {
    const child = await z.spawn({ args: ['flood'] });
    let got = 0;
    child.stdout.on('data', (d: Buffer) => (got += d.length));
    const [status] = await Promise.all([child.exited, new Promise((r) => child.stdout.once('end', r))]);
    expect(got).toBe(DEFAULT_LIMITS.stdoutBytes);
    expect(status.reason).toBe('output-limit');
  });
});

describe('a fork bomb (seccomp skipped, so that fork is allowed: the pids limit is all that stops it)', () => {
  let attacker: Zygote;
  beforeAll(async () => {
    attacker = await startZygote({ main: ATTACK_MAIN, dangerouslyAllowUnsandboxed: true });
  });
  afterAll(async () => {
    await attacker?.close();
  });

  async function forkBomb(limits?: { pids: null }) {
    const child = await attacker.spawn({ args: ['fork-bomb', 200], sandbox: { dangerouslySkip: ['seccomp'] }, limits });
    const [out, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    return { result: JSON.parse(out) as { ok: boolean; errno: string | null; value: number }, status };
  }

  it("is stopped by the default pids limit with EAGAIN, and ends as 'pids-limit'; the zygote and a sibling live, and the next spawn works", async () => {
    const sibling = await hanging(z);
    const { result, status } = await forkBomb();
    expect(result).toEqual({ ok: false, errno: 'EAGAIN', value: -1 });
    // It gave up (exit 3) because a fork was refused: the cgroup's pids.events says why.
    expect(status, JSON.stringify(status)).toMatchObject({ code: 3, reason: 'pids-limit' });
    expect(isAlive(attacker.pid)).toBe(true);
    expect(isAlive(sibling.pid)).toBe(true);
    const next = await attacker.spawn({ args: ['fork_raw'], sandbox: { dangerouslySkip: ['seccomp'] } });
    const [out] = await Promise.all([collect(next.stdout), collect(next.stderr), next.exited]);
    expect(JSON.parse(out)).toMatchObject({ ok: true, errno: null });
    await finish(sibling);
  });

  it('positive control: with the pids limit lifted (null) the same bomb makes all 200 processes', async () => {
    const { result } = await forkBomb({ pids: null });
    expect(result).toEqual({ ok: true, errno: null, value: 200 });
  });
});

describe('overriding the defaults', () => {
  it("per handle: startZygote({ limits }) sets every child's cgroup; a spawn's own limits win over the handle's", async () => {
    const strict = await startZygote({ main: ECHO_MAIN, limits: { memoryBytes: 256 * MiB, pids: 24 } });
    try {
      const a = await hanging(strict);
      expect(childCgroupFile(a.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(256 * MiB));
      expect(childCgroupFile(a.pid, 'pids', 'pids.max')).toBe('24');
      expect(a.limits).toMatchObject({ memoryBytes: 256 * MiB, pids: 24, wallTimeMs: 60_000 });
      const b = await hanging(strict, { memoryBytes: 128 * MiB, pids: 16 });
      expect(childCgroupFile(b.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(128 * MiB));
      expect(childCgroupFile(b.pid, 'pids', 'pids.max')).toBe('16');
      await Promise.all([finish(a), finish(b)]);
    } finally {
      await strict.close();
    }
  });

  it('per spawn: memory, pids and /tmp take effect in the child', async () => {
    const child = await hanging(z, { memoryBytes: 300 * MiB, pids: 100 });
    expect(childCgroupFile(child.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(300 * MiB));
    expect(childCgroupFile(child.pid, 'pids', 'pids.max')).toBe('100');
    await finish(child);
    const tmp = await z.spawn({ args: ['tmp-size'], limits: { tmpBytes: 8 * MiB } });
    expect(Number(await collect(tmp.stdout))).toBe(8 * MiB);
    await tmp.exited;
  });

  it('null lifts a limit: no memory or pids limit means no limit in any cgroup (a fresh fork has none of its own), and child.limits says null', async () => {
    const child = await hanging(z, { memoryBytes: null, pids: null, wallTimeMs: null });
    // A pool child (the "pool" test project) has a cgroup whatever its limits: it only measures.
    expect(unlimited(childCgroupFile(child.pid, 'memory', 'memory.limit_in_bytes'))).toBe(true);
    expect(unlimited(childCgroupFile(child.pid, 'pids', 'pids.max'))).toBe(true);
    expect(child.limits).toMatchObject({ memoryBytes: null, pids: null, wallTimeMs: null });
    await finish(child);
  });

  it("a handle's null is overridden by a spawn's number, and the reverse", async () => {
    const open = await startZygote({ main: ECHO_MAIN, limits: { memoryBytes: null } });
    try {
      const a = await hanging(open);
      // No memory limit: on v1 no memory cgroup at all (or, for a pool child, one without a
      // limit); on v2 its one cgroup says "max".
      expect(unlimited(childCgroupFile(a.pid, 'memory', 'memory.limit_in_bytes'))).toBe(true);
      expect(childCgroupFile(a.pid, 'pids', 'pids.max')).toBe(String(DEFAULT_LIMITS.pids));
      const b = await hanging(open, { memoryBytes: 200 * MiB });
      expect(childCgroupFile(b.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(200 * MiB));
      await Promise.all([finish(a), finish(b)]);
    } finally {
      await open.close();
    }
  });
});
