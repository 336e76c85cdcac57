// root: the child's whole filesystem, a fresh tmpfs holding just what it needs, pivoted into.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace zygote::sandbox {

// One host path shown inside the new root (at target, an absolute path). Read-only unless
// writable; device nodes keep their device semantics (and stay writable: /dev/null).
// The zygote's own binds name their source by path; a client's mount by fd (source_fd), an
// O_PATH fd the client opened itself: root never resolves a client's path.
struct RootBind {
  std::string source;
  std::string target;
  bool writable = false;
  bool device = false;
  int source_fd = -1;
  // The spawn's mounts[index], for messages; -1 for the zygote's own binds.
  int index = -1;
  // The spawn's output filesystem (source_fd a detached tmpfs the zygote made): named "output"
  // in messages.
  bool output = false;
  // An output the zygote made the child's own already (a kernel whose tmpfs takes no
  // idmapping, before 6.3): shown without an idmap.
  bool no_idmap = false;
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
  // A user namespace mapping the client's uid and gid to the child's: every client mount is
  // idmapped through it, so the child reads and writes there with the client's own rights
  // (as owner where the client owns, as anyone else elsewhere), and nothing is chowned.
  int idmap_userns = -1;
  // The client's mount namespace, when it is not the zygote's (a client in a container of its
  // own): its source fds name mounts of it, which open_tree copies only from inside it. The
  // child enters it to copy them and nothing else, then returns to own_mnt_ns.
  int client_mnt_ns = -1;
  int own_mnt_ns = -1;
};

// The detached copies of a root's sources (open_tree), made before the child leaves the
// zygote's mount namespace: a client's fd names a mount of that namespace, and open_tree refuses
// a mount of any other (EINVAL). Closed when it goes.
class Trees {
 public:
  static constexpr size_t kMax = 256;
  ~Trees() {
    for (size_t i = 0; i < n_; i++)
      if (fds_[i] >= 0) close(fds_[i]);
  }
  void Add(int fd) { fds_[n_++] = fd; }
  int& operator[](size_t i) { return fds_[i]; }

 private:
  int fds_[kMax + 1] = {};
  size_t n_ = 0;
};

// Every source of spec captured as a detached, read-only (unless writable), nosuid, nodev
// copy; a client's mount also idmapped and noexec when writable. Returns 0 or an errno, with
// *step naming the part (and the spawn's mounts[i]) that failed.
int CaptureBinds(const RootSpec& spec, Trees& trees, const char** step);

// In a fresh, private mount namespace, as real root: builds the root of the captured trees and
// pivots into it, so nothing of the host's filesystem stays reachable but the binds. Returns 0
// or an errno; *step names the part that failed.
int EnterRoot(const RootSpec& spec, Trees& trees, const char** step);

// Zygote side, once: builds the root of spec.binds (with empty /tmp and /proc, and dirs as
// extra empty directories for per-spawn mount points) in the mount namespace of a short-lived
// helper process, pivots it there, and returns an fd of that namespace, which keeps it alive:
// the template. Returns the fd, or minus an errno with *step naming the part that failed.
int BuildRootTemplate(const RootSpec& spec, const std::vector<std::string>& dirs, const char** step);

// Child side, as real root: enters a private copy of the template (setns, then unshare), mounts
// its own /tmp (with the template's spec.tmp_dirs put back on it) and /proc, and spec.binds (the
// spawn's own mounts) onto mount points that already exist in the template or lie under /tmp.
// No host mount is ever in the child's namespace.
int EnterRootFromTemplate(int template_ns, const RootSpec& spec, Trees& trees, const char** step);

// The same in two parts, for a pool child that enters its root before it knows its spawn:
// first a private copy of the template (and its /proc), the root's fd in *root_fd (the
// caller's to close); then, at its claim, its own /tmp and the spawn's binds.
int EnterTemplateCopy(int template_ns, bool proc, int* root_fd, const char** step);
int CompleteRootFromTemplate(int root_fd, const RootSpec& spec, Trees& trees, const char** step);

}  // namespace zygote::sandbox
