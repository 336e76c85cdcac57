// A fork that the kernel refuses becomes a SpawnError naming the step and errno; the zygote lives on.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { SpawnError, startZygote, type Zygote } from '../../dist/client/index.js';
import { ECHO_MAIN } from '../helpers/index.js';
import { describeNeeds, pidsHierarchy } from '../helpers/host.js';

// A pids cgroup holds the zygote, so that its fork is refused: v1's pids hierarchy, or on v2 a
// group under the root with pids enabled for it (the root's subtree_control, as systemd has it).
const pids = pidsHierarchy();
const group = `${pids.root}/zygote-test-fork-${process.pid}`;
let z: Zygote | undefined;

afterAll(async () => {
  // Back to the hierarchy's root, which may hold processes on v1 and v2 alike.
  if (z && existsSync(`/proc/${z.pid}`) && pids.root) writeFileSync(`${pids.root}/cgroup.procs`, String(z.pid));
  await z?.close();
  if (existsSync(group)) rmdirSync(group);
});

describeNeeds(pids, 'when fork fails', () => {
  it('spawn() rejects with SpawnError step "fork", code EAGAIN, and the next spawn works once allowed', async () => {
    z = await startZygote({ main: ECHO_MAIN });
    if (pids.version === 'v2' && !readFileSync(`${pids.root}/cgroup.subtree_control`, 'utf8').split(/\s+/).includes('pids')) {
      writeFileSync(`${pids.root}/cgroup.subtree_control`, '+pids');
    }
    mkdirSync(group);
    writeFileSync(`${group}/cgroup.procs`, String(z.pid));
    // Exactly as many tasks as the zygote has threads now: one more (a fork) is refused.
    const threads = readdirSync(`/proc/${z.pid}/task`).length;
    writeFileSync(`${group}/pids.max`, String(threads));
    const err = await z.spawn({ args: ['exit', 0] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect(err).toMatchObject({ step: 'fork', code: 'ERR_ZYGOTE_SPAWN', errno: 'EAGAIN', cause: { code: 'EAGAIN', syscall: 'fork' } });
    expect((err as Error).message).toMatch(/failed at fork: fork failed: EAGAIN \(Resource temporarily unavailable\)/);

    writeFileSync(`${group}/pids.max`, 'max');
    const child = await z.spawn({ args: ['exit', 0] });
    expect((await child.exited).code).toBe(0);
  });
});
