// Mount features the children's root relies on or could use, tried on detached copies of the
// relevant mounts (nothing on the host changes):
// - noexec: every place a child can write (its /tmp, writable mounts) is mounted noexec, so
//   nothing it writes can be mapped executable; a kernel or filesystem that refused it would
//   fail every such spawn (closed), so the doctor says so first.
// - idmapped mounts (MOUNT_ATTR_IDMAP, 5.12+, per filesystem): a writable directory of the
//   renderer's can be shown to a child's uid without a chown on the host.
import { tmpdir } from 'node:os';
import { mountAttr } from './native-probes.js';
import type { Finding } from './types.js';

/** Where runStep makes its per-step directories, and so where writable mounts come from. */
function scratch(): string {
  return tmpdir();
}

export function probeNoexecMounts(): Finding {
  const where = scratch();
  const r = mountAttr(where, 'noexec');
  const data = { path: where, ...r };
  if (r.ok) return { layer: 'noexec-mounts', status: 'ok', detail: `a mount of ${where} takes MOUNT_ATTR_NOEXEC: a child's /tmp and writable mounts are noexec (nothing it writes can be run or mapped executable)`, data };
  return {
    layer: 'noexec-mounts',
    status: 'missing',
    detail: `mount_setattr(MOUNT_ATTR_NOEXEC) on a copy of ${where}'s mount failed: ${r.errno}; spawns with writable mounts from there will fail closed`,
    fix: 'use kernel 5.12 or newer (mount_setattr), with the zygote running as root or CAP_SYS_ADMIN',
    data,
  };
}

export function probeIdmappedMounts(): Finding {
  const where = scratch();
  const r = mountAttr(where, 'idmap');
  const data = { path: where, ...r };
  if (r.ok) return { layer: 'idmapped-mounts', status: 'ok', detail: `the filesystem of ${where} takes idmapped mounts (MOUNT_ATTR_IDMAP): a writable directory can be shown to a child's uid without changing its owner on the host`, data };
  return {
    layer: 'idmapped-mounts',
    status: 'missing',
    detail: `an idmapped mount of a copy of ${where}'s mount failed: ${r.errno} (kernel older than 5.12, a filesystem without idmap support, or no user namespaces)`,
    fix: 'use kernel 5.12+ and keep writable step directories on ext4, xfs, btrfs or tmpfs (6.3+); set TMPDIR to such a place',
    data,
  };
}
