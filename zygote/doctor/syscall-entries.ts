// The i386 (`int $0x80`) and x32 syscall entries: the two other ways an x86_64 process can
// reach the kernel's syscall tables. Where an entry is live, the children's seccomp filter must
// (and does) kill any call made through it, since its syscall numbers mean other calls; where
// it is absent there is nothing to filter. Hosts of one kind differ here: some VMs have
// CONFIG_IA32_EMULATION=y and still fault on `int $0x80` (ia32_emulation=0 or a hypervisor
// that lacks the gate), so this is probed, never inferred from the kernel config.
import { constants } from 'node:os';
import { syscallEntry, type SyscallEntryProbe } from './native-probes.js';
import { selfStatus } from './proc.js';
import type { Finding } from './types.js';

export type SyscallEntryName = 'i386' | 'x32';

/**
 * - `present`: a call through the entry reached the kernel and was answered (getpid gave the
 *   caller's pid).
 * - `absent`: the kernel has no such entry (a fault, or ENOSYS).
 * - `filtered`: a seccomp filter this process already runs under stops the call (SIGSYS, or an
 *   errno while Seccomp is 2), so neither an attack through it nor its positive control can
 *   work here.
 */
export type SyscallEntryState = 'present' | 'absent' | 'filtered';

export interface SyscallEntryVerdict {
  entry: SyscallEntryName;
  state: SyscallEntryState;
  /** One sentence: what the probe saw and what it means. */
  reason: string;
}

const HOW: Record<SyscallEntryName, string> = {
  i386: 'getpid through int $0x80',
  x32: 'getpid through the x32 ABI (syscall number | 0x40000000)',
};

function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

/**
 * Pure: the verdict on one probe. `filteredSelf` says whether the probing process was already
 * under a seccomp filter (Seccomp: 2), which makes an errno the filter's answer, not the
 * kernel's. Throws on an outcome that fits none of the states (a wrong pid, another signal, a
 * child that neither answered nor died of a signal): a probe that errs must never be read as
 * "absent", or a skipped test could hide a broken layer.
 */
export function decideSyscallEntry(entry: SyscallEntryName, probe: SyscallEntryProbe, filteredSelf: boolean): SyscallEntryVerdict {
  const how = HOW[entry];
  if (probe.returned) {
    if (probe.errno === null) {
      if (probe.value !== null && probe.value === probe.pid) {
        return { entry, state: 'present', reason: `${how} returned the caller's pid: the entry is live, and the children's filter kills any call made through it` };
      }
      throw new Error(`the ${entry} entry probe is inconsistent: ${how} returned ${probe.value}, but the child's pid is ${probe.pid}`);
    }
    if (probe.errno === 'ENOSYS' && !filteredSelf) {
      return { entry, state: 'absent', reason: `${how} gives ENOSYS with no filter: this kernel has no ${entry} syscall table, so there is nothing to filter` };
    }
    if (filteredSelf) {
      return { entry, state: 'filtered', reason: `${how} gives ${probe.errno} under the seccomp filter this process already runs under (a container's?): it cannot be tried here` };
    }
    throw new Error(`the ${entry} entry probe is inconsistent: ${how} gave ${probe.errno} with no seccomp filter on the caller`);
  }
  if (probe.signal === constants.signals.SIGSEGV && entry === 'i386' && !filteredSelf) {
    return { entry, state: 'absent', reason: `${how} raises SIGSEGV with no filter: this host has no usable i386 entry (ia32_emulation off, or a VM without it), so there is nothing to filter` };
  }
  if (probe.signal === constants.signals.SIGSYS) {
    return { entry, state: 'filtered', reason: `${how} is killed (SIGSYS) by the seccomp filter this process already runs under: it cannot be tried here` };
  }
  const how2 = probe.signal === null ? 'died without a signal or an answer' : `was killed by ${signalName(probe.signal)}`;
  throw new Error(`the ${entry} entry probe failed: the child making ${how} ${how2}${filteredSelf ? ' (this process runs under a seccomp filter)' : ''}`);
}

/** Probes one entry on this host (a forked child; a few milliseconds). Throws as above. */
export function probeSyscallEntry(entry: SyscallEntryName): SyscallEntryVerdict {
  const filteredSelf = selfStatus().get('Seccomp') === '2';
  return decideSyscallEntry(entry, syscallEntry(entry), filteredSelf);
}

/** The doctor's findings: advisory, and ok either way (a live entry is what the filter's arch check is for). */
export function probeSyscallEntries(): Finding[] {
  return (['i386', 'x32'] as const).map((entry) => {
    const layer = `${entry}-entry`;
    try {
      const v = probeSyscallEntry(entry);
      return { layer, status: 'ok' as const, detail: `${v.state}: ${v.reason}`, data: { state: v.state } };
    } catch (e) {
      return { layer, status: 'unknown' as const, detail: (e as Error).message, fix: 'report this host: the probe saw an outcome it does not know' };
    }
  });
}
