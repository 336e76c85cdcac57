// idmap: the user namespace a client's mounts are idmapped through (sandbox/root.cc).
//
// A user namespace exists only while something holds it, and gets its maps from a process in
// its parent namespace (user_namespaces(7)). The zygote is multi-threaded, so it cannot
// unshare one itself: it clones a parked helper into a new one, writes the helper's maps as
// root, opens the namespace and kills the helper. CLONE_VM, so the clone copies no page tables
// of the zygote's large address space; the helper runs only pause() on a stack of its own with
// every signal blocked, and touches no memory of the zygote's. A killed helper takes a while to
// be scheduled and die (0.5 ms here under load): it is reaped later, when the zygote is idle.
#include "idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "../errors.h"

namespace zygote::sandbox {
namespace {

constexpr size_t kHelperStack = 64 * 1024;
// Killed helpers not reaped yet; past this many, the next one is waited for at once.
constexpr size_t kMaxPending = 64;

struct Helper {
  pid_t pid;
  void* stack;
};
std::vector<Helper> pending;

// Reaps the killed helpers that are gone (all of them, waiting, if wait), freeing their stacks.
size_t Reap(bool wait) {
  std::erase_if(pending, [wait](const Helper& h) {
    int rc;
    do rc = waitpid(h.pid, nullptr, __WALL | (wait ? 0 : WNOHANG));
    while (rc < 0 && errno == EINTR);
    if (rc == 0) return false;
    munmap(h.stack, kHelperStack);  // only now: the helper ran on it
    return true;
  });
  return pending.size();
}

int Park(void*) {
  for (;;) pause();
  return 0;
}

int WriteMap(pid_t pid, const char* file, unsigned from, unsigned to) {
  char path[64], map[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  int len = snprintf(map, sizeof map, "%u %u 1\n", from, to);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = write(fd, map, len) == len ? 0 : (errno ? errno : EIO);
  close(fd);
  return err;
}

int Fail(const char** step, const char* name, int err) {
  *step = name;
  return err;
}

}  // namespace

int MakeIdmapUserns(uid_t from_uid, uid_t to_uid, gid_t from_gid, gid_t to_gid, const char** step) {
  void* stack = mmap(nullptr, kHelperStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -Fail(step, "idmap: mmap(helper stack)", errno);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // Exit signal 0: nobody is told of the helper's end; it is reaped below with __WALL.
  pid_t pid = clone(Park, static_cast<char*>(stack) + kHelperStack, CLONE_NEWUSER | CLONE_VM, nullptr);
  int clone_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    munmap(stack, kHelperStack);
    return -Fail(step, "idmap: clone(CLONE_NEWUSER)", clone_err);
  }
  int err = WriteMap(pid, "uid_map", from_uid, to_uid);
  if (err) Fail(step, "idmap: write uid_map", err);
  if (!err && (err = WriteMap(pid, "gid_map", from_gid, to_gid))) Fail(step, "idmap: write gid_map", err);
  int fd = -1;
  if (!err) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) err = Fail(step, "idmap: open the namespace", errno);
  }
  kill(pid, SIGKILL);
  if (pending.size() >= kMaxPending) Reap(true);
  pending.push_back({pid, stack});
  return err ? -err : fd;
}

namespace {

// makeIdmapUserns(fromUid, toUid, fromGid, toGid) -> fd (see MakeIdmapUserns).
Napi::Value MakeIdmapUsernsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; i++) {
    if (!info[i].IsNumber()) throw Napi::TypeError::New(env, "makeIdmapUserns: ids must be numbers");
  }
  auto id = [&](size_t i) { return info[i].As<Napi::Number>().Uint32Value(); };
  const char* step = "idmap";
  int fd = MakeIdmapUserns(id(0), id(1), id(2), id(3), &step);
  if (fd < 0) ThrowErrno(env, step, -fd);
  return Napi::Number::New(env, fd);
}

// reapIdmapHelpers() -> how many killed helpers are still to be reaped (the zygote calls it
// when idle until none is left).
Napi::Value ReapIdmapHelpersJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(Reap(false))); }

}  // namespace

void InitIdmap(Napi::Env env, Napi::Object exports) {
  exports.Set("makeIdmapUserns", Napi::Function::New(env, MakeIdmapUsernsJs, "makeIdmapUserns"));
  exports.Set("reapIdmapHelpers", Napi::Function::New(env, ReapIdmapHelpersJs, "reapIdmapHelpers"));
}

}  // namespace zygote::sandbox
