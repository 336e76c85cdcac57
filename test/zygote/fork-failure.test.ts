// A fork that the kernel refuses becomes a SpawnError naming the step and errno; the zygote lives on.
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { SpawnError, startZygote, type Zygote } from '../../dist/client/index.js';
import { ECHO_MAIN } from '../helpers/index.js';
import { cgroupV1Pids, describeNeeds } from '../helpers/host.js';

// A cgroup v1 pids group holds the zygote, so that its fork is refused; a v2-only host would
// need a delegated subtree for the same (the cgroup v2 issue).
const PIDS_ROOT = '/sys/fs/cgroup/pids';
const group = `${PIDS_ROOT}/zygote-test-fork-${process.pid}`;
let z: Zygote | undefined;

afterAll(async () => {
  if (z && existsSync(`/proc/${z.pid}`)) writeFileSync(`${PIDS_ROOT}/cgroup.procs`, String(z.pid));
  await z?.close();
  if (existsSync(group)) rmdirSync(group);
});

describeNeeds(cgroupV1Pids(), 'when fork fails', () => {
  it('spawn() rejects with SpawnError step "fork", code EAGAIN, and the next spawn works once allowed', async () => {
    z = await startZygote({ main: ECHO_MAIN });
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
