// no_new_privs: prctl(PR_SET_NO_NEW_PRIVS) exists since Linux 3.5; it lets an unprivileged child
// install its seccomp filter and makes setuid binaries powerless in it.
import { release } from 'node:os';
import { kernelAtLeast, selfStatus } from './proc.js';
import type { Finding } from './types.js';

export function probeNoNewPrivs(): Finding {
  const kernel = release();
  const field = selfStatus().get('NoNewPrivs') ?? null; // shown since Linux 4.10
  const data = { kernel, noNewPrivs: field };
  const already = field === '1' ? '; this process already runs with it set (children inherit it)' : '';
  if (kernelAtLeast(3, 5, kernel)) {
    return { layer: 'no-new-privs', status: 'ok', detail: `kernel ${kernel} (>= 3.5) has PR_SET_NO_NEW_PRIVS${already}`, data };
  }
  if (field !== null) {
    return { layer: 'no-new-privs', status: 'ok', detail: `kernel ${kernel}: /proc/self/status shows NoNewPrivs, so it is supported${already}`, data };
  }
  return {
    layer: 'no-new-privs',
    status: 'missing',
    detail: `kernel ${kernel} is older than 3.5 or unrecognised: PR_SET_NO_NEW_PRIVS may be unavailable`,
    fix: 'upgrade the kernel (the zygote needs 5.3+ anyway, for pidfd_open)',
    data,
  };
}
