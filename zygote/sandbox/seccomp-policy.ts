// The syscall policy every sandboxed child runs under: the one place to read and change it.
//
// An allow-list (default: EPERM), derived from what Node 20 and libuv call after fork,
// measured with strace -f over the test suite and the stress run, including the exit path
// and Worker threads. Argument rules narrow clone, socket, socketpair, ioctl and prctl.
// A clearly hostile set kills the whole process (SIGSYS), so an attack cannot retry; clone3
// and io_uring answer ENOSYS so libc and libuv fall back to what is allowed. Syscalls made
// through another ABI (int 0x80, x32) kill the process (native/sandbox/seccomp.cc).

/** One rule as native/sandbox/seccomp.cc compiles it. */
export interface SeccompRule {
  name: string;
  action: 'allow' | 'kill' | 'errno';
  errno?: number;
  /** All must hold; several rules for one syscall with the same action are OR-ed. */
  args?: { index: number; op: 'eq' | 'masked_eq'; value: number; mask?: number }[];
}

const EPERM = 1;
const ENOSYS = 38;

/** Allowed without conditions. */
const ALLOW = [
  // memory
  'brk', 'mmap', 'munmap', 'mremap', 'mprotect', 'madvise', 'msync', 'mincore', 'mlock', 'munlock', 'membarrier',
  'pkey_alloc', 'pkey_free', 'pkey_mprotect',
  // files and fds (what a path may reach is the mount namespace's business, not seccomp's)
  'read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
  'open', 'openat', 'close', 'close_range', 'lseek', 'dup', 'dup2', 'dup3', 'fcntl', 'flock', 'fsync', 'fdatasync',
  'ftruncate', 'truncate', 'fallocate', 'fadvise64', 'readahead', 'sendfile', 'copy_file_range', 'splice', 'tee',
  'stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs', 'access', 'faccessat', 'faccessat2',
  'getdents64', 'getcwd', 'chdir', 'fchdir', 'readlink', 'readlinkat', 'mkdir', 'mkdirat', 'rmdir',
  'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'link', 'linkat', 'symlink', 'symlinkat',
  // Not memfd_create: a memfd is writable and executable on every kernel (vm.memfd_noexec and
  // MFD_NOEXEC_SEAL stop execve, not an mmap with PROT_EXEC, so a dlopen of /proc/self/fd/N would
  // load native code the step wrote). Node itself never makes one.
  'chmod', 'fchmod', 'fchmodat', 'utimensat', 'umask', 'pipe', 'pipe2',
  'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch',
  // event loop
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'poll', 'ppoll',
  'select', 'pselect6', 'eventfd', 'eventfd2', 'timerfd_create', 'timerfd_settime', 'timerfd_gettime',
  // threads and synchronisation
  'futex', 'set_robust_list', 'get_robust_list', 'rseq', 'set_tid_address', 'sched_yield', 'sched_getaffinity',
  'sched_getparam', 'sched_getscheduler', 'sched_get_priority_max', 'sched_get_priority_min', 'getpriority',
  'arch_prctl',
  // signals (kill can only reach what the uid and pid namespace allow)
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'sigaltstack',
  'kill', 'tgkill', 'tkill',
  // identity and time
  'getpid', 'getppid', 'gettid', 'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups',
  'getpgrp', 'getpgid', 'getsid', 'uname', 'sysinfo', 'getrlimit', 'prlimit64', 'getrusage', 'times',
  'clock_gettime', 'clock_getres', 'clock_nanosleep', 'nanosleep', 'gettimeofday', 'time', 'getrandom', 'getcpu',
  'capget',
  // sockets (families narrowed below; the network namespace decides what they reach)
  'connect', 'bind', 'listen', 'accept', 'accept4', 'getsockname', 'getpeername', 'sendto', 'recvfrom',
  'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'shutdown', 'setsockopt', 'getsockopt',
  // reaping and leaving
  'wait4', 'waitid', 'exit', 'exit_group',
];

/** Hostile or kernel-attack-surface syscalls: the process dies with SIGSYS. */
const KILL = [
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd',
  'bpf', 'perf_event_open', 'userfaultfd', 'keyctl', 'add_key', 'request_key',
  'mount', 'umount2', 'pivot_root', 'chroot', 'unshare', 'setns', 'open_by_handle_at', 'name_to_handle_at',
  'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr',
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot',
  'swapon', 'swapoff', 'acct', 'quotactl', 'iopl', 'ioperm', 'modify_ldt', 'personality', 'uselib',
  'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'syslog', 'vhangup', 'lookup_dcookie',
];

/** Answered with ENOSYS, so callers fall back: glibc from clone3 to clone, libuv from io_uring to epoll. */
const NOT_IMPLEMENTED = ['clone3', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'];

// Argument-checked syscalls.
const CLONE_THREAD = 0x00010000;
/** Every clone flag that creates a namespace, plus the ones that share too much across a fork. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000; // NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const LOW32 = 0xffffffff;
/** ioctls Node and libuv use on their own fds: isatty, (non)blocking, close-on-exec, bytes readable, window size. */
const IOCTLS = { TCGETS: 0x5401, TIOCGWINSZ: 0x5413, FIONREAD: 0x541b, FIONBIO: 0x5421, FIONCLEX: 0x5450, FIOCLEX: 0x5451 };
/** prctl options a Node child uses; notably not PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAP_*, PR_SET_SECUREBITS. */
const PRCTLS = { PR_GET_DUMPABLE: 3, PR_SET_NAME: 15, PR_GET_NAME: 16, PR_GET_SECCOMP: 21, PR_CAPBSET_READ: 23, PR_GET_NO_NEW_PRIVS: 39, PR_SET_VMA: 0x53564d41 };

/** The whole policy, as rules for native/sandbox/seccomp.cc. */
export function seccompRules(): SeccompRule[] {
  const rules: SeccompRule[] = [];
  for (const name of ALLOW) rules.push({ name, action: 'allow' });
  for (const name of KILL) rules.push({ name, action: 'kill' });
  for (const name of NOT_IMPLEMENTED) rules.push({ name, action: 'errno', errno: ENOSYS });
  // clone: threads only (CLONE_THREAD set, no namespace flag). fork/vfork/execve are not
  // allowed at all: the step is one process, and nothing is ever executed.
  rules.push({ name: 'clone', action: 'allow', args: [{ index: 0, op: 'masked_eq', mask: CLONE_THREAD | CLONE_NAMESPACE_FLAGS, value: CLONE_THREAD }] });
  // No AF_UNIX socket(): a socket file in any bound directory (a serve socket, a database's)
  // would be reachable with connect(), which a read-only mount does not stop. socketpair stays.
  for (const family of [AF_INET, AF_INET6]) {
    rules.push({ name: 'socket', action: 'allow', args: [{ index: 0, op: 'eq', value: family }] });
  }
  rules.push({ name: 'socketpair', action: 'allow', args: [{ index: 0, op: 'eq', value: AF_UNIX }] });
  // ioctl's request is an int: compare its low 32 bits only, or a caller could set high
  // bits to slip past an equality check that the kernel then ignores (TIOCSTI | 1 << 32).
  for (const request of Object.values(IOCTLS)) {
    rules.push({ name: 'ioctl', action: 'allow', args: [{ index: 1, op: 'masked_eq', mask: LOW32, value: request }] });
  }
  for (const option of Object.values(PRCTLS)) {
    rules.push({ name: 'prctl', action: 'allow', args: [{ index: 0, op: 'masked_eq', mask: LOW32, value: option }] });
  }
  return rules;
}

/** What every other syscall gets. */
export const SECCOMP_DEFAULT_ERRNO = EPERM;

/**
 * The pid namespace init's own policy (native/init.cc): it reaps, passes signals on to the
 * step, writes one exit record and exits. Anything else is EPERM.
 */
export function initSeccompRules(): SeccompRule[] {
  const names = ['wait4', 'waitid', 'rt_sigtimedwait', 'rt_sigprocmask', 'rt_sigreturn', 'kill', 'write', 'close', 'close_range', 'exit', 'exit_group', 'restart_syscall'];
  return names.map((name) => ({ name, action: 'allow' }));
}
