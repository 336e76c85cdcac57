// Which layers the sandbox relies on (required) and which only harden it (advisory): the one
// place that policy lives. A required layer that is missing or unknown fails `zygote doctor`.

export const REQUIRED_LAYERS: ReadonlySet<string> = new Set([
  'node', // the seccomp allow-list and the fork recipe are made for Node 20
  'privileges', // the uid drop
  'user-namespace', // made by each child after its uid drop, so unprivileged ones must be allowed
  'pid-namespace',
  'mount-namespace',
  'network-namespace',
  'ipc-namespace',
  'uts-namespace',
  'cgroup-namespace',
  'no-new-privs',
  'seccomp',
  'noexec-mounts', // every writable place in a child's root is mounted noexec
  'cgroup-memory',
  'cgroup-pids',
]);

/**
 * Advisory: landlock (used where the kernel has it; the root already confines the filesystem),
 * cgroups (the overview; memory and pids carry the
 * requirement), network (nftables for the opt-in network), idmapped-mounts, the i386 and x32
 * entries, and the host settings ptrace-scope, core-pattern, legacy-tiocsti, smt and speculation.
 */
export function isRequired(layer: string): boolean {
  return REQUIRED_LAYERS.has(layer);
}
