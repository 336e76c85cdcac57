// root: the child's whole filesystem, a fresh tmpfs holding just what it needs, pivoted into.
//
// Sequence (bubblewrap's, with the new mount API where it removes a hazard):
//   1. open_tree(OPEN_TREE_CLONE) every source while the host's tree is still in view, and
//      set each detached copy read-only, nosuid, nodev (mount_setattr). Capturing first
//      means mounting the staging tmpfs below cannot hide a source that lives under it.
//   2. A small tmpfs at the staging point (/tmp of this private namespace) becomes the root.
//   3. A size-capped /tmp, /proc (of the child's pid namespace, pid directories only), /dev
//      symlinks; then the captured trees are moved onto mount points made in the new root
//      (move_mount), and the root tmpfs itself is made read-only.
//   4. pivot_root(".", ".") and a lazy unmount of the old root, the way pivot_root(2)
//      describes: the host's mounts leave the namespace altogether.
#include "root.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace zygote::sandbox {
namespace {

constexpr const char* kStaging = "/tmp";
constexpr size_t kMaxBinds = 256;

int OpenTree(const char* path) {
  return static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
}

int SetAttr(int dfd, const char* path, unsigned flags, unsigned long long set) {
  struct mount_attr attr = {};
  attr.attr_set = set;
  return syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof attr) < 0 ? errno : 0;
}

int MoveMount(int from, int to_dir, const char* to) {
  return syscall(SYS_move_mount, from, "", to_dir, to, MOVE_MOUNT_F_EMPTY_PATH) < 0 ? errno : 0;
}

// mkdir -p of rel's parent directories under dir.
int MakeParents(int dir, const char* rel) {
  char path[PATH_MAX];
  size_t len = strlen(rel);
  if (len >= sizeof path) return ENAMETOOLONG;
  memcpy(path, rel, len + 1);
  for (char* p = path; (p = strchr(p, '/')) != nullptr; p++) {
    *p = '\0';
    if (mkdirat(dir, path, 0755) < 0 && errno != EEXIST) return errno;
    *p = '/';
  }
  return 0;
}

// An empty directory or file to mount onto, of the same kind as the tree; one already there
// (inside an earlier, read-only bind) is used as it is.
int MakeMountPoint(int dir, const char* rel, bool is_dir) {
  struct stat st;
  if (fstatat(dir, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && (is_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))) return 0;
  if (int err = MakeParents(dir, rel)) return err;
  if (is_dir) return mkdirat(dir, rel, 0755) < 0 && errno != EEXIST ? errno : 0;
  int fd = openat(dir, rel, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

int Fail(const char** step, const char* name, int err) {
  *step = name;
  return err;
}

class Fds {
 public:
  ~Fds() {
    for (size_t i = 0; i < n_; i++)
      if (fds_[i] >= 0) close(fds_[i]);
  }
  void Add(int fd) { fds_[n_++] = fd; }
  int& operator[](size_t i) { return fds_[i]; }

 private:
  int fds_[kMaxBinds + 1] = {};
  size_t n_ = 0;
};

}  // namespace

int EnterRoot(const RootSpec& spec, const char** step) {
  if (spec.binds.size() > kMaxBinds) return Fail(step, "root: too many mounts", E2BIG);

  // 1. Capture every source.
  Fds trees;
  for (const RootBind& b : spec.binds) {
    if (b.writable && spec.chown_writable && chown(b.source.c_str(), spec.owner_uid, spec.owner_gid) < 0) {
      return Fail(step, "chown writable mount", errno);
    }
    int fd = OpenTree(b.source.c_str());
    if (fd < 0) return Fail(step, "open_tree(mount source)", errno);
    trees.Add(fd);
    unsigned long long attrs = MOUNT_ATTR_NOSUID | (b.device ? 0 : MOUNT_ATTR_NODEV) | (b.writable || b.device ? 0 : MOUNT_ATTR_RDONLY);
    if (int err = SetAttr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs)) return Fail(step, "mount_setattr(mount source)", err);
  }

  // 2. The root: a tmpfs only big enough for its mount points.
  if (mount("tmpfs", kStaging, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755") < 0) {
    return Fail(step, "mount root tmpfs", errno);
  }
  int root = open(kStaging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Fail(step, "open root", errno);
  trees.Add(root);
  // 3. /tmp first (binds may lie under it: a checkout in /tmp), /proc, /dev's symlinks.
  if (mkdirat(root, "tmp", 01777) < 0 && errno != EEXIST) return Fail(step, "mkdir /tmp", errno);
  char options[64], target[64];
  snprintf(options, sizeof options, "size=%llu,mode=1777", spec.tmp_bytes);
  snprintf(target, sizeof target, "%s/tmp", kStaging);
  if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options) < 0) return Fail(step, "mount /tmp", errno);
  if (spec.proc) {
    if (mkdirat(root, "proc", 0555) < 0 && errno != EEXIST) return Fail(step, "mkdir /proc", errno);
    char target[64];
    snprintf(target, sizeof target, "%s/proc", kStaging);
    if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "subset=pid") < 0) return Fail(step, "mount /proc", errno);
    if (mkdirat(root, "dev", 0755) < 0 && errno != EEXIST) return Fail(step, "mkdir /dev", errno);
    const char* links[][2] = {{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"}, {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"}};
    for (auto& l : links) {
      if (symlinkat(l[0], root, l[1]) < 0 && errno != EEXIST) return Fail(step, "symlink /dev/fd", errno);
    }
  }
  // 4. The binds, each onto a mount point of its own kind; then the root read-only.
  for (size_t i = 0; i < spec.binds.size(); i++) {
    const char* rel = spec.binds[i].target.c_str() + 1;
    struct stat st;
    if (fstat(trees[i], &st) < 0) return Fail(step, "fstat(mount source)", errno);
    if (int err = MakeMountPoint(root, rel, S_ISDIR(st.st_mode))) return Fail(step, "make mount point", err);
    if (int err = MoveMount(trees[i], root, rel)) return Fail(step, "move_mount", err);
    close(trees[i]);
    trees[i] = -1;
  }

  if (int err = SetAttr(root, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) return Fail(step, "read-only root", err);

  // 5. Pivot; the old root is stacked on the new one, then detached from the namespace.
  if (fchdir(root) < 0) return Fail(step, "chdir(new root)", errno);
  if (syscall(SYS_pivot_root, ".", ".") < 0) return Fail(step, "pivot_root", errno);
  if (umount2(".", MNT_DETACH) < 0) return Fail(step, "detach old root", errno);
  if (chdir("/") < 0) return Fail(step, "chdir(/)", errno);
  return 0;
}

}  // namespace zygote::sandbox
