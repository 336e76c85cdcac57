// landlock: the filesystem rights the step keeps, enforced by the kernel's Landlock LSM.
//
// A layer under the mount namespace rather than beside it: the root already holds only
// read-only binds, so this matters when something above went wrong (a bind left writable, a
// mount namespace skipped). Unlike a mount flag it cannot be undone by anything the process
// does later, and it follows the step into every thread.
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace zygote::sandbox {
namespace {

// The ruleset attribute as of ABI 6; the system's headers may predate its later fields. The
// kernel reads only as many bytes as it is told, so older kernels get the ABI 1 prefix.
struct RulesetAttr {
  __u64 handled_access_fs;
  __u64 handled_access_net;  // ABI 4
  __u64 scoped;              // ABI 6
};
constexpr __u64 kScopeAbstractUnixSocket = 1ULL << 0;
constexpr __u64 kScopeSignal = 1ULL << 1;

// Rights each ABI version adds (Documentation/userspace-api/landlock.rst).
unsigned long long FsRights(int abi) {
  unsigned long long rights = (1ULL << 13) - 1;  // ABI 1: EXECUTE .. MAKE_SYM
  if (abi >= 2) rights |= 1ULL << 13;  // LANDLOCK_ACCESS_FS_REFER
  if (abi >= 3) rights |= 1ULL << 14;  // LANDLOCK_ACCESS_FS_TRUNCATE
  if (abi >= 5) rights |= 1ULL << 15;  // LANDLOCK_ACCESS_FS_IOCTL_DEV
  return rights;
}

constexpr unsigned long long kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | (1ULL << 14) | (1ULL << 15);
// No rule grants EXECUTE: the step runs no program (seccomp refuses execve too), so Landlock
// refuses execve everywhere, in particular of anything the child wrote. (Rules add up along
// the path, so EXECUTE on / would reach /tmp.) mmap with PROT_EXEC is not Landlock's: the
// writable places are noexec mounts for that.
constexpr unsigned long long kRead = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;

int AddPath(int ruleset, const char* path, unsigned long long rights) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : errno;  // a device the host lacks: nothing to allow
  // On a file (a device, a file bind) only rights that apply to files are valid.
  struct stat st;
  if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) rights &= kFileRights;
  struct landlock_path_beneath_attr attr = {};
  attr.allowed_access = rights;
  attr.parent_fd = fd;
  int err = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0) < 0 ? errno : 0;
  close(fd);
  return err;
}

int Fail(const char** step, const char* name, int err) {
  *step = name;
  return err;
}

}  // namespace

int ApplyLandlock(int abi, const RootSpec& root, const char** step) {
  unsigned long long all = FsRights(abi);
  RulesetAttr attr = {};
  attr.handled_access_fs = all;
  size_t size = sizeof attr.handled_access_fs;
  if (abi >= 6) {
    // No signals to processes outside its domain (its init shares it), no abstract unix
    // sockets of others. TCP stays unhandled: the network namespace decides what it reaches.
    attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
    size = sizeof attr;
  }
  int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) return Fail(step, "landlock_create_ruleset", errno);
  const unsigned long long writable = all & ~static_cast<unsigned long long>(LANDLOCK_ACCESS_FS_EXECUTE);
  int err = AddPath(ruleset, "/", kRead & all);
  if (!err) err = AddPath(ruleset, "/tmp", writable);
  for (const RootBind& b : root.binds) {
    if (err) break;
    if (b.writable) err = AddPath(ruleset, b.target.c_str(), writable);
    else if (b.device) err = AddPath(ruleset, b.target.c_str(), (kRead | LANDLOCK_ACCESS_FS_WRITE_FILE) & all);
  }
  if (err) {
    close(ruleset);
    return Fail(step, "landlock_add_rule", err);
  }
  err = syscall(SYS_landlock_restrict_self, ruleset, 0) < 0 ? errno : 0;
  close(ruleset);
  return err ? Fail(step, "landlock_restrict_self", err) : 0;
}

}  // namespace zygote::sandbox
