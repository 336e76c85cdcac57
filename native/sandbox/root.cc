// root: the child's whole filesystem, a fresh tmpfs holding just what it needs, pivoted into.
//
// Sequence (bubblewrap's, with the new mount API where it removes a hazard):
//   1. open_tree(OPEN_TREE_CLONE) every source while the host's tree is still in view, and
//      set each detached copy read-only, nosuid, nodev (mount_setattr). Capturing first
//      means mounting the staging tmpfs below cannot hide a source that lives under it, and
//      a client's source fd names a mount of the zygote's namespace, the only one open_tree
//      copies from. A client's source is never a path: the client opened it (native/
//      sources.cc); it is copied without submounts and idmapped to the child (client uid and
//      gid to the child's), so the step has the client's own rights there and nothing is
//      chowned. Pseudo filesystems are refused (mountsrc.cc).
//   2. A small tmpfs at the staging point (/tmp of this private namespace) becomes the root.
//   3. A size-capped /tmp, /proc (of the child's pid namespace, pid directories only), /dev
//      symlinks; then the captured trees are moved onto mount points made in the new root
//      (move_mount onto the mount point's fd), and the root tmpfs itself is made read-only.
//      Mount points are walked to one component at a time with openat2 (no symlink, no ".."):
//      a client's directory may hold anything by then, renamed at any moment. They are made
//      only on this root's own tmpfs mounts; inside a bind they must already exist.
//   4. pivot_root(".", ".") and a lazy unmount of the old root, the way pivot_root(2)
//      describes: the host's mounts leave the namespace altogether.
#include "root.h"

#include "mountsrc.h"
#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>

namespace zygote::sandbox {
namespace {

constexpr const char* kStaging = "/tmp";
// openat2 answers EAGAIN when a rename raced with its walk; bounded, as a client may keep renaming.
constexpr int kOpenRetries = 16;

int OpenTree(const char* path, int dir = AT_FDCWD) {
  return static_cast<int>(syscall(SYS_open_tree, dir, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
}

int SetAttr(int dfd, const char* path, unsigned flags, unsigned long long set, int userns = -1) {
  struct mount_attr attr = {};
  attr.attr_set = set;
  if (userns >= 0) attr.userns_fd = static_cast<__u64>(userns);
  return syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof attr) < 0 ? errno : 0;
}

int Fail(const char** step, const char* name, int err) {
  *step = name;
  return err;
}

// A step name for the spawn's mounts[index], or its output filesystem (one child, one failure:
// a static buffer is enough).
int FailMount(const char** step, const RootBind& b, const char* what, int err) {
  static char name[160];
  if (b.output) snprintf(name, sizeof name, "output: %s", what);
  else snprintf(name, sizeof name, "mounts[%d]: %s", b.index, what);
  *step = name;
  return err;
}

// name, one component, beneath dir: no symlink (not even the last component), no magic link,
// no "..". A client's directory under it cannot send the walk anywhere else.
int OpenComponent(int dir, const char* name, unsigned long long flags) {
  struct open_how how = {};
  how.flags = flags | O_PATH | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = -1;
  for (int attempt = 0; attempt < kOpenRetries; attempt++) {
    fd = syscall(SYS_openat2, dir, name, &how, sizeof how);
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  return static_cast<int>(fd);
}

// The mounts a mount point may be created in: tmpfs mounts this child (or the template's
// helper) made itself and nobody else has touched. Anywhere else (a client's directory, a
// read-only bind) a mount point must already exist.
struct Creatable {
  unsigned long long ids[2] = {};
  size_t n = 0;
  int Add(int fd) {
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0) return errno;
    ids[n++] = sx.stx_mnt_id;
    return 0;
  }
  bool Holds(int dir) const {
    struct statx sx;
    if (statx(dir, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID)) return false;
    for (size_t i = 0; i < n; i++)
      if (ids[i] == sx.stx_mnt_id) return true;
    return false;
  }
};

// An O_PATH fd of the mount point for rel (relative to root): an empty directory or file of the
// tree's kind, made one component at a time without following any symlink, and only on a
// mount in creatable. One already there (inside an earlier bind) is used as it is. Returns
// the fd or minus an errno.
int OpenMountPoint(int root, const char* rel, bool is_dir, const Creatable& creatable) {
  char path[PATH_MAX];
  size_t len = strlen(rel);
  if (len == 0 || len >= sizeof path) return -ENAMETOOLONG;
  memcpy(path, rel, len + 1);
  int dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
  if (dir < 0) return -errno;
  char* name = path;
  for (;;) {
    char* slash = strchr(name, '/');
    bool last = slash == nullptr;
    if (!last) *slash = '\0';
    unsigned long long kind = last ? (is_dir ? O_DIRECTORY : 0) : O_DIRECTORY;
    int fd = OpenComponent(dir, name, kind);
    if (fd < 0 && errno == ENOENT && creatable.Holds(dir)) {
      int rc;
      if (!last || is_dir) {
        rc = mkdirat(dir, name, 0755);
      } else {
        rc = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
        if (rc >= 0) close(rc);
      }
      if (rc < 0 && errno != EEXIST) {
        int err = errno;
        close(dir);
        return -err;
      }
      fd = OpenComponent(dir, name, kind);
    }
    int err = fd < 0 ? errno : 0;
    close(dir);
    if (err) return -err;
    if (last) {
      struct stat st;
      if (fstat(fd, &st) < 0 || (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
        close(fd);
        return -(is_dir ? ENOTDIR : EISDIR);
      }
      return fd;
    }
    dir = fd;
    name = slash + 1;
  }
}

// A client's source: checked, copied without its submounts (a recursive copy of "/" would bring
// the host's /proc and /sys along), and idmapped to the child.
int CaptureClientSource(const RootSpec& spec, const RootBind& b, Trees& trees, const char** step) {
  if (spec.idmap_userns < 0 && !b.no_idmap) return FailMount(step, b, "no idmap for a client's mount", EINVAL);
  // Step names fit the setup report (51 bytes).
  const char* fs = nullptr;
  int err = 0;
  switch (CheckMountSource(b.source_fd, &fs, &err)) {
    case SourceProblem::kNone:
      break;
    case SourceProblem::kUnexaminable:
      return FailMount(step, b, "fstat(source)", err);
    case SourceProblem::kSymlink:
      return FailMount(step, b, "source is a symlink", err);
    case SourceProblem::kNotDirOrFile:
      return FailMount(step, b, "source not a directory or file", err);
    case SourceProblem::kPseudoFs: {
      static char what[48];
      snprintf(what, sizeof what, "pseudo filesystem (%s)", fs);
      return FailMount(step, b, what, err);
    }
  }
  int fd = static_cast<int>(syscall(SYS_open_tree, b.source_fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  // EINVAL: the fd names a mount outside the zygote's mount namespace (a client in a container
  // of its own), or an unbindable one.
  if (fd < 0) return FailMount(step, b, "open_tree(source fd)", errno);
  trees.Add(fd);
  unsigned long long attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b.no_idmap ? 0 : MOUNT_ATTR_IDMAP) | (b.writable ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_RDONLY);
  // EINVAL: the source's filesystem cannot be idmapped (ext4, xfs, btrfs and tmpfs can).
  if (int e = SetAttr(fd, "", AT_EMPTY_PATH, attrs, b.no_idmap ? -1 : spec.idmap_userns)) return FailMount(step, b, b.no_idmap ? "mount_setattr" : "mount_setattr(idmap)", e);
  return 0;
}

// The spawn's output filesystem, attached (onto `mounted`, the root of the zygote's detached
// tmpfs, which the caller has just moved onto its mount point: open_tree copies only a mount of
// the caller's own namespace before Linux 6.15) and covered by an idmapped copy of itself, so the
// child writes there as the client. The original stays beneath, unreachable by any path; the
// client's fd still names it. Without an idmap (a kernel whose tmpfs takes none, before 6.3),
// the original is the child's own and is shown as it is.
int CoverOutput(const RootSpec& spec, const RootBind& b, int mounted, const char** step) {
  if (b.no_idmap) return 0;
  if (spec.idmap_userns < 0) return FailMount(step, b, "no idmap for the output", EINVAL);
  int copy = static_cast<int>(syscall(SYS_open_tree, mounted, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (copy < 0) return FailMount(step, b, "open_tree(output)", errno);
  int err = SetAttr(copy, "", AT_EMPTY_PATH, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_IDMAP, spec.idmap_userns);
  if (err) {
    close(copy);
    return FailMount(step, b, "mount_setattr(idmap)", err);
  }
  // Onto the original's root: the copy covers it at the same place.
  err = syscall(SYS_move_mount, copy, "", mounted, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0 ? errno : 0;
  close(copy);
  return err ? FailMount(step, b, "move_mount(idmapped output)", err) : 0;
}

// The captured trees moved onto mount points of their own kind under root, in order.
int Attach(int root, const RootSpec& spec, Trees& trees, const Creatable& creatable, const char** step) {
  for (size_t i = 0; i < spec.binds.size(); i++) {
    const RootBind& b = spec.binds[i];
    int mp = OpenMountPoint(root, b.target.c_str() + 1, IsDirectory(trees[i]), creatable);
    bool client = b.source_fd >= 0;
    if (mp < 0) return client ? FailMount(step, b, "mount point", -mp) : Fail(step, "make mount point", -mp);
    // Onto exactly the mount point just checked, by fd: no path is looked up again.
    int err = syscall(SYS_move_mount, trees[i], "", mp, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0 ? errno : 0;
    close(mp);
    if (err) return client ? FailMount(step, b, "move_mount", err) : Fail(step, "move_mount", err);
    if (b.output) {
      if (int e = CoverOutput(spec, b, trees[i], step)) return e;
    }
    close(trees[i]);
    trees[i] = -1;
  }
  return 0;
}

}  // namespace

// 1. Every source captured as a detached, read-only (unless writable) copy.
int CaptureBinds(const RootSpec& spec, Trees& trees, const char** step) {
  if (spec.binds.size() > Trees::kMax) return Fail(step, "root: too many mounts", E2BIG);
  // The zygote's own binds come first and are found by path in its namespace; a client's,
  // after them, by fd, from inside the client's namespace when that is another one.
  bool in_client_ns = false;
  for (const RootBind& b : spec.binds) {
    if (b.output) {
      // The zygote's own detached tmpfs (outputfs.cc): moved into the child's namespace itself
      // when its root is built (Attach), so only a copy of the fd is kept here.
      int fd = fcntl(b.source_fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return FailMount(step, b, "dup(output)", errno);
      trees.Add(fd);
      continue;
    }
    if (b.source_fd >= 0) {
      if (!in_client_ns && spec.client_mnt_ns >= 0) {
        if (setns(spec.client_mnt_ns, CLONE_NEWNS) < 0) return Fail(step, "setns(client mount namespace)", errno);
        in_client_ns = true;
      }
      if (int err = CaptureClientSource(spec, b, trees, step)) return err;
      continue;
    }
    if (in_client_ns) return Fail(step, "root: a zygote bind after a client's", EINVAL);
    int fd = OpenTree(b.source.c_str());
    if (fd < 0) return Fail(step, "open_tree(mount source)", errno);
    trees.Add(fd);
    // Whatever the child can write is noexec: nothing it writes can be mapped executable
    // (a .so dlopened from there fails at mmap) or executed. Read-only binds keep exec: node's
    // own libraries and addons are mapped from them.
    unsigned long long attrs = MOUNT_ATTR_NOSUID | (b.device ? 0 : MOUNT_ATTR_NODEV) | (b.writable || b.device ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_RDONLY);
    if (int err = SetAttr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs)) return Fail(step, "mount_setattr(mount source)", err);
  }
  if (in_client_ns && setns(spec.own_mnt_ns, CLONE_NEWNS) < 0) return Fail(step, "setns(zygote mount namespace)", errno);
  return 0;
}

namespace {

// mkdir -p of rel's parent directories under dir: only in the fresh root tmpfs, before any
// client mount is attached, so nothing there can be a symlink.
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

// The module files to copy, opened while the host's tree is in view: the root tmpfs is mounted
// at the staging point, /tmp, which hides any source under /tmp (a checkout there). Closed when
// it goes.
class CopySources {
 public:
  ~CopySources() {
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }
  int Open(const RootSpec& spec, const char** step) {
    fds_.reserve(spec.copies.size());
    for (const std::string& f : spec.copies) {
      int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Fail(step, "open module file", errno);
      fds_.push_back(fd);
    }
    return 0;
  }
  int operator[](size_t i) const { return fds_[i]; }

 private:
  std::vector<int> fds_;
};

// One file copied to the same path under root, read-only (its x bits kept), parents made.
// Sources are the zygote's own module files (trusted paths it has loaded); nothing is followed
// under root, which is a fresh tmpfs.
int CopyFile(int root, const std::string& path, int src) {
  const char* rel = path.c_str() + 1;
  struct stat st;
  int err = fstat(src, &st) < 0 ? errno : (S_ISREG(st.st_mode) ? 0 : EINVAL);
  if (!err) err = MakeParents(root, rel);
  int dst = -1;
  if (!err) {
    dst = openat(root, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (st.st_mode & 0555) | 0444);
    if (dst < 0) err = errno == EEXIST ? 0 : errno;  // listed twice: already there
  }
  off_t offset = 0;
  for (off_t left = st.st_size; !err && dst >= 0 && left > 0;) {
    ssize_t n = sendfile(dst, src, &offset, static_cast<size_t>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : EIO;  // shrank under us: refuse a partial module
    else left -= n;
  }
  if (dst >= 0) close(dst);
  return err;
}

// The module copies and symlinks, into the root tmpfs.
int PlaceCopies(int root, const RootSpec& spec, const CopySources& sources, const char** step) {
  for (size_t i = 0; i < spec.copies.size(); i++) {
    if (int err = CopyFile(root, spec.copies[i], sources[i])) return Fail(step, "copy module file", err);
  }
  for (const RootLink& l : spec.links) {
    const char* rel = l.path.c_str() + 1;
    if (int err = MakeParents(root, rel)) return Fail(step, "module link", err);
    if (symlinkat(l.target.c_str(), root, rel) < 0 && errno != EEXIST) return Fail(step, "module link", errno);
  }
  return 0;
}

// Clones of what the root holds at spec.tmp_dirs, taken before the child's /tmp hides it.
int CaptureTmpDirs(int root, const RootSpec& spec, std::vector<int>& out, const char** step) {
  for (const std::string& d : spec.tmp_dirs) {
    int fd = OpenTree(d.c_str() + 1, root);
    if (fd < 0) return Fail(step, "open_tree(root under /tmp)", errno);
    out.push_back(fd);
    // Its top is a piece of the root tmpfs, which is made read-only only later (or already is,
    // in the template): read-only now. Mounts under it keep their own flags.
    if (int err = SetAttr(fd, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) return Fail(step, "read-only root under /tmp", err);
  }
  return 0;
}

// ... put back on the child's own /tmp (creatable), read-only as they were.
int RestoreTmpDirs(int root, const RootSpec& spec, std::vector<int>& trees, const Creatable& creatable, const char** step) {
  for (size_t i = 0; i < trees.size(); i++) {
    int mp = OpenMountPoint(root, spec.tmp_dirs[i].c_str() + 1, true, creatable);
    if (mp < 0) return Fail(step, "make mount point", -mp);
    int err = syscall(SYS_move_mount, trees[i], "", mp, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0 ? errno : 0;
    close(mp);
    if (err) return Fail(step, "move_mount(root under /tmp)", err);
    close(trees[i]);
    trees[i] = -1;
  }
  return 0;
}

void CloseAll(std::vector<int>& fds) {
  for (int& fd : fds)
    if (fd >= 0) close(fd);
  fds.clear();
}

// A size-capped tmpfs at path (the child's /tmp), noexec like every writable place.
int MountTmp(const char* path, unsigned long long bytes, const char** step) {
  char options[64];
  snprintf(options, sizeof options, "size=%llu,mode=1777", bytes);
  return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) < 0 ? Fail(step, "mount /tmp", errno) : 0;
}

// A /proc of the caller's pid namespace, pid directories only.
int MountProc(const char* path, const char** step) {
  return mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "subset=pid") < 0 ? Fail(step, "mount /proc", errno) : 0;
}

// The root's own directories: /tmp, /proc, /dev with its symlinks, and any extra ones.
int MakeSkeleton(int root, const std::vector<std::string>& dirs, const char** step) {
  if (mkdirat(root, "tmp", 01777) < 0 && errno != EEXIST) return Fail(step, "mkdir /tmp", errno);
  if (mkdirat(root, "proc", 0555) < 0 && errno != EEXIST) return Fail(step, "mkdir /proc", errno);
  if (mkdirat(root, "dev", 0755) < 0 && errno != EEXIST) return Fail(step, "mkdir /dev", errno);
  const char* links[][2] = {{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"}, {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"}};
  for (auto& l : links) {
    if (symlinkat(l[0], root, l[1]) < 0 && errno != EEXIST) return Fail(step, "symlink /dev/fd", errno);
  }
  for (const std::string& d : dirs) {
    if (mkdirat(root, d.c_str() + 1, 0755) < 0 && errno != EEXIST) return Fail(step, "mkdir (template directory)", errno);
  }
  return 0;
}

// The root tmpfs at the staging point, sized for the module copies; its fd in *root.
int MountRootTmpfs(const RootSpec& spec, Trees& fds, int* root, const char** step) {
  char options[96];
  snprintf(options, sizeof options, "size=%llu,nr_inodes=%zu,mode=0755", (1ULL << 20) + spec.copy_bytes, 4096 + 2 * (spec.copies.size() + spec.links.size()));
  if (mount("tmpfs", kStaging, "tmpfs", MS_NOSUID | MS_NODEV, options) < 0) return Fail(step, "mount root tmpfs", errno);
  *root = open(kStaging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*root < 0) return Fail(step, "open root", errno);
  fds.Add(*root);
  return 0;
}

// Records where mount points may be made: the root tmpfs (root_fd, or -1) and a tmpfs at tmp_path.
int AddCreatable(Creatable& creatable, int root_fd, const char* tmp_path, const char** step) {
  if (root_fd >= 0) {
    if (int err = creatable.Add(root_fd)) return Fail(step, "statx(root)", err);
  }
  if (tmp_path != nullptr) {
    int fd = open(tmp_path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return Fail(step, "open /tmp", errno);
    int err = creatable.Add(fd);
    close(fd);
    if (err) return Fail(step, "statx(/tmp)", err);
  }
  return 0;
}

// Makes root read-only and pivots into it; the old root is stacked on the new one, then
// detached from the namespace.
int PivotInto(int root, const char** step) {
  if (int err = SetAttr(root, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) return Fail(step, "read-only root", err);
  if (fchdir(root) < 0) return Fail(step, "chdir(new root)", errno);
  if (syscall(SYS_pivot_root, ".", ".") < 0) return Fail(step, "pivot_root", errno);
  if (umount2(".", MNT_DETACH) < 0) return Fail(step, "detach old root", errno);
  if (chdir("/") < 0) return Fail(step, "chdir(/)", errno);
  return 0;
}

}  // namespace

int EnterRoot(const RootSpec& spec, Trees& trees, const char** step) {
  CopySources sources;
  if (int err = sources.Open(spec, step)) return err;
  int root = -1;
  if (int err = MountRootTmpfs(spec, trees, &root, step)) return err;
  if (int err = MakeSkeleton(root, {}, step)) return err;
  if (int err = PlaceCopies(root, spec, sources, step)) return err;
  Creatable on_root;
  if (int err = AddCreatable(on_root, root, nullptr, step)) return err;
  if (int err = Attach(root, spec, trees, on_root, step)) return err;
  // The child's own /tmp last: what lies under /tmp by now (a checkout there, a spawn's mount)
  // is lifted off first and put back on top of it.
  std::vector<int> under_tmp;
  int err = CaptureTmpDirs(root, spec, under_tmp, step);
  char path[64];
  snprintf(path, sizeof path, "%s/tmp", kStaging);
  if (!err) err = MountTmp(path, spec.tmp_bytes, step);
  Creatable on_tmp;
  if (!err) err = AddCreatable(on_tmp, -1, path, step);
  if (!err) err = RestoreTmpDirs(root, spec, under_tmp, on_tmp, step);
  CloseAll(under_tmp);
  if (err) return err;
  snprintf(path, sizeof path, "%s/proc", kStaging);
  if (spec.proc) {
    if (int err = MountProc(path, step)) return err;
  }
  return PivotInto(root, step);
}

int BuildRootTemplate(const RootSpec& spec, const std::vector<std::string>& dirs, const char** step) {
  int ready[2], done[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return -Fail(step, "pipe", errno);
  if (pipe2(done, O_CLOEXEC) < 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    return -Fail(step, "pipe", e);
  }
  // Signals stay blocked in the helper: the zygote's handlers would write to its signal pipe.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    // The helper: plain C, then _exit. Builds the root in a mount namespace of its own and
    // pivots into it, says how that went, and waits until the zygote holds the namespace.
    close(ready[0]);
    close(done[1]);  // else its own copy would keep the wait below from ever seeing EOF
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char* at = "unshare(CLONE_NEWNS)";
    int err = unshare(CLONE_NEWNS) < 0 ? errno : 0;
    if (!err && (err = PrivateMounts())) at = "private mounts";
    if (!err) {
      Trees trees;
      Creatable creatable;
      int root = -1;
      CopySources sources;
      err = CaptureBinds(spec, trees, &at);
      if (!err) err = sources.Open(spec, &at);
      if (!err) err = MountRootTmpfs(spec, trees, &root, &at);
      if (!err) err = MakeSkeleton(root, dirs, &at);
      if (!err) err = PlaceCopies(root, spec, sources, &at);
      if (!err) err = AddCreatable(creatable, root, nullptr, &at);
      if (!err) err = Attach(root, spec, trees, creatable, &at);
      if (!err) err = PivotInto(root, &at);
    }
    char report[64] = {};
    memcpy(report, &err, sizeof err);
    snprintf(report + sizeof err, sizeof report - sizeof err, "%s", at);
    ssize_t n = write(ready[1], report, sizeof report);
    (void)n;
    char c;
    n = read(done[0], &c, 1);
    _exit(0);
  }
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(ready[1]);
  close(done[0]);
  if (pid < 0) {
    close(ready[0]);
    close(done[1]);
    return -Fail(step, "fork(root template)", fork_err);
  }
  static char helper_step[64];
  char report[64] = {};
  ssize_t n;
  do n = read(ready[0], report, sizeof report);
  while (n < 0 && errno == EINTR);
  int err = 0;
  int fd = -1;
  if (n != static_cast<ssize_t>(sizeof report)) {
    err = Fail(step, "root template helper died", n < 0 ? errno : EPIPE);
  } else {
    memcpy(&err, report, sizeof err);
    snprintf(helper_step, sizeof helper_step, "%s", report + sizeof err);
    if (err) {
      *step = helper_step;
    } else {
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
      fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) err = Fail(step, "open root template namespace", errno);
    }
  }
  close(ready[0]);
  close(done[1]);  // the helper's read returns: it exits
  while (waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
  }
  return err ? -err : fd;
}

int EnterTemplateCopy(int template_ns, bool proc, int* root_fd, const char** step) {
  // A private copy of the template: its root and binds are already in place, read-only.
  if (setns(template_ns, CLONE_NEWNS) < 0) return Fail(step, "setns(root template)", errno);
  if (unshare(CLONE_NEWNS) < 0) return Fail(step, "unshare(CLONE_NEWNS)", errno);
  *root_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*root_fd < 0) return Fail(step, "open root", errno);
  if (proc) {
    if (int err = MountProc("/proc", step)) return err;
  }
  return 0;
}

int CompleteRootFromTemplate(int root, const RootSpec& spec, Trees& trees, const char** step) {
  // What the template holds under /tmp (a checkout there) is lifted off before the child's own
  // /tmp hides it, and put back on top.
  std::vector<int> under_tmp;
  int err = CaptureTmpDirs(root, spec, under_tmp, step);
  if (!err) err = MountTmp("/tmp", spec.tmp_bytes, step);
  // Only the child's own /tmp takes new mount points: the template's root is read-only.
  Creatable creatable;
  if (!err) err = AddCreatable(creatable, -1, "/tmp", step);
  if (!err) err = RestoreTmpDirs(root, spec, under_tmp, creatable, step);
  CloseAll(under_tmp);
  if (err) return err;
  if (int err = Attach(root, spec, trees, creatable, step)) return err;
  return chdir("/") < 0 ? Fail(step, "chdir(/)", errno) : 0;
}

int EnterRootFromTemplate(int template_ns, const RootSpec& spec, Trees& trees, const char** step) {
  // The spawn's own sources were captured already, from the zygote's view of the host.
  int root = -1;
  int err = EnterTemplateCopy(template_ns, spec.proc, &root, step);
  if (root >= 0) trees.Add(root);
  return err ? err : CompleteRootFromTemplate(root, spec, trees, step);
}

}  // namespace zygote::sandbox
