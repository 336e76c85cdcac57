// outputfs: a spawn's output filesystem, a fresh size- and inode-capped tmpfs that has no path.
#pragma once

#include <napi.h>
#include <sys/types.h>

namespace zygote::sandbox {

// Zygote side, as root: a new tmpfs of at most `bytes` bytes (whole pages) and `inodes` inodes
// (its root directory included), its root owned by uid:gid with `mode`, mounted nosuid, nodev,
// noexec and attached nowhere (fsopen, fsconfig, fsmount). Returns the mount's fd (O_PATH,
// close-on-exec), or minus an errno with *step naming the call that failed.
int MakeOutputFs(unsigned long long bytes, unsigned long long inodes, uid_t uid, gid_t gid, unsigned mode, const char** step);

// Whether a copy of such a tmpfs takes an idmapping through userns (tmpfs does from Linux 6.3):
// 0, or the errno of the step that failed.
int OutputFsTakesIdmap(int userns);

void InitOutputFs(Napi::Env env, Napi::Object exports);

}  // namespace zygote::sandbox
