// A spawn's output filesystem (spawn({ output })): a fresh tmpfs of the granted outputBytes and
// outputFiles, made by the zygote with the new mount API and attached nowhere (the child moves it
// into its own mount namespace)
// (native/sandbox/outputfs.cc). Its root is the client's (uid and gid from SO_PEERCRED), so
// whatever the step writes there, whatever its mode, the client can read, chmod and remove; the
// child sees it through a mount idmapped to its own ids, like a writable client mount. The
// client gets the fd with `spawned`; the tmpfs lives until the child is gone and the client has
// closed it, and is never reachable by a host path.
//
// A kernel whose tmpfs takes no idmapping (before 6.3) gets the same filesystem owned by the
// child's own ids instead, mode 0755, shown without an idmap: the size and inode caps hold the
// same, and the client reads what the step leaves readable (the step runner's output file is
// 0644), but a file the step makes private stays its own. The zygote finds out once, at start.
import { native } from '../../native/index.js';
import type { GrantedLimits } from '../../protocol/limits.js';
import type { FdMount } from './root.js';

/** How this kernel's output filesystems are shown: idmapped to the child, or made the child's. */
export type OutputOwnership = 'client' | 'child';

/**
 * Whether a tmpfs takes an idmapping here, tried once on a throwaway one through usernsFd (any
 * idmap namespace the zygote already has): 'client' if so, else 'child' with the kernel's errno.
 */
export function outputOwnership(usernsFd: number): { ownership: OutputOwnership; errno: string | null } {
  const errno = native.outputFsTakesIdmap(usernsFd);
  return { ownership: errno === null ? 'client' : 'child', errno };
}

/**
 * The output filesystem at target, owned by the client (shown to the child idmapped) or, where
 * the kernel cannot idmap a tmpfs, by the child. Its fd is the caller's to pass on or close.
 */
export function makeOutput(
  target: string,
  limits: Pick<GrantedLimits, 'outputBytes' | 'outputFiles'>,
  ownership: OutputOwnership,
  ids: { client: { uid: number; gid: number }; child: { uid: number; gid: number } },
): FdMount {
  const owner = ownership === 'client' ? ids.client : ids.child;
  // One inode more than the files asked for: the root directory takes one. 0700 when the
  // client owns it (only it, and the child through the idmap, get in); 0755 when the child
  // does, so the client can still get in and read what is readable.
  const fd = native.makeOutputFs(limits.outputBytes, limits.outputFiles + 1, owner.uid, owner.gid, ownership === 'client' ? 0o700 : 0o755);
  // The source is only ever shown in messages: name the target.
  return { source: target, target, writable: true, fd, ...(ownership === 'child' ? { noIdmap: true } : {}) };
}
