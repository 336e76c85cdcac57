// The test-only attack addon (test/native/attack.cc), typed. A test zygote preloads
// ATTACK_ADDON_PATH before it forks; a sandboxed child then calls these functions to attack
// each sandbox layer. Unsandboxed, each really does the privileged thing.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What every attack returns: errno is the symbolic name (e.g. 'EPERM') when ok is false;
 * value is the syscall's return value (an fd, a pid, 0) when ok is true, else -1. Fds the
 * attacks create are closed again before they return (except open_ns). */
export interface AttackResult {
  ok: boolean;
  errno: string | null;
  value: number;
}

/** read_proc_file: value is the bytes read (at most 64 KiB), text the first 4 KiB. */
export interface ReadResult extends AttackResult {
  text: string;
}

/** getresuid / getresgid: the real, effective and saved ids. */
export interface IdsResult extends AttackResult {
  ids: [number, number, number];
}

/** process_vm_readv: the 8 bytes read, little-endian, or null. */
export interface VmReadResult extends AttackResult {
  data: bigint | null;
}

export interface AttackAddon {
  // credentials (creds, caps)
  setuid(uid: number): AttackResult;
  setgid(gid: number): AttackResult;
  /** setgroups(0, NULL). */
  setgroups0(): AttackResult;
  /** capset with every capability in effective and permitted. */
  capset_all(): AttackResult;
  getresuid(): IdsResult;
  getresgid(): IdsResult;
  /** prctl(option, 0, 0, 0, 0); value is its return. See PR_GET_*. */
  prctl_get(option: number): AttackResult;
  /** prctl(option, arg, 0, 0, 0), e.g. PR_SET_DUMPABLE 1. */
  prctl_set(option: number, arg: number): AttackResult;

  // filesystem view and namespaces (caps, seccomp) — these change the calling process
  chroot(path: string): AttackResult;
  /** mount("none", target, "tmpfs", 0, NULL): unsandboxed, a real mount. */
  mount_tmpfs(target: string): AttackResult;
  pivot_root(newRoot: string, putOld: string): AttackResult;
  /** CLONE_NEWUSER/CLONE_NEWNS give EINVAL in any multi-threaded process (Node is one). */
  unshare(flags: number | bigint): AttackResult;
  /** open(path, O_RDONLY); value is the fd, left open for setns. */
  open_ns(path: string): AttackResult;
  setns(fd: number, nstype?: number): AttackResult;
  close(fd: number): AttackResult;

  // other processes (dumpable, creds, seccomp)
  /** PTRACE_ATTACH; on success waits (≤ 2 s) for the stop and detaches. */
  ptrace_attach(pid: number): AttackResult;
  /** Reads 8 bytes at address in pid. */
  process_vm_readv(pid: number, address: number | bigint): VmReadResult;
  /** open + read (not fs). */
  read_proc_file(path: string): ReadResult;
  /** open("/proc/<pid>/mem", O_RDWR). */
  open_proc_mem_rw(pid: number): AttackResult;
  kill(pid: number, sig: number): AttackResult;

  // kernel attack surface (seccomp)
  io_uring_setup(): AttackResult;
  bpf_map_create(): AttackResult;
  bpf_prog_load_trivial(): AttackResult;
  perf_event_open_self(): AttackResult;
  /** KEYCTL_GET_KEYRING_ID of the session keyring; value is its serial. */
  keyctl_get_keyring(): AttackResult;
  /** add_key("user", ...) into the process keyring; the key is invalidated again. */
  add_key_user(): AttackResult;
  userfaultfd(): AttackResult;
  userfaultfd_user_mode_only(): AttackResult;
  /** socket(family, type | SOCK_CLOEXEC, protocol); value is the fd before closing. */
  socket(family: number, type: number, protocol?: number): AttackResult;

  // syscall-filter evasion (seccomp)
  /** getpid via the i386 `int $0x80` entry. Under a seccomp filter with an arch check
   * this KILLS the process (SIGSYS); call it only in a process that may die. */
  int80_getpid(): AttackResult;
  x32_getpid(): AttackResult;
  /** ioctl(fd, TIOCSTI, &ch) injecting ch[0] (default '#'); highBits sets bit 32 of the
   * request, which the kernel ignores but a 64-bit filter comparison does not. */
  tiocsti(fd: number, highBits?: boolean, ch?: string): AttackResult;

  // new processes and exec (seccomp, rlimits); each child exits(0) at once and is reaped
  /** Raw clone(flags); SIGCHLD is added when the low byte is 0. Never pass CLONE_THREAD. */
  clone_raw(flags: number | bigint): AttackResult;
  /** Raw clone3 with a zeroed struct plus flags, exit_signal SIGCHLD. */
  clone3_raw(flags?: number | bigint): AttackResult;
  /** Raw SYS_fork. */
  fork_raw(): AttackResult;
  /** Raw forks (each child waits for ever) until one fails or max are made: value, the count made. */
  fork_bomb(max: number): AttackResult;
  /** A raw fork that appends a line to path every 2 ms for ms milliseconds: value, its pid. */
  fork_writer(path: string, ms: number): AttackResult;
  /** execve("/bin/true"): returns only on failure. */
  execve_true(): AttackResult;
  /** execve(path, argv, envp = []): returns only on failure; on success the process is
   * that program, with the same pid and stdio. */
  execve_path(path: string, argv: string[], envp?: string[]): AttackResult;
  /** abort(): never returns. */
  abort_now(): never;
  /** malloc(1 MiB) and touch every page, mib times, never freeing; value is the MiB it got. */
  malloc_touch(mib: number): AttackResult;
  /** memfd_create and the file's bytes copied in; value is the memfd. */
  memfd_copy(path: string): AttackResult;

  // files (creds, caps)
  /** open(O_WRONLY | O_CREAT | O_TRUNC, 0644) + write; value is the bytes written. */
  write_file(path: string, text: string): AttackResult;
  /** open(path, flags | O_CLOEXEC, mode = 0o644); value is the fd before closing. */
  open_file(path: string, flags: number, mode?: number): AttackResult;
}

/** Where node-gyp builds the addon; a test zygote preloads this path. */
export const ATTACK_ADDON_PATH = fileURLToPath(new URL('./build/Release/zygote_attack_helper.node', import.meta.url));

export const attack: AttackAddon = createRequire(import.meta.url)('./build/Release/zygote_attack_helper.node');

/** Every function the addon exports, for "is it there" checks. */
export const ATTACK_FUNCTIONS = [
  'setuid', 'setgid', 'setgroups0', 'capset_all', 'getresuid', 'getresgid', 'prctl_get', 'prctl_set',
  'chroot', 'mount_tmpfs', 'pivot_root', 'unshare', 'open_ns', 'setns', 'close',
  'ptrace_attach', 'process_vm_readv', 'read_proc_file', 'open_proc_mem_rw', 'kill',
  'io_uring_setup', 'bpf_map_create', 'bpf_prog_load_trivial', 'perf_event_open_self',
  'keyctl_get_keyring', 'add_key_user', 'userfaultfd', 'userfaultfd_user_mode_only', 'socket',
  'int80_getpid', 'x32_getpid', 'tiocsti',
  'clone_raw', 'clone3_raw', 'fork_raw', 'fork_bomb', 'fork_writer', 'execve_true', 'execve_path', 'abort_now',
  'write_file', 'open_file', 'malloc_touch', 'memfd_copy',
] as const satisfies readonly (keyof AttackAddon)[];

// Constants the attacks take (x86_64 Linux values).
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const AF_ALG = 38;
export const AF_VSOCK = 40;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;

export const CLONE_VM = 0x00000100;
export const CLONE_FS = 0x00000200;
export const CLONE_FILES = 0x00000400;
export const CLONE_PIDFD = 0x00001000;
export const CLONE_VFORK = 0x00004000;
export const CLONE_PARENT = 0x00008000;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const PR_GET_SECUREBITS = 27;
export const PR_GET_NO_NEW_PRIVS = 39;

export const SIGKILL = 9;
export const SIGTERM = 15;
