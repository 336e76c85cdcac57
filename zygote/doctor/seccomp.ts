// seccomp: kernel support (/proc), the filter actions it offers, and the libseccomp in use.
import { libseccompVersion, type SeccompVersion } from './native-probes.js';
import { readValue, selfStatus } from './proc.js';
import type { Finding } from './types.js';

/** Actions the children's filter uses: allow-list, EPERM by default, kill on the dangerous set. */
export const NEEDED_ACTIONS = ['allow', 'errno', 'kill_process'] as const;
/** SCMP_ACT_KILL_PROCESS needs libseccomp 2.4; 2.5 adds user_notif. */
const MIN_LIBSECCOMP: SeccompVersion = { major: 2, minor: 4, micro: 0 };

export function versionAtLeast(v: SeccompVersion, min: SeccompVersion): boolean {
  if (v.major !== min.major) return v.major > min.major;
  if (v.minor !== min.minor) return v.minor > min.minor;
  return v.micro >= min.micro;
}

const MODES: Record<string, string> = { '0': 'not filtered', '1': 'in strict mode', '2': 'already filtered' };

export function probeSeccomp(): Finding {
  const status = selfStatus();
  const mode = status.get('Seccomp') ?? null;
  const filters = status.get('Seccomp_filters') ?? null;
  const actionsText = readValue('/proc/sys/kernel/seccomp/actions_avail');
  const actions = actionsText === null ? null : actionsText.split(/\s+/).filter(Boolean);
  let lib: SeccompVersion | null = null;
  let libError: string | null = null;
  try {
    lib = libseccompVersion();
  } catch (e) {
    libError = (e as Error).message;
  }
  const data = { mode, filters, actionsAvail: actions, libseccomp: lib, libseccompError: libError };
  const base = { layer: 'seccomp', data };

  if (mode === null) {
    return { ...base, status: 'missing', detail: 'the kernel has no seccomp (/proc/self/status has no Seccomp: field)', fix: 'use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER (every mainstream distribution kernel is)' };
  }
  if (actions === null) {
    return {
      ...base,
      status: 'degraded',
      detail: 'seccomp is present but /proc/sys/kernel/seccomp/actions_avail is not (kernel older than 4.14): SECCOMP_RET_KILL_PROCESS is unavailable, only killing the offending thread',
      fix: 'upgrade to kernel 4.14 or newer',
    };
  }
  const lacking = NEEDED_ACTIONS.filter((a) => !actions.includes(a));
  const libText = lib ? `libseccomp ${lib.major}.${lib.minor}.${lib.micro}` : `libseccomp version unknown (${libError})`;
  const self = mode === '2' ? `; this process is ${MODES[mode]} (${filters ?? '?'} filter(s), e.g. a container's): the children's filter stacks on it and cannot loosen it` : '';
  const detail = `kernel actions: ${actions.join(' ')}; ${libText}${self}`;
  if (lacking.includes('errno') || lacking.includes('allow')) {
    return { ...base, status: 'missing', detail: `the kernel lacks seccomp actions ${lacking.join(', ')}; ${detail}`, fix: 'use a kernel built with CONFIG_SECCOMP_FILTER' };
  }
  if (lacking.length > 0) {
    return { ...base, status: 'degraded', detail: `no ${lacking.join(', ')} (a denied syscall would kill only its thread); ${detail}`, fix: 'upgrade to kernel 4.14 or newer' };
  }
  if (lib && !versionAtLeast(lib, MIN_LIBSECCOMP)) {
    return {
      ...base,
      status: 'degraded',
      detail: `${detail}: older than ${MIN_LIBSECCOMP.major}.${MIN_LIBSECCOMP.minor}, which SCMP_ACT_KILL_PROCESS needs`,
      fix: 'install libseccomp 2.5 or newer (apt-get install libseccomp2 libseccomp-dev) and rebuild the addon',
    };
  }
  return { ...base, status: 'ok', detail };
}
