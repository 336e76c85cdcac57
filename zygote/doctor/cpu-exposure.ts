// What a step could learn from another process through the CPU itself, which no sandbox layer
// of ours can stop: SMT siblings sharing a core's buffers (MDS, L1TF and kin), and speculative
// store bypass and indirect-branch attacks, which the kernel mitigates per process only where
// its policy (or the hypervisor) allows. Reported so the operator can decide; advisory.
import { readValue } from './proc.js';
import { seccompSpeculation } from './native-probes.js';
import type { Finding } from './types.js';

const SMT = '/sys/devices/system/cpu/smt';
const VULNERABILITIES = '/sys/devices/system/cpu/vulnerabilities';

export function probeSmt(): Finding {
  const active = readValue(`${SMT}/active`);
  const control = readValue(`${SMT}/control`);
  const data = { active, control };
  if (active === null) return { layer: 'smt', status: 'unknown', detail: `${SMT} is not readable (no sysfs?)`, data };
  if (active === '0') return { layer: 'smt', status: 'ok', detail: `SMT is off (control: ${control ?? '?'}): no two steps share a physical core's buffers`, data };
  return {
    layer: 'smt',
    status: 'degraded',
    detail: `SMT is on (control: ${control ?? '?'}): steps on sibling hyperthreads share a core, and may read each other's data through its buffers (MDS, L1TF, and kin)`,
    fix: 'boot with nosmt (or echo off > /sys/devices/system/cpu/smt/control), or pin renderers of different trust to different cores',
    data,
  };
}

/** The value of one field of a /proc/PID/status text. */
export function statusField(text: string, name: string): string | null {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
  return m ? m[1]!.trim() : null;
}

/** What a seccomp-filtered process gets: SSB and indirect-branch states, before and after a filter. */
export function probeSpeculation(): Finding {
  const [before = '', after = ''] = seccompSpeculation().split('\n--\n');
  const ssb = { before: statusField(before, 'Speculation_Store_Bypass'), after: statusField(after, 'Speculation_Store_Bypass') };
  const ib = { before: statusField(before, 'SpeculationIndirectBranch'), after: statusField(after, 'SpeculationIndirectBranch') };
  const host = readValue(`${VULNERABILITIES}/spec_store_bypass`);
  const data = { speculationStoreBypass: ssb, indirectBranch: ib, hostSpecStoreBypass: host, spectreV2: readValue(`${VULNERABILITIES}/spectre_v2`) };
  if (ssb.after === null) return { layer: 'speculation', status: 'unknown', detail: 'no Speculation_Store_Bypass line in a filtered child\'s /proc/self/status (kernel older than 4.17, or the probe failed)', data };
  const protectedStates = /not vulnerable|force mitigated|globally mitigated|thread mitigated/;
  const detail = `a child under a seccomp filter: Speculation_Store_Bypass "${ssb.after}", SpeculationIndirectBranch "${ib.after ?? '?'}" (host: spec_store_bypass "${host ?? '?'}")`;
  if (protectedStates.test(ssb.after)) return { layer: 'speculation', status: 'ok', detail, data };
  return {
    layer: 'speculation',
    status: 'degraded',
    detail: `${detail}: a step could read another process's memory through speculative store bypass`,
    fix: 'boot with spec_store_bypass_disable=seccomp (or on) and spectre_v2_user=seccomp; in a VM the hypervisor must also expose SSBD/STIBP to the guest',
    data,
  };
}
