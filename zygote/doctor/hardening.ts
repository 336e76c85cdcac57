// Host settings that do not belong to the sandbox but weaken or strengthen it: Yama's
// ptrace_scope, where core dumps go, and TIOCSTI terminal injection.
import { readValue } from './proc.js';
import type { Finding } from './types.js';

export function probePtraceScope(): Finding {
  const value = readValue('/proc/sys/kernel/yama/ptrace_scope');
  const data = { ptrace_scope: value };
  if (value === null) {
    return {
      layer: 'ptrace-scope',
      status: 'missing',
      detail: 'Yama is not active (no kernel.yama.ptrace_scope): a process may ptrace, and read /proc/PID/mem of, any process of its own uid',
      fix: 'give each child its own uid and make it non-dumpable (PR_SET_DUMPABLE 0); for host-wide protection boot with yama in lsm= and set kernel.yama.ptrace_scope=1',
      data,
    };
  }
  const meaning: Record<string, string> = { '0': 'classic: any same-uid process', '1': 'restricted: descendants only', '2': 'admin-only (CAP_SYS_PTRACE)', '3': 'no attach at all' };
  const detail = `kernel.yama.ptrace_scope=${value} (${meaning[value] ?? 'unrecognised'})`;
  if (value === '0') {
    return { layer: 'ptrace-scope', status: 'degraded', detail: `${detail}: a same-uid process may ptrace another`, fix: 'sysctl -w kernel.yama.ptrace_scope=1 (persist in /etc/sysctl.d/)', data };
  }
  return { layer: 'ptrace-scope', status: 'ok', detail, data };
}

export function probeCorePattern(): Finding {
  const pattern = readValue('/proc/sys/kernel/core_pattern');
  const data = { core_pattern: pattern };
  if (pattern === null) {
    return { layer: 'core-pattern', status: 'unknown', detail: '/proc/sys/kernel/core_pattern is unreadable', data };
  }
  if (pattern.startsWith('|')) {
    const helper = pattern.slice(1).trim().split(/\s+/)[0] ?? '';
    return {
      layer: 'core-pattern',
      status: 'degraded',
      detail: `cores are piped to a helper (${helper}), which runs as root outside the sandbox and keeps the crashing child's memory; the kernel ignores RLIMIT_CORE=0 for pipes (only 1 stops the dump)`,
      fix: 'make children non-dumpable (prctl PR_SET_DUMPABLE 0) or give them RLIMIT_CORE 1; or point kernel.core_pattern at a file pattern',
      data,
    };
  }
  return {
    layer: 'core-pattern',
    status: 'ok',
    detail: `cores are written as files (${JSON.stringify(pattern)}${pattern.startsWith('/') ? '' : ", relative to the crashing process's cwd"}): a child with RLIMIT_CORE 0 writes none`,
    data,
  };
}

export function probeLegacyTiocsti(): Finding {
  const value = readValue('/proc/sys/dev/tty/legacy_tiocsti');
  const data = { legacy_tiocsti: value };
  if (value === null) {
    return {
      layer: 'legacy-tiocsti',
      status: 'degraded',
      detail: 'no dev.tty.legacy_tiocsti (kernel older than 6.2): TIOCSTI can push keystrokes into a terminal the child can open',
      fix: 'run children in their own session without a controlling terminal (setsid) and refuse ioctl TIOCSTI in the seccomp filter; kernels 6.2+ can turn it off with dev.tty.legacy_tiocsti=0',
      data,
    };
  }
  if (value === '0') {
    return { layer: 'legacy-tiocsti', status: 'ok', detail: 'dev.tty.legacy_tiocsti=0: TIOCSTI needs CAP_SYS_ADMIN', data };
  }
  return {
    layer: 'legacy-tiocsti',
    status: 'degraded',
    detail: `dev.tty.legacy_tiocsti=${value}: any process holding a terminal fd may inject input with TIOCSTI`,
    fix: 'sysctl -w dev.tty.legacy_tiocsti=0 (persist in /etc/sysctl.d/); children also get no terminal (pipes for stdio, setsid) and the seccomp filter should refuse ioctl TIOCSTI',
    data,
  };
}
