// Sandbox layer 1 as the child sees it: root of its own user namespace only (host uid 65534), no
// capabilities, no_new_privs, seccomp, limits; and every setup step failing closed.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError, SANDBOX_LAYERS, startZygote, type SandboxRequest, type Zygote } from '../../dist/client/index.js';
import { collect } from '../helpers/index.js';

const MAIN = new URL('../fixtures/sandbox-main.mjs', import.meta.url);
let z: Zygote;
let dir: string;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true });
  dir = mkdtempSync(join(tmpdir(), 'zygote-sandbox-'));
});
afterAll(async () => {
  await z?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: unknown[], sandbox?: SandboxRequest) {
  const child = await z.spawn({ args, sandbox });
  const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  expect(status.code, stderr).toBe(0);
  return stdout;
}

const ZERO_CAPS = '0000000000000000';

describe('a sandboxed child', () => {
  it('runs as root of its own user namespace, which is host uid 65534 and nothing else, with no capability in any set, no_new_privs and a seccomp filter', async () => {
    const s = JSON.parse(await run(['status']));
    expect(s.Uid).toBe('0\t0\t0\t0');
    expect(s.Gid).toBe('0\t0\t0\t0');
    expect(s.uidMap.trim().split(/\s+/)).toEqual(['0', '65534', '1']);
    expect(s.gidMap.trim().split(/\s+/)).toEqual(['0', '65534', '1']);
    expect(s.setgroups.trim()).toBe('deny');
    expect(s.Groups).toBe('');
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(s[set], set).toBe(ZERO_CAPS);
    expect(s.NoNewPrivs).toBe('1');
    expect(s.Seccomp).toBe('2');
  });

  it('without its user namespace it runs as host uid 65534, with the same empty sets', async () => {
    const s = JSON.parse(await run(['status'], { dangerouslySkip: ['user-namespace'] }));
    expect(s.Uid).toBe('65534\t65534\t65534\t65534');
    expect(s.Gid).toBe('65534\t65534\t65534\t65534');
    expect(s.uidMap.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(s[set], set).toBe(ZERO_CAPS);
  });

  it('positive control: with every layer skipped the same child is root with full capabilities', async () => {
    const s = JSON.parse(await run(['status'], { dangerouslySkip: [...SANDBOX_LAYERS] }));
    expect(s.Uid).toBe('0\t0\t0\t0');
    expect(s.uidMap.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
    expect(s.CapEff).not.toBe(ZERO_CAPS);
    expect(s.CapBnd).not.toBe(ZERO_CAPS);
    expect(s.NoNewPrivs).toBe('0');
    expect(s.Seccomp).toBe('0');
  });

  it('filters a Worker thread it starts after the sandbox, with the same privileges', async () => {
    const s = JSON.parse(await run(['worker-status']));
    expect(s.Seccomp).toBe('2');
    expect(s.NoNewPrivs).toBe('1');
    expect(s.CapEff).toBe(ZERO_CAPS);
    expect(s.Uid).toBe('0\t0\t0\t0');
    expect(s.uidMap.trim().split(/\s+/)).toEqual(['0', '65534', '1']);
  });

  it('has RLIMIT_CORE 0 and the configured RLIMIT_NOFILE and RLIMIT_FSIZE, and no address-space limit', async () => {
    const limits = await run(['rlimits'], { rlimits: { nofile: 77, fsize: 123456 } });
    expect(limits).toMatch(/Max core file size\s+0\s+0\s+bytes/);
    expect(limits).toMatch(/Max open files\s+77\s+77\s+files/);
    expect(limits).toMatch(/Max file size\s+123456\s+123456\s+bytes/);
    expect(limits).toMatch(/Max address space\s+unlimited\s+unlimited\s+bytes/);
  });
});

describe('fail closed', () => {
  // Every native step, in order; each must stop the child before any of its JS runs. (Steps
  // that run twice, the capability ones, are stopped at their first run.)
  const STEPS = [
    'prctl(PR_SET_PDEATHSIG)',
    'sigprocmask',
    'setsid',
    'unshare(CLONE_NEWCGROUP)',
    'dup2(stdio)',
    'close inherited fds',
    'uv_loop_fork',
    'renew loop reserve fd',
    'prctl(PR_SET_NAME)',
    'unshare',
    'root',
    'loopback up',
    'sethostname',
    'setrlimit(RLIMIT_CORE)',
    'setrlimit(RLIMIT_NOFILE)',
    'setrlimit(RLIMIT_FSIZE)',
    'securebits',
    'drop bounding set',
    'clear ambient capabilities',
    'setgroups',
    'setresgid',
    'setresuid',
    'prctl(PR_SET_PDEATHSIG) after setresuid',
    'user namespace',
    'prctl(PR_SET_PDEATHSIG) after CLONE_NEWUSER',
    'capset',
    'verify no privilege is left',
    'prctl(PR_SET_DUMPABLE)',
    'prctl(PR_SET_NO_NEW_PRIVS)',
    'fork(step)',
    'sigprocmask(step)',
    'seccomp',
  ];

  // The marker proves no JS ran: the test's directory is mounted writable into the child, so
  // a child that did run would leave it there (the positive control below shows it does).
  const spawnTouching = (marker: string, sandbox: SandboxRequest) =>
    z.spawn({ args: ['touch', marker], sandbox, mounts: [{ source: dir, target: dir, writable: true }], name: 'zygote-child' });

  it.each(STEPS)('a failure at %s rejects spawn() with SandboxError naming the step and errno, and no JS runs', async (step) => {
    const marker = join(dir, `ran-${step.replace(/\W+/g, '_')}`);
    const err = await spawnTouching(marker, { dangerouslyInjectFailure: { step, errno: 'EPERM' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ step, code: 'ERR_ZYGOTE_SANDBOX', errno: 'EPERM', cause: { code: 'EPERM', syscall: step }, message: `sandbox step ${step} failed: EPERM (Operation not permitted)` });
    // Bounded: a child that wrongly ran would have written the marker within this time.
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(marker)).toBe(false);
  });

  it('positive control: without an injected failure the same spawn runs its JS and leaves the marker', async () => {
    const marker = join(dir, 'ran-control');
    const child = await spawnTouching(marker, {});
    expect((await child.exited).code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('a zygote not started for tests refuses a spawn that skips a layer', async () => {
    const strict = await startZygote({ main: MAIN });
    try {
      const err = await strict.spawn({ args: ['status'], sandbox: { dangerouslySkip: ['seccomp'] } }).catch((e: unknown) => e);
      expect((err as Error).message).toContain('this zygote does not run children with sandbox layers skipped');
    } finally {
      await strict.close();
    }
  });
});
