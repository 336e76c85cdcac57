// native/: the C++ addon (node-addon-api) and its TypeScript face. Imports protocol/ at most.
// This file is the addon's API as TypeScript sees it; the one place that loads the .node file.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A received packet: its bytes, the fds that rode on it, and whether either was cut short. */
export interface NativePacket {
  data: Buffer;
  fds: number[];
  /** The data was larger than maxBytes. */
  truncated: boolean;
  /** More fds came than one packet may carry; the kernel closed the rest. */
  fdsTruncated: boolean;
}

/** One child's sandbox, resolved by zygote/sandbox/policy.ts. */
export interface NativeSandboxSpec {
  setsid: boolean;
  closeFds: boolean;
  /** Made at fork time; the child is pid 1 (its init, native/init.cc) and the step pid 2. */
  pidNamespace: boolean;
  netNamespace: boolean;
  /** A networked child's veth pair to the zygote's namespace (needs netNamespace); null: loopback only. */
  veth: NativeVeth | null;
  ipcNamespace: boolean;
  utsNamespace: boolean;
  cgroupNamespace: boolean;
  /** Own mount namespace and a fresh root of just these binds (native/sandbox/root.cc). */
  root: NativeRootSpec | null;
  /** Root of its own user namespace, mapped to credentials' uid and gid (needs credentials). */
  userNamespace: boolean;
  credentials: { uid: number; gid: number } | null;
  capabilities: boolean;
  noNewPrivs: boolean;
  notDumpable: boolean;
  /** cpu: seconds of CPU time (SIGXCPU then, a second later, SIGKILL). */
  rlimits: { core?: number; nofile?: number; fsize?: number; cpu?: number };
  /** cgroup.procs fds (at most two: v1 memory and pids) the child writes itself into. */
  cgroupProcs?: number[];
  /** Id from compileSeccomp, or -1 for no filter. */
  seccomp: number;
  /** Id from compileSeccomp for the pid namespace's init, or -1. */
  initSeccomp: number;
  /** The kernel's Landlock ABI to restrict the step with, or 0 for no Landlock layer. */
  landlockAbi: number;
  injectFailure: { step: string; errno: number } | null;
}

/**
 * One networked child's link (native/sandbox/network.cc), decided by zygote/sandbox/network.ts:
 * hostName in the zygote's namespace at hostAddr, childName in the child's at childAddr, both
 * in one /prefix; the child's default route goes through hostAddr.
 */
export interface NativeVeth {
  hostName: string;
  childName: string;
  hostAddr: string;
  childAddr: string;
  prefix: number;
}

/** A host path shown at target inside the child's root. */
export interface NativeRootBind {
  /** The zygote's own binds: the path. A client's mount: the path it named, for messages only. */
  source: string;
  target: string;
  writable?: boolean;
  /** A device node (keeps dev semantics; stays writable, as /dev/null must). */
  device?: boolean;
  /** A client's mount: the O_PATH fd it opened (the source is never resolved by the zygote). */
  fd?: number;
  /** A client's mount: its index in the spawn's mounts, for messages. */
  index?: number;
  /** The spawn's output filesystem (fd: the detached tmpfs makeOutputFs made). */
  output?: boolean;
  /** An output already the child's own (a kernel whose tmpfs takes no idmapping): shown as it is. */
  noIdmap?: boolean;
}

/** The module files every child sees, copied into its root (see zygote/sandbox/root.ts). */
export interface NativeRootCopies {
  /** Regular files copied to the same absolute path, read-only. */
  copies?: string[];
  /** Symlinks made in the root. */
  links?: { path: string; target: string }[];
  /** Bytes the copies take (whole pages): the root tmpfs is sized for them. */
  copyBytes?: number;
}

export interface NativeRootSpec extends NativeRootCopies {
  /** Mounted in this order; see zygote/sandbox/root.ts. */
  binds: NativeRootBind[];
  /** Top directories under /tmp holding copies or binds: put back over the child's own /tmp. */
  tmpDirs?: string[];
  /** Size of the private /tmp, in bytes. */
  tmpBytes: number;
  /** A /proc of the child's own pid namespace. */
  proc: boolean;
  /**
   * The zygote's template mount namespace (buildRootTemplate); the child then mounts only
   * templateBinds on top of it. Absent or -1: the child builds the whole root of binds.
   */
  templateFd?: number;
  templateBinds?: NativeRootBind[];
  /** The template's top directories under /tmp, put back over the child's own /tmp. */
  templateTmpDirs?: string[];
  /** A user namespace mapping the client's uid and gid to the child's (makeIdmapUserns): every client mount is idmapped through it. */
  idmapFd?: number;
  /** The client's mount namespace when it is not the zygote's: the child copies the client's mounts from inside it. */
  clientMountNsFd?: number;
}

export interface SeccompRuleSpec {
  name: string;
  action: 'allow' | 'kill' | 'errno';
  errno?: number;
  args?: { index: number; op: 'eq' | 'masked_eq'; value: number; mask?: number }[];
}

export interface ForkSpec {
  stdin: number;
  stdout: number;
  stderr: number;
  /** Write end of the pipe on which the child reports how its setup went. */
  report: number;
  name: string;
  sandbox: NativeSandboxSpec;
  /** A pool child: its end of the socketpair its claim comes on (stdio: /dev/null until then). */
  claim?: number;
  /** A pool child: [start, length, ...] byte ranges it copies before it is ready (zygote/prefault.ts). */
  prefault?: number[];
  /** A pool child: [start, length, ...] byte ranges whose resident pages it reads once before it is ready (native/pretouch.h). */
  pretouch?: number[];
}

export type ForkResult = { role: 'parent'; pid: number; pidfd: number } | { role: 'child'; pid: number; newRoot: boolean; pooled?: boolean };

/** What a pool child's claim applies: its stdio (fds it received), its name and its sandbox. */
export interface ClaimSpec {
  stdin: number;
  stdout: number;
  stderr: number;
  name: string;
  sandbox: NativeSandboxSpec;
}

export interface SetupReport {
  ok: boolean;
  step: string;
  errno: number;
  /** The errno's symbol ("EPERM"), empty when there was none. */
  code: string;
  message: string;
}

/** How the step ended, as its pid namespace's init saw it (native/init.cc). */
export interface StepExit {
  code: number | null;
  signal: number | null;
  /** The step's own rusage from the init's wait4. */
  maxRssKb: number;
  userUs: number;
  systemUs: number;
  /** Nothing else was left in the namespace: the sandbox is over but for its exiting init. */
  alone: boolean;
}

export interface ReapResult {
  code: number | null;
  signal: number | null;
  userUs: number;
  systemUs: number;
  maxRssKb: number;
}

/** The client's event-loop-driven end of a control socket (native/channel.cc). */
export interface NativeChannel {
  /** Sends a packet, with fds (the caller keeps and closes its own; queued packets hold copies). */
  send(data: Buffer, fds?: number[]): void;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeChannelConstructor {
  new (
    fd: number,
    maxBytes: number,
    onPacket: (data: Buffer, fds: number[], truncated: boolean) => void,
    onEnd: (errorCode: string | null) => void,
  ): NativeChannel;
}

export interface NativeAddon {
  // fdpass.cc
  socketpair(): [number, number];
  listenUnix(path: string, backlog: number): number;
  connectUnix(path: string): number;
  /** A POSIX ACL on a socket file letting each of uids connect (read and write), beside its owner. */
  grantSocketAccess(path: string, uids: number[]): void;
  accept(fd: number): number | null;
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /** An fd of the connected peer's mount namespace, or -1 when it is this process's own. */
  peerMountNamespace(fd: number): number;
  sendPacket(fd: number, data: Buffer, fds?: number[]): boolean;
  recvPacket(fd: number, maxBytes: number): NativePacket | null | 'eof';
  // stream.cc
  /** A listening stream socket (TCP, or Unix with mode 0600), close-on-exec and non-blocking. */
  listenStream(address: { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string }, backlog: number): number;
  // channel.cc
  Channel: NativeChannelConstructor;
  // fork.cc
  forkChild(spec: ForkSpec): ForkResult;
  /** In a pool child: applies its claim (native/fork.cc); returns only once every step succeeded. */
  claimChild(spec: ClaimSpec): { pid: number };
  // process.cc
  pipe(): [number, number];
  /** A sealed memfd holding bytes, read from 0 (close-on-exec unless inheritable): a zygote's configuration, off argv. */
  sealedDataFd(bytes: Buffer, inheritable: boolean): number;
  setNonBlocking(fd: number, on: boolean): void;
  close(fd: number): void;
  poll(fds: Int32Array, events: Int16Array, revents: Int16Array, timeoutMs: number): number;
  reap(pid: number): ReapResult | null;
  pidfdSendSignal(pidfd: number, signal: number): boolean;
  /** Builds the root of binds once, in a mount namespace kept alive by the returned fd. */
  buildRootTemplate(plan: NativeRootCopies & { binds: NativeRootBind[] }, dirs: string[]): number;
  readReport(fd: number): SetupReport | null | 'eof' | { exit: StepExit };
  exitNow(code: number): never;
  execve(path: string, argv: string[], env: string[]): never;
  sameOpenFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean;
  // signals.cc
  installSignalPipe(signals: number[]): number;
  readSignals(): number[];
  // sandbox/seccomp.cc
  compileSeccomp(rules: SeccompRuleSpec[], defaultErrno: number): { id: number; instructions: number };
  // platform.cc
  patchPlatformDrain(): { slot: number } | true;
  // heap.cc
  /** Full collections in V8's reduce-memory mode: the young generation shrinks, free pages are unmapped. */
  reduceHeap(): void;
  // pretouch.cc
  /** [start, length, ...]: the pages of this process's readable private mappings (memory and regular files) that it has an entry for and that read fast now (accessed since its fork), at most maxPages. */
  accessedPages(maxPages: number): number[];
  /** Reads one byte of each resident page of the ranges that lies in a readable private mapping of memory or a regular file. */
  pretouchRanges(ranges: number[]): void;
  // sandbox/network.cc
  /** The ifindex of an interface in this process's network namespace, or 0 if there is none. */
  interfaceIndex(name: string): number;
  // sources.cc
  /**
   * Opens a mount source as this process (O_PATH, the last component not followed) and checks
   * it may be mounted: a directory or regular file, not on a pseudo filesystem, readable (and
   * writable if asked) by this process's effective ids. Throws an Error with .code, .path and
   * .reason otherwise.
   */
  openMountSource(path: string, writable: boolean): { fd: number; directory: boolean };
  /** Whether fd was opened with O_PATH (fcntl F_GETFL; no filesystem call). */
  isPathFd(fd: number): boolean;
  // sandbox/idmap.cc
  /** A user namespace mapping fromUid to toUid and fromGid to toGid only; an fd of it. */
  makeIdmapUserns(fromUid: number, toUid: number, fromGid: number, toGid: number): number;
  /** Reaps the helpers makeIdmapUserns left behind; how many are still to be reaped. */
  reapIdmapHelpers(): number;
  // sandbox/outputfs.cc
  /**
   * A new tmpfs of at most bytes (whole pages) and inodes (its root included), its root owned
   * by uid:gid with mode, nosuid, nodev, noexec, attached nowhere: an O_PATH fd of its root.
   * The kernel frees it when the last fd or mount of it goes.
   */
  makeOutputFs(bytes: number, inodes: number, uid: number, gid: number, mode: number): number;
  /** Whether a copy of such a tmpfs takes an idmapping through the user namespace usernsFd (Linux 6.3+): null, or the errno's name. */
  outputFsTakesIdmap(usernsFd: number): string | null;
  // probe.cc (zygote doctor)
  probeSeccompVersion(): { major: number; minor: number; micro: number };
  probeLandlockAbi(): { abi: number | null; errno: string | null };
  /**
   * getpid through the i386 (`int $0x80`) or x32 entry, in a forked child with no filter of
   * ours. returned: the call came back, with value (the pid it gave) or errno; otherwise signal
   * is the number that ended the child. pid is the child's own pid.
   */
  probeSyscallEntry(entry: 'i386' | 'x32'): { returned: boolean; value: number | null; errno: string | null; pid: number | null; signal: number | null };
  /** Whether a detached copy of path's mount takes this attribute (idmap: through a throwaway user namespace). */
  probeMountAttr(path: string, attr: 'noexec' | 'idmap'): { ok: boolean; errno: string | null };
  /** /proc/self/status of a forked child before and after an allow-all seccomp filter, split by a line "--". */
  probeSeccompSpeculation(): string;
  /** Whether this process can fork now: a raw clone of it that exits at once (zygote health). */
  probeFork(): { ok: boolean; errno: string | null; micros: number };
}

/** The package's root: dist/native/ is two levels below it. */
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The addon, through node-gyp-build: build/Release when it was compiled here (a checkout, or an
 * install where the prebuilt binary did not load and `npm install` built it from source), else
 * the prebuilt binary for this platform in prebuilds/ (README, Install).
 */
export const native: NativeAddon = (createRequire(import.meta.url)('node-gyp-build') as (root: string) => NativeAddon)(PACKAGE_ROOT);

/** poll(2) event bits. */
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

// ---- files.cc: opening a step's output files without following links; read-only mappings ----

/** What fstatFile says an fd is. */
export type NativeFileType = 'file' | 'dir' | 'fifo' | 'symlink' | 'socket' | 'char' | 'block' | 'unknown';

/** fstatFile's answer; numbers are doubles as in fs.fstatSync (an ino above 2^53 loses bits). */
export interface NativeFileStat {
  type: NativeFileType;
  size: number;
  nlink: number;
  dev: number;
  ino: number;
  uid: number;
  gid: number;
  /** st_mode: type and permission bits. */
  mode: number;
}

// Merges into NativeAddon above (same module), so `native.openBeneath` is typed like the rest.
export interface NativeAddon {
  /**
   * openat2 beneath dirFd: no absolute path or '..' out of it (EXDEV), no symlink in any
   * component (ELOOP), no magic link, no mount crossed (EXDEV); O_NONBLOCK so a FIFO cannot
   * block. 'read' opens an existing file; 'write' only creates a new one (O_EXCL, 0644).
   * Errors carry .code, .errno, .syscall ('openat2') and .path.
   */
  openBeneath(dirFd: number, path: string, flags: 'read' | 'write'): number;
  /** A directory fd (O_DIRECTORY | O_NOFOLLOW) to open beneath; close it with close(). */
  openDirectory(path: string): number;
  fstatFile(fd: number): NativeFileStat;
  /**
   * Maps a regular file's first `length` bytes (default: all) read-only and shared, without a
   * copy; the fd may be closed afterwards. A write through a view is a SIGSEGV. Unmapped when a
   * GC collects the buffer, or on the next event-loop turn after unmapFile. Empty file: empty buffer.
   */
  mmapFile(fd: number, length?: number): ArrayBuffer;
  /** Detaches a buffer from mmapFile (its views read as empty) and unmaps it on the next turn. */
  unmapFile(buffer: ArrayBuffer): void;
}
