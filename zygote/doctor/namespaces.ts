// Namespaces: kernel support, sysctl limits, and a real probe with unshare(1) in a child.
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { exists, kernelAtLeast, readInt, readValue } from './proc.js';
import type { Finding } from './types.js';

export const UNSHARE = '/usr/bin/unshare';
const SETPRIV = '/usr/bin/setpriv';
const PROBE_TIMEOUT_MS = 5_000;
/** uid that a sandboxed child could run as; used to see whether unprivileged users may unshare. */
const NOBODY = 65534;

export interface NamespaceKind {
  layer: string;
  /** Name under /proc/self/ns. */
  ns: string;
  /** /proc/sys/user/max_<x>_namespaces */
  sysctl: string;
  /** unshare(1) flags that create it. */
  flags: string[];
  /** Kernel option that provides it. */
  config: string;
  /** What it gives a child its own copy of. */
  purpose: string;
}

export const NAMESPACES: NamespaceKind[] = [
  { layer: 'user-namespace', ns: 'user', sysctl: 'max_user_namespaces', flags: ['--user', '--map-root-user'], config: 'CONFIG_USER_NS', purpose: 'uid and gid mappings (lets the others be made without root)' },
  { layer: 'pid-namespace', ns: 'pid', sysctl: 'max_pid_namespaces', flags: ['--pid', '--fork'], config: 'CONFIG_PID_NS', purpose: 'process ids (a child sees and signals only its own)' },
  { layer: 'mount-namespace', ns: 'mnt', sysctl: 'max_mnt_namespaces', flags: ['--mount'], config: 'CONFIG_NAMESPACES', purpose: 'the mount table (a private view of the filesystem)' },
  { layer: 'network-namespace', ns: 'net', sysctl: 'max_net_namespaces', flags: ['--net'], config: 'CONFIG_NET_NS', purpose: 'the network stack (no host interfaces)' },
  { layer: 'ipc-namespace', ns: 'ipc', sysctl: 'max_ipc_namespaces', flags: ['--ipc'], config: 'CONFIG_IPC_NS', purpose: 'System V IPC and POSIX message queues' },
  { layer: 'uts-namespace', ns: 'uts', sysctl: 'max_uts_namespaces', flags: ['--uts'], config: 'CONFIG_UTS_NS', purpose: 'hostname and domain name' },
  { layer: 'cgroup-namespace', ns: 'cgroup', sysctl: 'max_cgroup_namespaces', flags: ['--cgroup'], config: 'CONFIG_CGROUPS', purpose: 'the view of cgroup paths' },
];

export interface UnshareOutcome {
  ok: boolean | null;
  /** Why it failed or could not run ("unshare failed: Operation not permitted"). */
  reason: string | null;
}

/** Runs `[prefix...] unshare FLAGS true` in a child: the namespace lives and dies with it. */
export function tryUnshare(flags: string[], prefix: string[] = []): UnshareOutcome {
  if (!exists(UNSHARE)) return { ok: null, reason: `${UNSHARE} not found` };
  const argv = [...prefix, UNSHARE, ...flags, 'true'];
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
  });
  if (r.error) return { ok: null, reason: `could not run ${argv[0]}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}` };
  if (r.status === 0) return { ok: true, reason: null };
  if (r.signal) return { ok: null, reason: `${argv[0]} was killed by ${r.signal}` };
  const said = (r.stderr ?? '').trim().split('\n')[0]?.replace(/^unshare: /, '') || `exit ${r.status}`;
  return { ok: false, reason: said };
}

/** Flags that probe kind: as root directly; otherwise inside a new user namespace, as an unprivileged sandbox would. */
function probeFlags(kind: NamespaceKind, root: boolean): string[] {
  return root || kind.ns === 'user' ? kind.flags : ['--user', '--map-root-user', ...kind.flags];
}

export function probeNamespace(kind: NamespaceKind): Finding {
  const root = process.geteuid?.() === 0;
  const max = readInt(`/proc/sys/user/${kind.sysctl}`);
  const supported = exists(`/proc/self/ns/${kind.ns}`);
  const flags = probeFlags(kind, root);
  const data: Record<string, unknown> = { kernelSupport: supported, [kind.sysctl]: max, probe: `unshare ${flags.join(' ')} true` };
  const base = { layer: kind.layer, data };

  if (!supported) {
    return { ...base, status: 'missing', detail: `the kernel has no ${kind.ns} namespaces (/proc/self/ns/${kind.ns} is absent)`, fix: `use a kernel built with ${kind.config}` };
  }
  if (max === 0) {
    return { ...base, status: 'missing', detail: `user.${kind.sysctl} is 0: nobody may create one`, fix: `sysctl -w user.${kind.sysctl}=15000 (and persist it in /etc/sysctl.d/)` };
  }
  const extra: string[] = [];
  if (kind.ns === 'user') extra.push(...userNamespaceNotes(data, root));
  if (kind.ns === 'mnt' && !kernelAtLeast(5, 12)) {
    // The child's root is built with open_tree, move_mount and mount_setattr, and its /proc
    // mounted with subset=pid (5.8).
    return { ...base, status: 'missing', detail: `kernel ${release()} is older than 5.12: the child's root needs open_tree, move_mount and mount_setattr`, fix: 'run on Linux 5.12 or newer' };
  }

  const outcome = tryUnshare(flags);
  data.probeOk = outcome.ok;
  data.probeError = outcome.reason;
  const limit = max === null ? '' : `, limit ${max}`;
  if (outcome.ok === null) {
    return { ...base, status: 'unknown', detail: `supported by the kernel${limit}, but not probed: ${outcome.reason}`, fix: 'install util-linux (unshare) to let the doctor probe it' };
  }
  if (outcome.ok && kind.ns === 'user' && data.unprivilegedProbeOk === false) {
    // Children make their user namespace after dropping to their uid: root being able to is
    // not enough.
    return {
      ...base,
      status: 'missing',
      detail: [`root can create one, but an unprivileged uid cannot, and each child makes its own after dropping its uid`, ...extra].join('; '),
      fix: 'allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 on Debian kernels; kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile with "userns," for the zygote on Ubuntu 23.10+), or run children without the user-namespace layer',
    };
  }
  if (outcome.ok) {
    const as = root ? 'as root' : 'inside a new user namespace';
    return { ...base, status: 'ok', detail: [`created ${as} (unshare ${flags.join(' ')})${limit}; isolates ${kind.purpose}`, ...extra].join('; ') };
  }
  return {
    ...base,
    status: 'missing',
    detail: [`unshare ${flags.join(' ')} failed: ${outcome.reason}`, ...extra].join('; '),
    fix: root
      ? 'a seccomp profile or missing CAP_SYS_ADMIN of the container or service that runs the zygote forbids unshare: run it with CAP_SYS_ADMIN and a seccomp profile that allows unshare/clone with namespace flags (docker: --cap-add SYS_ADMIN --security-opt seccomp=...)'
      : 'run the zygote as root, or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 on Debian kernels; kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile with "userns," on Ubuntu 23.10+)',
  };
}

/** The sysctls that gate unprivileged user namespaces, and whether uid 65534 could make one. */
function userNamespaceNotes(data: Record<string, unknown>, root: boolean): string[] {
  const notes: string[] = [];
  const clone = readValue('/proc/sys/kernel/unprivileged_userns_clone');
  data.unprivileged_userns_clone = clone;
  if (clone !== null) notes.push(`kernel.unprivileged_userns_clone=${clone}`);
  const apparmor = readValue('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  data.apparmor_restrict_unprivileged_userns = apparmor;
  if (apparmor !== null) notes.push(`kernel.apparmor_restrict_unprivileged_userns=${apparmor}`);
  if (root && exists(SETPRIV)) {
    // Whether an unprivileged child could create one: the seccomp filter must then refuse it.
    const nobody = tryUnshare(['--user', '--map-root-user'], [SETPRIV, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--']);
    data.unprivilegedProbeOk = nobody.ok;
    if (nobody.ok === true) notes.push(`uid ${NOBODY} can create one too, as each child does after dropping its uid (its seccomp filter then refuses unshare and clone with CLONE_NEWUSER)`);
    else if (nobody.ok === false) notes.push(`uid ${NOBODY} cannot (${nobody.reason})`);
  }
  return notes;
}

export function probeNamespaces(): Finding[] {
  return NAMESPACES.map(probeNamespace);
}
