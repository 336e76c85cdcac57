// The addon's probe functions (native/probe.cc), as the doctor uses them.
import { native } from '../../native/index.js';

export type SeccompVersion = ReturnType<typeof native.probeSeccompVersion>;

/** landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the ABI, or the errno. */
export type LandlockAbiProbe = ReturnType<typeof native.probeLandlockAbi>;

/** The version of the libseccomp the addon runs with. */
export function libseccompVersion(): SeccompVersion {
  return native.probeSeccompVersion();
}

/** The kernel's Landlock ABI probe. */
export function landlockAbi(): LandlockAbiProbe {
  return native.probeLandlockAbi();
}

/** getpid through the i386 or x32 entry, in a forked child (native/probe.cc). */
export type SyscallEntryProbe = ReturnType<typeof native.probeSyscallEntry>;

export function syscallEntry(entry: 'i386' | 'x32'): SyscallEntryProbe {
  return native.probeSyscallEntry(entry);
}

/** Whether a detached copy of path's mount takes MOUNT_ATTR_NOEXEC or an idmapping. */
export function mountAttr(path: string, attr: 'noexec' | 'idmap'): ReturnType<typeof native.probeMountAttr> {
  return native.probeMountAttr(path, attr);
}

/** /proc/self/status of a forked child before and after an allow-all seccomp filter, split by "\n--\n". */
export function seccompSpeculation(): string {
  return native.probeSeccompSpeculation();
}
