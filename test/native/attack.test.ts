// Positive baselines for the test-only attack addon, run unsandboxed as root: each attack
// that is safe to make in the test process itself must really work here, so a sandboxed
// child's failure means the sandbox stopped it, not that the attack was broken. Attacks
// that would damage the runner (int80, abort, execve, chroot, mount, pivot_root, clone_raw,
// unshare) are only checked for existence here, and run for real in throwaway child
// processes below.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AF_ALG,
  AF_NETLINK,
  AF_UNIX,
  ATTACK_ADDON_PATH,
  ATTACK_FUNCTIONS,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  CLONE_PIDFD,
  CLONE_VFORK,
  CLONE_VM,
  O_CREAT,
  O_WRONLY,
  PR_GET_DUMPABLE,
  PR_GET_NO_NEW_PRIVS,
  PR_GET_SECUREBITS,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  attack,
  type AttackResult,
} from './attack.js';
import { waitFor } from '../helpers/index.js';
import { binary, entryFacility, itNeeds, syscallEntry } from '../helpers/host.js';

/** Asserts the { ok, errno, value } shape, with errno a symbolic name exactly when failed. */
function expectShape(r: AttackResult): void {
  expect(typeof r.ok).toBe('boolean');
  expect(typeof r.value).toBe('number');
  if (r.ok) {
    expect(r.errno).toBeNull();
  } else {
    expect(r.errno).toMatch(/^E[A-Z0-9]+$/);
    expect(r.value).toBe(-1);
  }
}

/** Asserts success, showing the errno in the failure message if not. */
function expectOk(r: AttackResult): void {
  expectShape(r);
  expect({ ok: r.ok, errno: r.errno }).toEqual({ ok: true, errno: null });
}

function expectOkOr(r: AttackResult, errnos: string[]): void {
  expectShape(r);
  if (!r.ok) expect(errnos).toContain(r.errno);
}

describe('the attack addon in the unsandboxed test process', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'zygote-attack-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports every attack function, including the ones too damaging to call here', () => {
    for (const name of ATTACK_FUNCTIONS) expect(typeof attack[name], name).toBe('function');
    expect(Object.keys(attack).sort()).toEqual([...ATTACK_FUNCTIONS].sort());
  });

  it('reports a failed call with the symbolic errno and value -1', () => {
    const r = attack.read_proc_file(join(dir, 'missing'));
    expect(r).toMatchObject({ ok: false, errno: 'ENOENT', value: -1 });
  });

  it('lets root setuid(0)', () => {
    expect(attack.setuid(0)).toEqual({ ok: true, errno: null, value: 0 });
  });

  it('reads the real, effective and saved uids and gids', () => {
    const uids = attack.getresuid();
    expectOk(uids);
    expect(uids.ids).toEqual([process.getuid!(), process.geteuid!(), process.geteuid!()]);
    const gids = attack.getresgid();
    expectOk(gids);
    expect(gids.ids).toEqual([process.getgid!(), process.getegid!(), process.getegid!()]);
  });

  it('reads dumpable, no_new_privs and securebits with prctl', () => {
    expect(attack.prctl_get(PR_GET_DUMPABLE)).toEqual({ ok: true, errno: null, value: 1 });
    expect(attack.prctl_get(PR_GET_NO_NEW_PRIVS)).toEqual({ ok: true, errno: null, value: 0 });
    const bits = attack.prctl_get(PR_GET_SECUREBITS);
    expectOk(bits);
    expect(bits.value).toBeGreaterThanOrEqual(0);
  });

  it('raises every capability exactly when the permitted set already holds them all', () => {
    // Re-asserting the full set changes nothing; a runner with a bounded set gets EPERM.
    const status = readFileSync('/proc/self/status', 'utf8');
    const permitted = BigInt('0x' + /^CapPrm:\s*([0-9a-f]+)$/m.exec(status)![1]);
    const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    const full = (1n << BigInt(lastCap + 1)) - 1n;
    const r = attack.capset_all();
    expectShape(r);
    expect(r.ok ? null : r.errno).toBe(permitted === full ? null : 'EPERM');
  });

  it('creates unix and netlink sockets, and gives a structured result for AF_ALG', () => {
    const unix = attack.socket(AF_UNIX, SOCK_STREAM);
    expectOk(unix);
    expect(unix.value).toBeGreaterThanOrEqual(0);
    expectOk(attack.socket(AF_NETLINK, SOCK_RAW));
    // AF_ALG needs CONFIG_CRYPTO_USER_API; kernels without it say EAFNOSUPPORT.
    expectOkOr(attack.socket(AF_ALG, SOCK_SEQPACKET), ['EAFNOSUPPORT']);
  });

  it('sets up an io_uring unless the kernel lacks it', () => {
    expectOkOr(attack.io_uring_setup(), ['ENOSYS']);
  });

  it('reaches the kernel keyring with keyctl and add_key', () => {
    const ring = attack.keyctl_get_keyring();
    expectOk(ring);
    expect(ring.value).toBeGreaterThan(0);
    const key = attack.add_key_user();
    expectOk(key);
    expect(key.value).toBeGreaterThan(0);
  });

  it('opens a perf event, bpf objects and userfaultfds, or reports why not', () => {
    // Host policy (perf_event_paranoid, unprivileged_bpf_disabled, kernel config) decides.
    expectOkOr(attack.perf_event_open_self(), ['EACCES', 'ENOENT', 'EPERM', 'ENODEV', 'ENOSYS']);
    expectOkOr(attack.bpf_map_create(), ['EPERM', 'ENOSYS']);
    expectOkOr(attack.bpf_prog_load_trivial(), ['EPERM', 'ENOSYS']);
    expectOkOr(attack.userfaultfd(), ['ENOSYS']);
    expectOkOr(attack.userfaultfd_user_mode_only(), ['ENOSYS']);
  });

  it('reads /proc/self/status with open and read', () => {
    const r = attack.read_proc_file('/proc/self/status');
    expectOk(r);
    expect(r.value).toBeGreaterThan(0);
    expect(r.text).toMatch(/^Name:\t/);
    expect(r.text).toContain(`\nPid:\t${process.pid}\n`);
  });

  it('signals itself with signal 0', () => {
    expect(attack.kill(process.pid, 0)).toEqual({ ok: true, errno: null, value: 0 });
  });

  it('joins its own UTS namespace through an fd from open_ns', () => {
    const fd = attack.open_ns('/proc/self/ns/uts');
    expectOk(fd);
    try {
      expectOk(attack.setns(fd.value, CLONE_NEWUTS));
    } finally {
      expectOk(attack.close(fd.value));
    }
  });

  it('gets ENOTTY from TIOCSTI on a file that is not a terminal, with and without the high bits', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      expect(attack.tiocsti(fd, false)).toEqual({ ok: false, errno: 'ENOTTY', value: -1 });
      expect(attack.tiocsti(fd, true)).toEqual({ ok: false, errno: 'ENOTTY', value: -1 });
    } finally {
      closeSync(fd);
    }
  });

  it('forks with raw fork and clone3, and reaps the children', () => {
    for (const r of [attack.fork_raw(), attack.clone3_raw()]) {
      expectOk(r);
      expect(r.value).toBeGreaterThan(0);
      expect(existsSync(`/proc/${r.value}`)).toBe(false);
    }
  });

  it('creates and writes a file, and opens it for writing', () => {
    const file = join(dir, 'written');
    expect(attack.write_file(file, 'hello')).toEqual({ ok: true, errno: null, value: 5 });
    expect(readFileSync(file, 'utf8')).toBe('hello');
    const fd = attack.open_file(join(dir, 'opened'), O_WRONLY | O_CREAT);
    expectOk(fd);
    expect(fd.value).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(dir, 'opened'))).toBe(true);
  });

  describe('against another process', () => {
    let pid = 0;
    beforeAll(async () => {
      // An orphaned sleep, not this process's child, so libuv's SIGCHLD reaping cannot
      // see the ptrace stop. Wait until it has exec'd sleep (sh prints the pid first).
      const out = spawnSync('sh', ['-c', 'sleep 60 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
      pid = Number(out.stdout.trim());
      expect(pid).toBeGreaterThan(0);
      await waitFor(() => readFileSync(`/proc/${pid}/comm`, 'utf8') === 'sleep\n', 5_000, 'the sleep to exec');
    });
    afterAll(() => {
      if (pid > 0) process.kill(pid, 'SIGKILL');
    });

    it('attaches with ptrace and leaves the target running', async () => {
      expect(attack.ptrace_attach(pid)).toEqual({ ok: true, errno: null, value: 0 });
      // Detached at once: no tracer. The tracee leaves its stop asynchronously after
      // PTRACE_DETACH (a slow machine still shows T for a moment), so wait, bounded, for it to
      // run again (R, or S back in its sleep).
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
      const state = () => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      await waitFor(() => state() === 'R' || state() === 'S', 5_000, `the detached sleep to run again (State ${state()})`);
    });

    it('reads the ELF header of its first mapping with process_vm_readv', () => {
      const start = BigInt('0x' + readFileSync(`/proc/${pid}/maps`, 'utf8').split('-')[0]);
      const r = attack.process_vm_readv(pid, start);
      expect(r).toMatchObject({ ok: true, errno: null, value: 8 });
      expect(r.data! & 0xffffffffn).toBe(0x464c457fn); // "\x7fELF"
    });

    it('reads its environ and opens its memory for writing', () => {
      expectOk(attack.read_proc_file(`/proc/${pid}/environ`));
      expectOk(attack.open_proc_mem_rw(pid));
    });
  });
});

describe('the attack addon in a throwaway child process', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'zygote-attack-child-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs body in a fresh `node -e` with `a` bound to the addon; returns the process result. */
  function runChild(body: string, wrapper: string[] = []) {
    const script = `const a = require(${JSON.stringify(ATTACK_ADDON_PATH)});\n${body}`;
    const [cmd, ...args] = [...wrapper, process.execPath, '-e', script];
    return spawnSync(cmd!, args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  }

  function childResults(body: string, wrapper: string[] = []): Record<string, AttackResult & { pid?: number }> {
    const out = runChild(`const r = {};\n${body}\nconsole.log(JSON.stringify(r));`, wrapper);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    return JSON.parse(out.stdout);
  }

  itNeeds(entryFacility(syscallEntry.i386()), 'gets its own pid from getpid through int $0x80', () => {
    const r = childResults('r.pid = process.pid; r.int80 = a.int80_getpid();');
    expect(r.int80).toEqual({ ok: true, errno: null, value: r.pid });
  });

  it('drops groups, changes root and unshares the UTS namespace as root', () => {
    const r = childResults(`
      r.setgroups0 = a.setgroups0();
      r.setgid = a.setgid(0);
      r.chroot = a.chroot('/');
      r.unshareUts = a.unshare(${CLONE_NEWUTS});
      r.unshareUser = a.unshare(${CLONE_NEWUSER});
    `);
    for (const k of ['setgroups0', 'setgid', 'chroot', 'unshareUts']) expect(r[k], k).toEqual({ ok: true, errno: null, value: 0 });
    // The kernel's rule for any multi-threaded process, sandbox or not.
    expect(r.unshareUser).toMatchObject({ ok: false, errno: 'EINVAL' });
  });

  it('clones children into new namespaces, with CLONE_VM and with a pidfd', () => {
    const r = childResults(`
      r.ns = a.clone_raw(${CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET});
      r.vm = a.clone_raw(${CLONE_VM | CLONE_VFORK});
      r.pidfd = a.clone_raw(${CLONE_PIDFD});
      r.clone3User = a.clone3_raw(${CLONE_NEWUSER});
      r.clone3Vm = a.clone3_raw(BigInt(${CLONE_VM}));
    `);
    for (const [k, v] of Object.entries(r)) {
      expect({ ok: v.ok, errno: v.errno }, k).toEqual({ ok: true, errno: null });
      expect(v.value, k).toBeGreaterThan(0);
    }
  });

  itNeeds(
    binary('unshare', 'util-linux'),
    'mounts a tmpfs and pivots root into it inside a private mount namespace',
    () => {
      const r = childResults(
        `
        const fs = require('node:fs');
        const root = fs.mkdtempSync(require('node:path').join(process.cwd(), 'root-'));
        r.mount = a.mount_tmpfs(root);
        fs.mkdirSync(root + '/old');
        r.pivot = a.pivot_root(root, root + '/old');
        r.oldRootVisible = a.read_proc_file('/old/proc/self/status');
        r.oldRootVisible.text = '';
      `,
        ['unshare', '--mount', '--propagation', 'private'],
      );
      expect(r.mount).toEqual({ ok: true, errno: null, value: 0 });
      expect(r.pivot).toEqual({ ok: true, errno: null, value: 0 });
      expect(r.oldRootVisible.ok).toBe(true);
    },
  );

  it('becomes /bin/true through execve', () => {
    const out = runChild(`a.execve_true(); console.log('execve returned');`);
    expect(out.stdout).toBe('');
    expect(out.status).toBe(0);
  });

  it('dies of SIGABRT on abort_now, and leaves no core file with RLIMIT_CORE 0', () => {
    const out = runChild(`a.abort_now(); console.log('abort returned');`, ['prlimit', '--core=0', '--']);
    expect(out.stdout).toBe('');
    expect(out.signal).toBe('SIGABRT');
    expect(readdirSync(dir).filter((f) => f.startsWith('core'))).toEqual([]);
  });
});
