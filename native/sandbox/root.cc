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

#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
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
constexpr size_t kMaxBinds = 256;

int OpenTree(const char* path, int dir = AT_FDCWD) {
  return static_cast<int>(syscall(SYS_open_tree, dir, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
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

// 1. Every source captured as a detached, read-only (unless writable) copy.
int Capture(const RootSpec& spec, Fds& trees, const char** step) {
  if (spec.binds.size() > kMaxBinds) return Fail(step, "root: too many mounts", E2BIG);
  for (const RootBind& b : spec.binds) {
    if (b.writable && spec.chown_writable && chown(b.source.c_str(), spec.owner_uid, spec.owner_gid) < 0) {
      return Fail(step, "chown writable mount", errno);
    }
    int fd = OpenTree(b.source.c_str());
    if (fd < 0) return Fail(step, "open_tree(mount source)", errno);
    trees.Add(fd);
    // Whatever the child can write is noexec: nothing it writes can be mapped executable
    // (a .so dlopened from there fails at mmap) or executed. Read-only binds keep exec: node's
    // own libraries and addons are mapped from them.
    unsigned long long attrs = MOUNT_ATTR_NOSUID | (b.device ? 0 : MOUNT_ATTR_NODEV) | (b.writable || b.device ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_RDONLY);
    if (int err = SetAttr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs)) return Fail(step, "mount_setattr(mount source)", err);
  }
  return 0;
}

// The captured trees moved onto mount points of their own kind under root, in order.
int Attach(int root, const RootSpec& spec, Fds& trees, const char** step) {
  for (size_t i = 0; i < spec.binds.size(); i++) {
    const char* rel = spec.binds[i].target.c_str() + 1;
    struct stat st;
    if (fstat(trees[i], &st) < 0) return Fail(step, "fstat(mount source)", errno);
    if (int err = MakeMountPoint(root, rel, S_ISDIR(st.st_mode))) return Fail(step, "make mount point", err);
    if (int err = MoveMount(trees[i], root, rel)) return Fail(step, "move_mount", err);
    close(trees[i]);
    trees[i] = -1;
  }
  return 0;
}

// One file copied to the same path under root, read-only (its x bits kept), parents made.
// Sources are the zygote's own module files (trusted paths it has loaded); nothing is followed
// under root, which is a fresh tmpfs.
int CopyFile(int root, const std::string& path) {
  const char* rel = path.c_str() + 1;
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return errno;
  struct stat st;
  int err = fstat(src, &st) < 0 ? errno : (S_ISREG(st.st_mode) ? 0 : EINVAL);
  if (!err) err = MakeParents(root, rel);
  int dst = -1;
  if (!err) {
    dst = openat(root, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (st.st_mode & 0555) | 0444);
    if (dst < 0) err = errno == EEXIST ? 0 : errno;  // listed twice: already there
  }
  for (off_t left = st.st_size; !err && dst >= 0 && left > 0;) {
    ssize_t n = sendfile(dst, src, nullptr, static_cast<size_t>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : EIO;  // shrank under us: refuse a partial module
    else left -= n;
  }
  if (dst >= 0) close(dst);
  close(src);
  return err;
}

// The module copies and symlinks, into the root tmpfs.
int PlaceCopies(int root, const RootSpec& spec, const char** step) {
  for (const std::string& f : spec.copies) {
    if (int err = CopyFile(root, f)) return Fail(step, "copy module file", err);
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

// ... put back on the child's own /tmp, read-only as they were.
int RestoreTmpDirs(int root, const RootSpec& spec, std::vector<int>& trees, const char** step) {
  for (size_t i = 0; i < trees.size(); i++) {
    const char* rel = spec.tmp_dirs[i].c_str() + 1;
    if (int err = MakeMountPoint(root, rel, true)) return Fail(step, "make mount point", err);
    if (int err = MoveMount(trees[i], root, rel)) return Fail(step, "move_mount(root under /tmp)", err);
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
int MountRootTmpfs(const RootSpec& spec, Fds& fds, int* root, const char** step) {
  char options[96];
  snprintf(options, sizeof options, "size=%llu,nr_inodes=%zu,mode=0755", (1ULL << 20) + spec.copy_bytes, 4096 + 2 * (spec.copies.size() + spec.links.size()));
  if (mount("tmpfs", kStaging, "tmpfs", MS_NOSUID | MS_NODEV, options) < 0) return Fail(step, "mount root tmpfs", errno);
  *root = open(kStaging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*root < 0) return Fail(step, "open root", errno);
  fds.Add(*root);
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

int EnterRoot(const RootSpec& spec, const char** step) {
  Fds trees;
  if (int err = Capture(spec, trees, step)) return err;
  int root = -1;
  if (int err = MountRootTmpfs(spec, trees, &root, step)) return err;
  if (int err = MakeSkeleton(root, {}, step)) return err;
  if (int err = PlaceCopies(root, spec, step)) return err;
  if (int err = Attach(root, spec, trees, step)) return err;
  // The child's own /tmp last: what lies under /tmp (a checkout there, or a spawn's mount) is
  // lifted off first and put back on top of it.
  std::vector<int> under_tmp;
  int err = CaptureTmpDirs(root, spec, under_tmp, step);
  char path[64];
  snprintf(path, sizeof path, "%s/tmp", kStaging);
  if (!err) err = MountTmp(path, spec.tmp_bytes, step);
  if (!err) err = RestoreTmpDirs(root, spec, under_tmp, step);
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
      Fds trees;
      int root = -1;
      err = Capture(spec, trees, &at);
      if (!err) err = MountRootTmpfs(spec, trees, &root, &at);
      if (!err) err = MakeSkeleton(root, dirs, &at);
      if (!err) err = PlaceCopies(root, spec, &at);
      if (!err) err = Attach(root, spec, trees, &at);
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

int EnterRootFromTemplate(int template_ns, const RootSpec& spec, const char** step) {
  // The spawn's own sources first, from the zygote's view of the host.
  Fds trees;
  if (int err = Capture(spec, trees, step)) return err;
  // A private copy of the template: its root and binds are already in place, read-only.
  if (setns(template_ns, CLONE_NEWNS) < 0) return Fail(step, "setns(root template)", errno);
  if (unshare(CLONE_NEWNS) < 0) return Fail(step, "unshare(CLONE_NEWNS)", errno);
  int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Fail(step, "open root", errno);
  trees.Add(root);
  std::vector<int> under_tmp;
  int err = CaptureTmpDirs(root, spec, under_tmp, step);
  if (!err) err = MountTmp("/tmp", spec.tmp_bytes, step);
  if (!err) err = RestoreTmpDirs(root, spec, under_tmp, step);
  CloseAll(under_tmp);
  if (err) return err;
  if (spec.proc) {
    if (int err = MountProc("/proc", step)) return err;
  }
  if (int err = Attach(root, spec, trees, step)) return err;
  return chdir("/") < 0 ? Fail(step, "chdir(/)", errno) : 0;
}

}  // namespace zygote::sandbox
