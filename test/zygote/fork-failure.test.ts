// A fork that the kernel refuses becomes a SpawnError naming the step and errno; the zygote lives on.
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { SpawnError, startZygote, type Zygote } from '../../dist/client/index.js';
import { ECHO_MAIN } from '../helpers/index.js';

// cgroup v1 pids controller (this host); on a v2-only host the same test would use the
// unified hierarchy, which the sandbox issue brings.
const PIDS_ROOT = '/sys/fs/cgroup/pids';
const hasPidsV1 = existsSync(`${PIDS_ROOT}/cgroup.procs`);
const group = `${PIDS_ROOT}/zygote-test-fork-${process.pid}`;
let z: Zygote | undefined;

afterAll(async () => {
  if (z && existsSync(`/proc/${z.pid}`)) writeFileSync(`${PIDS_ROOT}/cgroup.procs`, String(z.pid));
  await z?.close();
  if (existsSync(group)) rmdirSync(group);
});

describe.runIf(hasPidsV1)('when fork fails', () => {
  it('spawn() rejects with SpawnError step "fork", code EAGAIN, and the next spawn works once allowed', async () => {
    z = await startZygote({ main: ECHO_MAIN });
    mkdirSync(group);
    writeFileSync(`${group}/cgroup.procs`, String(z.pid));
    // Exactly as many tasks as the zygote has threads now: one more (a fork) is refused.
    const threads = readdirSync(`/proc/${z.pid}/task`).length;
    writeFileSync(`${group}/pids.max`, String(threads));
    const err = await z.spawn({ args: ['exit', 0] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect(err).toMatchObject({ step: 'fork', code: 'EAGAIN' });
    expect((err as Error).message).toMatch(/failed at fork: fork failed: EAGAIN \(Resource temporarily unavailable\)/);

    writeFileSync(`${group}/pids.max`, 'max');
    const child = await z.spawn({ args: ['exit', 0] });
    expect((await child.exited).code).toBe(0);
  });
});
