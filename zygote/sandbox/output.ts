// A spawn's output filesystem (spawn({ output })): a fresh tmpfs of the granted outputBytes and
// outputFiles, made by the zygote with the new mount API and attached nowhere
// (native/sandbox/outputfs.cc). Its root is the client's (uid and gid from SO_PEERCRED), so
// whatever the step writes there, whatever its mode, the client can read, chmod and remove; the
// child sees it through a mount idmapped to its own ids, like a writable client mount. The
// client gets the fd with `spawned`; the tmpfs lives until the child is gone and the client has
// closed it, and is never reachable by a host path.
import { native } from '../../native/index.js';
import type { GrantedLimits } from '../../protocol/limits.js';
import type { FdMount } from './root.js';

/** The output filesystem at target; its fd is the caller's to pass on or close. */
export function makeOutput(target: string, limits: Pick<GrantedLimits, 'outputBytes' | 'outputFiles'>, owner: { uid: number; gid: number }): FdMount {
  // One inode more than the files asked for: the root directory takes one.
  const fd = native.makeOutputFs(limits.outputBytes, limits.outputFiles + 1, owner.uid, owner.gid);
  // The source is only ever shown in messages: name the target.
  return { source: target, target, writable: true, fd };
}
