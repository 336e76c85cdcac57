// childfds: what a forked child keeps of the zygote's file descriptors (nothing it did not make).
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <vector>

namespace zygote {

// The identity of one of the zygote's open fds, taken just before fork.
struct FdIdentity {
  int fd;
  dev_t dev;
  ino_t ino;
};

// Parent side: the zygote's open fds, to tell inherited ones from those made after fork.
std::vector<FdIdentity> SnapshotFds();

// Child side, before uv_loop_fork: closes every fd inherited from the zygote except 0-2,
// `keep`, and the loop's own (which uv_loop_fork closes and re-creates itself). Inherited
// eventfds are replaced by fresh ones at the same number (see childfds.cc for why).
// Returns 0 or an errno; async-signal-safe apart from the snapshot it reads.
int SweepInheritedFds(const std::vector<FdIdentity>& snapshot, const uv_loop_t* loop, int keep);

// Child side, after uv_loop_fork: gives the loop a reserve fd of its own (see childfds.cc).
int RenewLoopReserveFd(uv_loop_t* loop);

}  // namespace zygote
