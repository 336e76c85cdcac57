// A spawn's output filesystem (spawn({ output })), from both sides: the child writes at most
// limits.outputBytes and limits.outputFiles there (ENOSPC past either), none of it lands on a
// host filesystem or in any mount table, and it is freed when the client closes its fd. Each
// attack beside the positive control that shows the same writes succeeding with room.
import { readFileSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpawnPolicyError, startZygote, type Limits, type SandboxLayer, type Zygote, type ZygoteChild } from '../../dist/client/index.js';
import { native } from '../../dist/native/index.js';
import { collect, waitFor } from '../helpers/index.js';

const MAIN = new URL('../fixtures/output-main.mjs', import.meta.url);
const MiB = 2 ** 20;
const TMPFS_MAGIC = 0x01021994;
/** The uid children run as (startZygote's default). */
const NOBODY = 65534;
let z: Zygote;
/** Whether this kernel's tmpfs takes idmapped mounts (6.3+; the guest's 6.1 does not). */
let idmapped: boolean;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true });
  const userns = native.makeIdmapUserns(0, NOBODY, 0, NOBODY);
  try {
    idmapped = native.outputFsTakesIdmap(userns) === null;
  } finally {
    native.close(userns);
  }
});
afterAll(async () => {
  await z?.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Outcome = any;

/** Spawns with an output filesystem at /output; the steps run in order and report as JSON. */
async function run(steps: unknown[][], limits: Limits = {}, skip: SandboxLayer[] = []): Promise<{ child: ZygoteChild; out: Promise<Outcome[]> }> {
  const child = await z.spawn({ args: steps, output: {}, limits, sandbox: { dangerouslySkip: skip } });
  const out = Promise.all([collect(child.stdout), collect(child.stderr), child.exited]).then(([o, e, st]) => {
    expect(st.code, e).toBe(0);
    return JSON.parse(o) as Outcome[];
  });
  return { child, out };
}

/** Free bytes of TMPDIR's filesystem. */
function freeInTmpdir(): number {
  const st = statfsSync(tmpdir());
  return st.bavail * st.bsize;
}

/** tmpfs mounts in a process's mount table. */
function tmpfsMounts(pid: number | 'self'): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter((l) => / - tmpfs /.test(l));
}

/** Shmem (tmpfs pages) of the whole machine, in bytes. */
function shmem(): number {
  return Number(/^Shmem:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
}

describe('the size cap', () => {
  it('a child writing 3 x outputBytes/2 gets ENOSPC once outputBytes are written, and none of it is on a host filesystem or in a mount table', async () => {
    const free = freeInTmpdir();
    const mounts = { self: tmpfsMounts('self').length, zygote: tmpfsMounts(z.pid).length };
    const { child, out } = await run([['fill', '/output', 3, 32 * MiB], ['hold']], { outputBytes: 64 * MiB });
    // While the child still holds it, full: 64 MiB in a tmpfs of the child's own.
    await waitFor(() => child.output!.usage().full, 30_000, 'the output to fill');
    expect(child.output!.usage()).toMatchObject({ bytes: 64 * MiB, maxBytes: 64 * MiB, full: true });
    expect(statfsSync(child.output!.path).type).toBe(TMPFS_MAGIC);
    // On no host path: no mount table of the host's, or of the zygote's, lists it.
    expect({ self: tmpfsMounts('self').length, zygote: tmpfsMounts(z.pid).length }).toEqual(mounts);
    // TMPDIR's filesystem did not take the 64 MiB (other tests write there too: a margin).
    expect(free - freeInTmpdir()).toBeLessThan(32 * MiB);
    child.stdin.end();
    const [fill] = await out;
    expect(fill).toEqual({ ok: false, code: 'ENOSPC', written: [32 * MiB, 32 * MiB, 0] });
    child.output!.close();
  });

  it('positive control: with outputBytes 128 MiB the same three writes succeed', async () => {
    const { child, out } = await run([['fill', '/output', 3, 32 * MiB]], { outputBytes: 128 * MiB });
    expect((await out)[0]).toEqual({ ok: true, written: [32 * MiB, 32 * MiB, 32 * MiB] });
    expect(child.output!.usage()).toMatchObject({ bytes: 96 * MiB, full: false });
    child.output!.close();
  });
});

describe('the inode cap', () => {
  it('a child making 100,000 files stops at outputFiles (4096 by default) with ENOSPC', async () => {
    const { child, out } = await run([['files', '/output', 100_000]]);
    expect((await out)[0]).toEqual({ ok: false, code: 'ENOSPC', made: 4096 });
    expect(child.output!.usage()).toMatchObject({ files: 4096, maxFiles: 4096, full: true });
    child.output!.close();
  });

  it('positive control: with outputFiles 5000, 4,500 files are made', async () => {
    const { child, out } = await run([['files', '/output', 4500]], { outputFiles: 5000 });
    expect((await out)[0]).toEqual({ ok: true, made: 4500 });
    child.output!.close();
  });
});

describe('ownership', () => {
  it("what the child writes is the client's (root's here) where tmpfs takes idmapped mounts (6.3+), else the child's own; the child sees itself as its owner either way", async () => {
    const { child, out } = await run([['private', '/output', 'only mine', 0o600, 0o500], ['stat', '/output/secret']]);
    const [made, seen] = await out;
    expect(made).toEqual({ ok: true });
    // The child's view: its own file (through the idmap, or its own outright).
    expect(seen.uid).toBe(seen.me);
    expect(seen.mode & 0o777).toBe(0o600);
    // The client's view: the client's, in a 0700 root only it enters; or, without idmapped
    // tmpfs, the child's uid's, in a 0755 root the client can enter.
    const path = child.output!.path;
    const owner = idmapped ? process.getuid!() : NOBODY;
    expect(statSync(`${path}/secret`).uid).toBe(owner);
    expect(statSync(path)).toMatchObject({ uid: owner, mode: 0o40000 | (idmapped ? 0o700 : 0o755) });
    expect(readFileSync(`${path}/secret`, 'utf8')).toBe('only mine');
    expect(readFileSync(`${path}/locked/inner`, 'utf8')).toBe('only mine');
    child.output!.close();
  });
});

describe('its lifetime', () => {
  it("is freed when the client closes it: the child's 64 MiB stay in memory until then, not after", async () => {
    const { child, out } = await run([['fill', '/output', 1, 64 * MiB]], { outputBytes: 64 * MiB, memoryBytes: 256 * MiB });
    expect((await out)[0]).toMatchObject({ ok: true });
    // Positive control: the child is gone, and its output is still there, read through the fd.
    expect(child.hasExited).toBe(true);
    expect(child.output!.usage().bytes).toBe(64 * MiB);
    const held = shmem();
    child.output!.close();
    expect(child.output!.closed).toBe(true);
    // Other tests use tmpfs too: the drop is most of the 64 MiB, not exactly it.
    await waitFor(() => held - shmem() > 48 * MiB, 10_000, 'the output filesystem to be freed');
  });
});

describe('fail closed', () => {
  it('refuses an output target over what the sandbox makes itself, or beside a mount of the same target', async () => {
    await expect(z.spawn({ args: [], output: { target: '/proc/x' } })).rejects.toThrow(SpawnPolicyError);
    await expect(z.spawn({ args: [], output: { target: '/proc/x' } })).rejects.toThrow('output.target /proc/x overlaps /proc, /dev or /tmp');
    await expect(z.spawn({ args: [], output: { target: '/data' }, mounts: [{ source: tmpdir(), target: '/data' }] })).rejects.toThrow('output.target /data overlaps /data');
  });

  it('refuses an output without the mount-namespace layer (there is nowhere to show it)', async () => {
    await expect(z.spawn({ args: [], output: {}, sandbox: { dangerouslySkip: ['mount-namespace'] } })).rejects.toThrow('an output filesystem needs the mount-namespace layer');
  });

  it('positive control: a spawn with none asks nothing of the kind', async () => {
    const child = await z.spawn({ args: [['statfs', '/tmp']] });
    expect(child.output).toBeNull();
    expect(JSON.parse(await collect(child.stdout))[0]).toMatchObject({ ok: true, type: TMPFS_MAGIC });
  });
});
