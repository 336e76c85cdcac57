// Landlock: the kernel's ABI version, through the native probe; why it is off when it is.
import { landlockAbi, type LandlockAbiProbe } from './native-probes.js';
import { readValue } from './proc.js';
import type { Finding } from './types.js';

/** What each ABI version adds (Documentation/userspace-api/landlock.rst). */
export const LANDLOCK_FEATURES: Record<number, string> = {
  1: 'filesystem access rights',
  2: 'file re-parenting (refer)',
  3: 'truncate',
  4: 'TCP bind/connect',
  5: 'device ioctl',
  6: 'abstract unix socket and signal scoping',
  7: 'audit logging',
};

const LSM_FILE = '/sys/kernel/security/lsm';

export function probeLandlock(): Finding {
  let probe: LandlockAbiProbe | null = null;
  let error: string | null = null;
  try {
    probe = landlockAbi();
  } catch (e) {
    error = (e as Error).message;
  }
  const lsm = readValue(LSM_FILE);
  const cmdlineLsm = /(?:^|\s)lsm=(\S+)/.exec(readValue('/proc/cmdline') ?? '')?.[1] ?? null;
  const data = { abi: probe?.abi ?? null, errno: probe?.errno ?? error, lsm, cmdlineLsm };
  const base = { layer: 'landlock', data };
  const lsmNote = lsm !== null ? `active LSMs: ${lsm}` : `${LSM_FILE} is not visible (securityfs is not mounted: mount -t securityfs securityfs /sys/kernel/security to list the active LSMs)`;

  if (probe === null) {
    return { ...base, status: 'unknown', detail: `not probed: ${error}; ${lsmNote}`, fix: 'rebuild the native addon with native/probe.cc registered' };
  }
  if (probe.abi !== null && probe.abi >= 1) {
    const known = Object.keys(LANDLOCK_FEATURES).map(Number).filter((n) => n <= probe.abi!);
    const latest = LANDLOCK_FEATURES[Math.max(...known)];
    return { ...base, status: 'ok', detail: `ABI ${probe.abi} (up to ${latest}); ${lsmNote}` };
  }
  const enable = `boot with landlock in the LSM list, e.g. lsm=landlock,lockdown,yama,integrity,apparmor,bpf (keep the LSMs you have${lsm ? `: ${lsm}` : ''}; check with cat ${LSM_FILE} once securityfs is mounted)`;
  if (probe.errno === 'EOPNOTSUPP') {
    return { ...base, status: 'missing', detail: `the kernel has Landlock but it is not enabled (EOPNOTSUPP); ${lsmNote}`, fix: enable };
  }
  if (probe.errno === 'ENOSYS') {
    return {
      ...base,
      status: 'missing',
      detail: `the kernel has no Landlock (ENOSYS: older than 5.13, built without CONFIG_SECURITY_LANDLOCK, or a seccomp filter hides the syscall); ${lsmNote}`,
      fix: `use a 5.13+ kernel built with CONFIG_SECURITY_LANDLOCK=y and ${enable}`,
    };
  }
  return { ...base, status: 'unknown', detail: `landlock_create_ruleset failed with ${probe.errno}; ${lsmNote}` };
}
