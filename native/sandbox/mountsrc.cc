// mountsrc: what a client's mount source may be (see mountsrc.h).
#include "mountsrc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace zygote::sandbox {
namespace {

// Pseudo filesystems by superblock magic (include/uapi/linux/magic.h, and the few defined in
// their own drivers). Their files are kernel state, not data: a bind of one would hand a child
// the host's processes (procfs), tunables (sysfs), cgroups, devices or tracing.
struct Magic {
  unsigned long value;
  const char* name;
};
constexpr Magic kPseudo[] = {
    {0x9fa0, "procfs"},
    {0x62656572, "sysfs"},
    {0x27e0eb, "cgroupfs"},
    {0x63677270, "cgroup2"},
    {0x64626720, "debugfs"},
    {0x73636673, "securityfs"},
    {0xcafe4a11, "bpf"},
    {0x74726163, "tracefs"},
    {0x1cd1, "devpts"},
    {0x6165676c, "pstore"},
    {0xde5e81e4, "efivarfs"},
    {0x62656570, "configfs"},
    {0x65735543, "fusectl"},
    {0xf97cff8c, "selinuxfs"},
    {0x43415d53, "smackfs"},
    {0x42494e4d, "binfmt_misc"},
    {0x19800202, "mqueue"},
    {0x6e736673, "nsfs"},
    {0x50494446, "pidfs"},
    {0x09041934, "anon_inodefs"},
    {0x50495045, "pipefs"},
    {0x534f434b, "sockfs"},
    {0x0187, "autofs"},
    {0x9fa2, "usbdevfs"},
    {0x62646576, "bdevfs"},
    {0x6c6f6f70, "binderfs"},
    {0xabba1974, "xenfs"},
    {0x07655821, "resctrl"},
    {0x444d4142, "dmabuf"},
    {0x5345434d, "secretmem"},
    {0x67596969, "rpc_pipefs"},
    {0x6e667364, "nfsd"},
};

// devtmpfs reports tmpfs's magic; only the mount's filesystem type tells them apart, which
// statmount(2) gives (Linux 6.8; the old uapi headers here lack it). On older kernels
// a devtmpfs source still fails later: it cannot be idmapped (sandbox/root.cc).
constexpr long kSysStatmount = 457;
constexpr unsigned kStatxMntIdUnique = 0x4000;
constexpr uint64_t kStatmountFsType = 0x20;
struct MntIdReq {
  uint32_t size;
  uint32_t spare;
  uint64_t mnt_id;
  uint64_t param;
};
// struct statmount up to fs_type; its strings start at byte 512.
struct StatmountHead {
  uint32_t size;
  uint32_t mnt_opts;
  uint64_t mask;
  uint32_t sb_dev_major;
  uint32_t sb_dev_minor;
  uint64_t sb_magic;
  uint32_t sb_flags;
  uint32_t fs_type;
};
constexpr size_t kStatmountStrings = 512;

bool IsDevtmpfs(int fd) {
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, kStatxMntIdUnique, &sx) < 0 || !(sx.stx_mask & kStatxMntIdUnique)) return false;
  MntIdReq req = {sizeof req, 0, sx.stx_mnt_id, kStatmountFsType};
  alignas(8) char buf[kStatmountStrings + 64] = {};
  if (syscall(kSysStatmount, &req, buf, sizeof buf, 0) < 0) return false;
  StatmountHead head;
  memcpy(&head, buf, sizeof head);
  if (!(head.mask & kStatmountFsType) || kStatmountStrings + head.fs_type >= sizeof buf) return false;
  return strncmp(buf + kStatmountStrings + head.fs_type, "devtmpfs", sizeof buf - kStatmountStrings - head.fs_type) == 0;
}

}  // namespace

SourceProblem CheckMountSource(int fd, const char** fs, int* err) {
  *fs = nullptr;
  struct stat st;
  struct statfs sfs;
  if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
    *err = errno;
    return SourceProblem::kUnexaminable;
  }
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
    *err = EINVAL;
    return S_ISLNK(st.st_mode) ? SourceProblem::kSymlink : SourceProblem::kNotDirOrFile;
  }
  for (const Magic& m : kPseudo) {
    if (static_cast<unsigned long>(sfs.f_type) == m.value) *fs = m.name;
  }
  if (*fs == nullptr && IsDevtmpfs(fd)) *fs = "devtmpfs";
  if (*fs == nullptr) return SourceProblem::kNone;
  *err = EPERM;
  return SourceProblem::kPseudoFs;
}

bool IsDirectory(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace zygote::sandbox
