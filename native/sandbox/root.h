// root: the child's whole filesystem, a fresh tmpfs holding just what it needs, pivoted into.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace zygote::sandbox {

// One host path shown inside the new root (at target, an absolute path). Read-only unless
// writable; device nodes keep their device semantics (and stay writable: /dev/null).
struct RootBind {
  std::string source;
  std::string target;
  bool writable = false;
  bool device = false;
};

// A symlink made in the root: path -> target.
struct RootLink {
  std::string path;
  std::string target;
};

struct RootSpec {
  // In the order they are mounted: a bind's target may lie inside an earlier bind's only if
  // that directory exists there (zygote/sandbox/root.ts orders and checks them).
  std::vector<RootBind> binds;
  // Regular files copied into the root tmpfs at the same absolute path, read-only: the module
  // files the zygote loaded. Copies, not binds: hundreds of mounts would cost every child.
  std::vector<std::string> copies;
  std::vector<RootLink> links;
  // What the copies take in the root tmpfs (whole pages), which is sized to hold them.
  unsigned long long copy_bytes = 0;
  // The top directories under /tmp that hold copies or binds (a checkout in /tmp): cloned from
  // the root before the child's own /tmp is mounted over it, then put back on top of that.
  std::vector<std::string> tmp_dirs;
  // Size of the private, writable /tmp.
  unsigned long long tmp_bytes = 0;
  // Mount a /proc of the child's own pid namespace (only its own processes, subset=pid).
  bool proc = false;
  // Writable binds are handed to this owner first (the child's uid), so it can write there.
  bool chown_writable = false;
  uid_t owner_uid = 0;
  gid_t owner_gid = 0;
};

// In a fresh, private mount namespace, as real root: builds the root and pivots into it, so
// nothing of the host's filesystem stays reachable but the binds. Returns 0 or an errno;
// *step names the part that failed.
int EnterRoot(const RootSpec& spec, const char** step);

// Zygote side, once: builds the root of spec.binds (with empty /tmp and /proc, and dirs as
// extra empty directories for per-spawn mount points) in the mount namespace of a short-lived
// helper process, pivots it there, and returns an fd of that namespace, which keeps it alive:
// the template. Returns the fd, or minus an errno with *step naming the part that failed.
int BuildRootTemplate(const RootSpec& spec, const std::vector<std::string>& dirs, const char** step);

// Child side, as real root: enters a private copy of the template (setns, then unshare), mounts
// its own /tmp (with the template's spec.tmp_dirs put back on it) and /proc, and spec.binds (the
// spawn's own mounts) onto mount points that already exist in the template or lie under /tmp.
// No host mount is ever in the child's namespace.
int EnterRootFromTemplate(int template_ns, const RootSpec& spec, const char** step);

}  // namespace zygote::sandbox
