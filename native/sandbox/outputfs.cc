// outputfs: a spawn's output filesystem (see outputfs.h).
//
// The mount is detached: it lives only as long as an fd or a mount of it does. The zygote sends
// its fd to the client with `spawned` and closes its own; the child moves it into its own mount
// namespace at its output target and covers it with an idmapped copy (sandbox/root.cc). When
// the child is gone and the client closes the fd, the kernel frees the tmpfs and every page in
// it: nothing is ever written under
// a host path, nothing is left to remove, and no path is opened or mounted on the client's
// behalf. The uid and gid are the client's, so what the step writes (whatever its mode) is the
// client's to read, chmod and remove (on a kernel whose tmpfs takes no idmapping, before 6.3,
// they are the child's instead: zygote/sandbox/output.ts); the tmpfs's pages are charged to the
// memory cgroup of whoever writes them (the step's).
#include "outputfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../errors.h"

namespace zygote::sandbox {
namespace {

int Fail(const char** step, const char* name, int err) {
  *step = name;
  return -err;
}

int SetOption(int fs, const char* key, const char* value) {
  return syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, key, value, 0) < 0 ? errno : 0;
}

}  // namespace

int MakeOutputFs(unsigned long long bytes, unsigned long long inodes, uid_t uid, gid_t gid, unsigned mode, const char** step) {
  int fs = static_cast<int>(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC));
  if (fs < 0) return Fail(step, "output: fsopen(tmpfs)", errno);
  char size[32], nr[32], owner[16], group[16], perms[8];
  snprintf(size, sizeof size, "%llu", bytes);
  snprintf(nr, sizeof nr, "%llu", inodes);
  snprintf(owner, sizeof owner, "%u", uid);
  snprintf(group, sizeof group, "%u", gid);
  snprintf(perms, sizeof perms, "%04o", mode & 07777);
  // huge=never: a huge page would round a small step's output up to 2 MiB of its memory.
  const char* options[][2] = {{"size", size}, {"nr_inodes", nr}, {"mode", perms}, {"uid", owner}, {"gid", group}, {"huge", "never"}};
  int err = 0;
  for (auto& o : options) {
    if ((err = SetOption(fs, o[0], o[1]))) break;
  }
  if (!err && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) err = errno;
  if (err) {
    close(fs);
    return Fail(step, "output: fsconfig(tmpfs)", err);
  }
  int mnt = static_cast<int>(syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  err = errno;
  close(fs);
  return mnt < 0 ? Fail(step, "output: fsmount(tmpfs)", err) : mnt;
}

int OutputFsTakesIdmap(int userns) {
  const char* step = "output";
  int fs = MakeOutputFs(4096, 2, 0, 0, 0700, &step);
  if (fs < 0) return -fs;
  // A throwaway: idmapped itself (it is detached and not idmapped yet, as the kernel asks).
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<__u64>(userns);
  int err = syscall(SYS_mount_setattr, fs, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0 ? errno : 0;
  close(fs);
  return err;
}

namespace {

// makeOutputFs(bytes, inodes, uid, gid, mode) -> fd (see MakeOutputFs).
Napi::Value MakeOutputFsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 5; i++) {
    if (!info[i].IsNumber()) throw Napi::TypeError::New(env, "makeOutputFs: bytes, inodes, uid, gid and mode must be numbers");
  }
  double bytes = info[0].As<Napi::Number>().DoubleValue();
  double inodes = info[1].As<Napi::Number>().DoubleValue();
  // A size or inode count of 0 means "unlimited" to tmpfs: never ask for it.
  if (!(bytes >= 1 && bytes <= 9007199254740991.0) || !(inodes >= 2 && inodes <= 9007199254740991.0)) {
    throw Napi::RangeError::New(env, "makeOutputFs: bytes must be at least 1 and inodes at least 2 (safe integers)");
  }
  const char* step = "output";
  int fd = MakeOutputFs(static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(inodes), info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(), info[4].As<Napi::Number>().Uint32Value(), &step);
  if (fd < 0) ThrowErrno(env, step, -fd);
  return Napi::Number::New(env, fd);
}

// outputFsTakesIdmap(usernsFd) -> null, or the errno's name (see OutputFsTakesIdmap).
Napi::Value OutputFsTakesIdmapJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "outputFsTakesIdmap: usernsFd must be a number");
  int err = OutputFsTakesIdmap(info[0].As<Napi::Number>().Int32Value());
  return err == 0 ? env.Null() : Napi::Value(Napi::String::New(env, ErrnoName(err)));
}

}  // namespace

void InitOutputFs(Napi::Env env, Napi::Object exports) {
  exports.Set("makeOutputFs", Napi::Function::New(env, MakeOutputFsJs, "makeOutputFs"));
  exports.Set("outputFsTakesIdmap", Napi::Function::New(env, OutputFsTakesIdmapJs, "outputFsTakesIdmap"));
}

}  // namespace zygote::sandbox
