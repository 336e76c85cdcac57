// What a zygote that died without cleaning up (SIGKILL, a crash) leaves on the host is named
// by its pid: cgroup trees `zygote-PID`, nftables tables `inet zygote_PID`. A starting zygote
// removes those of pids that are no longer zygotes. Its veths need no sweep: each lives in a
// child's network namespace, which the kernel tears down (with the pair) once the child is
// gone, and children die with their zygote (PR_SET_PDEATHSIG).
import { readFileSync } from 'node:fs';

/**
 * Whether pid is a live zygote (or may be one), so that nothing named for it is touched. A
 * zygote's /proc/PID/cmdline says "zygote" from its exec on: the zygote's main module path
 * (dist/zygote/main.js) until it sets its title, then its title ("zygote serve PATH",
 * "zygote NAME"). A live process whose command line does not (the pid was reused) is not one.
 * Errs on the side of keeping: a process that cannot be read counts as a zygote.
 */
export function isLiveZygote(pid: number): boolean {
  if (pid === process.pid) return true;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  // A zombie (or a kernel thread) has an empty command line: a dead zygote not yet reaped.
  return cmdline.includes('zygote');
}

/** The pid in a name made by namedFor(prefix), or null for any other name. */
export function pidOfName(prefix: string, name: string): number | null {
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return /^[1-9]\d{0,9}$/.test(rest) ? Number(rest) : null;
}
