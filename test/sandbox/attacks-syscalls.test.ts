// Sandbox attacks on the kernel through syscalls: the filesystem view and namespaces, kernel
// subsystems with a history of exploits, filter evasion, new processes, socket families.
// Each attack runs in a fully sandboxed child and is stopped, asserting exactly how (SIGSYS
// or an errno); its positive control runs the same attack with the smallest set of layers
// skipped that makes it work (named in the test), or, where the host refuses it for reasons
// of its own, shows the kernel's own answer instead of the filter's.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import {
  AF_ALG,
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  AF_VSOCK,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  SOCK_DGRAM,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  type AttackResult,
} from '../native/attack.js';
import { entryFacility, itNeeds, syscallEntry } from '../helpers/host.js';
import { ATTACK_MAIN, attackIn, expectAnswered, expectErrno, expectKilledBySigsys, expectOk, type AttackRun } from './attack-helpers.js';

let z: Zygote;
let dir: string;

beforeAll(async () => {
  z = await startZygote({ main: ATTACK_MAIN, dangerouslyAllowUnsandboxed: true });
  dir = mkdtempSync(join(tmpdir(), 'zygote-attacks-syscalls-'));
  chmodSync(dir, 0o755); // a path lookup must not be what stops an unprivileged child
});
afterAll(async () => {
  await z?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SECCOMP: SandboxLayer[] = ['seccomp'];
/** Root with every capability: what the mount and namespace syscalls need besides the filter. */
const ROOT: SandboxLayer[] = ['seccomp', 'capabilities', 'credentials'];

function layers(skip: SandboxLayer[]): string {
  return skip.join(', ');
}

/** Whether a mount of fstype is at target in this (the zygote's) mount namespace. */
function mountedAt(target: string, fstype: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === target && line.includes(` - ${fstype} `));
}

describe('the filesystem view and namespaces: killed with SIGSYS', () => {
  it('chroot kills the child with SIGSYS (seccomp)', async () => {
    expectKilledBySigsys(await attackIn(z, ['chroot', '/']));
  });
  it('with seccomp skipped, chroot fails with EPERM (capabilities: no CAP_SYS_CHROOT)', async () => {
    expectErrno(await attackIn(z, ['chroot', '/'], SECCOMP), 'EPERM');
  });
  it(`positive control (skips ${layers(ROOT)}): chroot succeeds`, async () => {
    expectOk(await attackIn(z, ['chroot', '/'], ROOT));
  });

  it('mount kills the child with SIGSYS (seccomp), and nothing is mounted', async () => {
    const target = join(dir, 'mnt-sandboxed');
    mkdirSync(target);
    expectKilledBySigsys(await attackIn(z, ['mount_tmpfs', target]));
    expect(mountedAt(target, 'tmpfs')).toBe(false);
  });
  it('with seccomp skipped, mount fails with EPERM (capabilities: no CAP_SYS_ADMIN)', async () => {
    const target = join(dir, 'mnt-no-seccomp');
    mkdirSync(target);
    expectErrno(await attackIn(z, ['mount_tmpfs', target], SECCOMP), 'EPERM');
    expect(mountedAt(target, 'tmpfs')).toBe(false);
  });
  it(`positive control (skips ${layers(ROOT)}): mount puts a tmpfs over a directory, in the zygote's mount namespace`, async () => {
    const target = join(dir, 'mnt-control');
    mkdirSync(target);
    try {
      expectOk(await attackIn(z, ['mount_tmpfs', target], ROOT));
      expect(mountedAt(target, 'tmpfs')).toBe(true);
    } finally {
      // No mount namespace of its own yet: the mount outlives the child. Undo it.
      if (mountedAt(target, 'tmpfs')) expect(spawnSync('umount', [target], { timeout: 10_000 }).status).toBe(0);
    }
  });

  // pivot_root is never let succeed here: with the capabilities it would pivot the host's
  // mount namespace. The control shows the kernel's own refusal after the capability check.
  function pivotArgs(name: string): [string, string, string] {
    const root = join(dir, name);
    mkdirSync(join(root, 'old'), { recursive: true });
    return ['pivot_root', root, join(root, 'old')];
  }
  it('pivot_root kills the child with SIGSYS (seccomp)', async () => {
    expectKilledBySigsys(await attackIn(z, pivotArgs('pivot-sandboxed')));
  });
  it('with seccomp skipped, pivot_root fails with EPERM (capabilities: no CAP_SYS_ADMIN)', async () => {
    expectErrno(await attackIn(z, pivotArgs('pivot-no-seccomp'), SECCOMP), 'EPERM');
  });
  it(`positive control (skips ${layers(ROOT)}): pivot_root gets past the capability check to the kernel's own EBUSY/EINVAL (new root on the root mount)`, async () => {
    const run = await attackIn(z, pivotArgs('pivot-control'), ROOT);
    expectAnswered(run);
    expect(run.result!.ok).toBe(false);
    expect(['EBUSY', 'EINVAL']).toContain(run.result!.errno);
  });

  it('unshare(CLONE_NEWUTS) kills the child with SIGSYS (seccomp)', async () => {
    expectKilledBySigsys(await attackIn(z, ['unshare', CLONE_NEWUTS]));
  });
  it('with seccomp skipped, unshare(CLONE_NEWUTS) fails with EPERM (capabilities)', async () => {
    expectErrno(await attackIn(z, ['unshare', CLONE_NEWUTS], SECCOMP), 'EPERM');
  });
  it(`positive control (skips ${layers(ROOT)}): unshare(CLONE_NEWUTS) succeeds`, async () => {
    expectOk(await attackIn(z, ['unshare', CLONE_NEWUTS], ROOT));
  });

  type SetnsResult = { open: AttackResult; setns: AttackResult | null };
  it('setns kills the child with SIGSYS (seccomp), after the namespace fd opened', async () => {
    expectKilledBySigsys(await attackIn(z, ['setns-own-uts']));
  });
  it('with seccomp skipped, setns fails with EPERM (capabilities)', async () => {
    const run = await attackIn<SetnsResult>(z, ['setns-own-uts'], SECCOMP);
    expectAnswered(run);
    expect(run.result!.open).toMatchObject({ ok: true });
    expect(run.result!.setns).toEqual({ ok: false, errno: 'EPERM', value: -1 });
  });
  it(`positive control (skips ${layers(ROOT)}): setns into a UTS namespace succeeds`, async () => {
    const run = await attackIn<SetnsResult>(z, ['setns-own-uts'], ROOT);
    expectAnswered(run);
    expect(run.result!.setns).toEqual({ ok: true, errno: null, value: 0 });
  });
});

describe('kernel subsystems a step has no use for', () => {
  it('io_uring_setup fails with ENOSYS (seccomp), so libuv falls back to epoll', async () => {
    expectErrno(await attackIn(z, ['io_uring_setup']), 'ENOSYS');
  });
  it('positive control (skips seccomp): io_uring_setup gets the kernel\'s own answer, not ENOSYS', async () => {
    const run = await attackIn(z, ['io_uring_setup'], SECCOMP);
    expectAnswered(run);
    expect(run.result!.errno).not.toBe('ENOSYS');
  });

  // Each kills the child; unfiltered, each either works for an unprivileged process or gets
  // the host's own refusal (kernel.unprivileged_bpf_disabled, perf_event_paranoid,
  // vm.unprivileged_userfaultfd): never SIGSYS.
  const KILLED: { what: string; call: unknown[]; control: 'ok' | 'answered' }[] = [
    { what: 'bpf(BPF_MAP_CREATE)', call: ['bpf_map_create'], control: 'answered' },
    { what: 'bpf(BPF_PROG_LOAD) of a socket filter', call: ['bpf_prog_load_trivial'], control: 'answered' },
    { what: 'perf_event_open of a user-space counter on itself', call: ['perf_event_open_self'], control: 'answered' },
    { what: 'keyctl(KEYCTL_GET_KEYRING_ID)', call: ['keyctl_get_keyring'], control: 'ok' },
    { what: 'add_key("user") into its own keyring', call: ['add_key_user'], control: 'ok' },
    { what: 'userfaultfd(0)', call: ['userfaultfd'], control: 'answered' },
    { what: 'userfaultfd(UFFD_USER_MODE_ONLY)', call: ['userfaultfd_user_mode_only'], control: 'ok' },
  ];
  it.each(KILLED.map((k) => [k.what, k]))('%s kills the child with SIGSYS (seccomp)', async (_what, k) => {
    expectKilledBySigsys(await attackIn(z, k.call));
  });
  it.each(KILLED.map((k) => [k.what, k.control === 'ok' ? 'succeeds' : "gets the kernel's own answer (success or an errno), not SIGSYS", k]))(
    'positive control (skips seccomp): %s %s',
    async (_what, _outcome, k) => {
      const run = await attackIn(z, k.call, SECCOMP);
      if (k.control === 'ok') expectOk(run);
      expectAnswered(run);
      expect(typeof run.result!.ok).toBe('boolean');
    },
  );

  it('a Worker thread of the child making a killed syscall (keyctl) kills the whole process with SIGSYS', async () => {
    expectKilledBySigsys(await attackIn(z, ['in-worker', 'keyctl_get_keyring']));
  });
  it('positive control (skips seccomp): the Worker thread makes the same call and the child exits 0', async () => {
    expectOk(await attackIn(z, ['in-worker', 'keyctl_get_keyring'], SECCOMP));
  });
});

describe('evading the filter', () => {
  // Where the host has no i386 entry (some VMs fault on int $0x80 with no filter at all), the
  // attack cannot happen and its control cannot work: both are skipped, saying so.
  const i386 = entryFacility(syscallEntry.i386());
  itNeeds(i386, 'getpid through the i386 int 0x80 entry kills the child with SIGSYS (seccomp: another arch)', async () => {
    expectKilledBySigsys(await attackIn(z, ['int80_getpid']));
  });
  itNeeds(i386, "positive control (skips seccomp): int 0x80 getpid returns the child's pid", async () => {
    const run = await attackIn(z, ['int80_getpid'], SECCOMP);
    expectOk(run);
    expect(run.result!.value).toBe(run.pid);
  });

  // x32 calls reach the kernel on every x86_64 host (without an x32 table it answers ENOSYS),
  // so both run everywhere; the control expects exactly what the host probe saw.
  it('getpid through the x32 ABI (syscall number | 0x40000000) kills the child with SIGSYS (seccomp: another arch)', async () => {
    expectKilledBySigsys(await attackIn(z, ['x32_getpid']));
  });
  it('positive control (skips seccomp): the x32 call reaches the kernel, which answers it as the host probe did instead of killing the child', async () => {
    const x32 = syscallEntry.x32();
    const run = await attackIn(z, ['x32_getpid'], SECCOMP);
    expect(run.status).toMatchObject({ code: 0, signal: null });
    if (x32.state === 'present') expect(run.result).toMatchObject({ ok: true, value: run.pid });
    else expect(run.result, x32.reason).toMatchObject({ ok: false, errno: 'ENOSYS' });
  });

  it.each([
    ['TIOCSTI', false],
    ['TIOCSTI with bit 32 set', true],
  ])('%s on stdin fails with EPERM (seccomp: ioctl requests compared on their low 32 bits)', async (_what, highBits) => {
    expectErrno(await attackIn(z, ['tiocsti', 0, highBits]), 'EPERM');
  });

  it.each([
    ['TIOCSTI', false],
    ['TIOCSTI with bit 32 set', true],
  ])("positive control (skips seccomp): %s on stdin reaches the kernel, which says ENOTTY (stdin is a pipe)", async (_what, highBits) => {
    expectErrno(await attackIn(z, ['tiocsti', 0, highBits], SECCOMP), 'ENOTTY');
  });
});

describe('new processes', () => {
  const USERNS_AND_MORE = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET;
  const CASES: { what: string; call: unknown[]; errno: string; control: SandboxLayer[] }[] = [
    // An unprivileged process may create a user namespace (and more inside it): only the filter stops it.
    { what: 'clone(CLONE_NEWUSER)', call: ['clone_raw', CLONE_NEWUSER], errno: 'EPERM', control: SECCOMP },
    { what: 'clone(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET)', call: ['clone_raw', USERNS_AND_MORE], errno: 'EPERM', control: SECCOMP },
    // Without a user namespace, CLONE_NEWNET needs CAP_SYS_ADMIN as well.
    { what: 'clone(CLONE_NEWNET)', call: ['clone_raw', CLONE_NEWNET], errno: 'EPERM', control: ROOT },
    { what: 'a plain fork through clone', call: ['clone_raw', 0], errno: 'EPERM', control: SECCOMP },
    { what: 'fork', call: ['fork_raw'], errno: 'EPERM', control: SECCOMP },
    // seccomp cannot read clone3's struct, so clone3 is refused outright; libc falls back to clone.
    { what: 'clone3', call: ['clone3_raw'], errno: 'ENOSYS', control: SECCOMP },
    { what: 'clone3(CLONE_NEWUSER)', call: ['clone3_raw', CLONE_NEWUSER], errno: 'ENOSYS', control: SECCOMP },
  ];
  it.each(CASES.map((c) => [c.what, c.errno, c]))('%s fails with %s (seccomp)', async (_what, _errno, c) => {
    expectErrno(await attackIn(z, c.call), c.errno);
  });
  it.each(CASES.map((c) => [layers(c.control), c.what, c]))('positive control (skips %s): %s creates a child process', async (_layers, _what, c) => {
    const run = await attackIn(z, c.call, c.control);
    expectOk(run);
    expect(run.result!.value).toBeGreaterThan(0);
  });
  it('with seccomp skipped, clone(CLONE_NEWNET) still fails with EPERM (capabilities)', async () => {
    expectErrno(await attackIn(z, ['clone_raw', CLONE_NEWNET], SECCOMP), 'EPERM');
  });
});

describe('socket families', () => {
  const DENIED: [string, number, number][] = [
    ['AF_UNIX', AF_UNIX, SOCK_STREAM],
    ['AF_PACKET', AF_PACKET, SOCK_RAW],
    ['AF_NETLINK', AF_NETLINK, SOCK_RAW],
    ['AF_ALG', AF_ALG, SOCK_SEQPACKET],
    ['AF_VSOCK', AF_VSOCK, SOCK_STREAM],
  ];
  it.each(DENIED)('an %s socket fails with EPERM (seccomp)', async (_name, family, type) => {
    expectErrno(await attackIn(z, ['socket', family, type]), 'EPERM');
  });

  it('the allowed families still work in the same sandbox: AF_INET, AF_INET6', async () => {
    const run = await attackIn<AttackResult[]>(z, ['calls', ['socket', AF_INET, SOCK_STREAM], ['socket', AF_INET6, SOCK_DGRAM]]);
    expectAnswered(run);
    for (const r of run.result!) expect(r).toMatchObject({ ok: true, errno: null });
  });

  describe('positive controls', () => {
    it('(skips seccomp) an AF_NETLINK socket is created', async () => {
      expectOk(await attackIn(z, ['socket', AF_NETLINK, SOCK_RAW], SECCOMP));
    });
    it("(skips seccomp) AF_ALG gets the kernel's own answer: created, or EAFNOSUPPORT on a kernel without it, never EPERM", async () => {
      const run: AttackRun = await attackIn(z, ['socket', AF_ALG, SOCK_SEQPACKET], SECCOMP);
      expectAnswered(run);
      if (!run.result!.ok) expect(run.result!.errno).toBe('EAFNOSUPPORT');
    });
    it("(skips seccomp) AF_VSOCK gets the kernel's own answer: created, or EAFNOSUPPORT without vsock, never EPERM", async () => {
      const run: AttackRun = await attackIn(z, ['socket', AF_VSOCK, SOCK_STREAM], SECCOMP);
      expectAnswered(run);
      if (!run.result!.ok) expect(run.result!.errno).toBe('EAFNOSUPPORT');
    });
    it('(skips seccomp) AF_PACKET still fails with EPERM, now from the missing CAP_NET_RAW', async () => {
      expectErrno(await attackIn(z, ['socket', AF_PACKET, SOCK_RAW], SECCOMP), 'EPERM');
    });
    it(`(skips ${layers(ROOT)}) an AF_PACKET socket is created`, async () => {
      expectOk(await attackIn(z, ['socket', AF_PACKET, SOCK_RAW], ROOT));
    });
  });
});
