// probe: read-only checks of what this host's kernel offers each sandbox layer (zygote doctor).
//
// Nothing here changes the process or the host: seccomp_version() reads a constant of the
// libseccomp the addon was linked against, landlock_create_ruleset(NULL, 0,
// LANDLOCK_CREATE_RULESET_VERSION) only asks the kernel for its ABI version (no fd is made),
// and the syscall-entry probe makes its one call in a throwaway child.
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "errors.h"

// Older uapi headers lack these; the values are the kernel's ABI (x86_64 syscall 444, 5.13+).
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

namespace zygote {
namespace {

// probeSeccompVersion() -> { major, minor, micro } of the libseccomp loaded at run time.
Napi::Value ProbeSeccompVersion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const struct scmp_version* v = seccomp_version();
  if (v == nullptr) throw Napi::Error::New(env, "seccomp_version() returned NULL");
  Napi::Object out = Napi::Object::New(env);
  out.Set("major", Napi::Number::New(env, v->major));
  out.Set("minor", Napi::Number::New(env, v->minor));
  out.Set("micro", Napi::Number::New(env, v->micro));
  return out;
}

// probeLandlockAbi() -> { abi: number, errno: null } when the kernel has Landlock enabled, or
// { abi: null, errno: "ENOSYS" | "EOPNOTSUPP" | ... } when it does not: ENOSYS means the kernel
// was built without CONFIG_SECURITY_LANDLOCK (or the syscall is filtered), EOPNOTSUPP that it
// was built with Landlock but not enabled at boot (the lsm= list).
Napi::Value ProbeLandlockAbi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  int err = errno;
  Napi::Object out = Napi::Object::New(env);
  if (abi < 0) {
    out.Set("abi", env.Null());
    out.Set("errno", Napi::String::New(env, ErrnoName(err)));
  } else {
    out.Set("abi", Napi::Number::New(env, static_cast<double>(abi)));
    out.Set("errno", env.Null());
  }
  return out;
}

// The two other ways into the kernel's syscall tables that an x86_64 filter must check the
// arch of. Both call getpid, which cannot harm anything.
enum class Entry { kI386, kX32 };

// Child side: one getpid through the entry, its raw return value written to fd. Only raw
// syscalls here: the parent may be multi-threaded.
[[noreturn]] void EntryChild(Entry entry, int fd) {
  // A SIGSEGV from an absent i386 entry must not leave a core file in the cwd.
  struct rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  long ret;
  if (entry == Entry::kI386) {
    ret = 20;  // __NR_getpid in the i386 table; the kernel returns -errno in eax
    asm volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
  } else {
    ret = syscall(0x40000000 | SYS_getpid);  // __X32_SYSCALL_BIT
    if (ret < 0) ret = -errno;
  }
  int64_t out[2] = {static_cast<int64_t>(ret), static_cast<int64_t>(syscall(SYS_getpid))};
  ssize_t unused = write(fd, out, sizeof out);
  (void)unused;
  _exit(0);
}

// probeSyscallEntry("i386" | "x32") -> { returned, value, errno, pid, signal }: a forked child
// calls getpid through that entry with no filter of ours. returned: the call came back (value
// the pid it gave, or errno); otherwise signal is the number that ended the child (SIGSEGV
// where the host has no i386 entry; SIGSYS where this process's own filter kills it). pid is
// the child's own pid, to compare value with. Bounded: a child silent for 5 s is killed.
Napi::Value ProbeSyscallEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "probeSyscallEntry(entry): entry must be \"i386\" or \"x32\"");
  std::string which = info[0].As<Napi::String>();
  if (which != "i386" && which != "x32") throw Napi::TypeError::New(env, "probeSyscallEntry(entry): entry must be \"i386\" or \"x32\", got \"" + which + "\"");
  Entry entry = which == "i386" ? Entry::kI386 : Entry::kX32;

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) ThrowErrno(env, "pipe2", errno);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    ThrowErrno(env, "fork", err);
  }
  if (pid == 0) {
    close(fds[0]);
    EntryChild(entry, fds[1]);
  }
  close(fds[1]);
  int64_t got[2] = {0, 0};
  size_t have = 0;
  struct pollfd p{fds[0], POLLIN, 0};
  while (have < sizeof got) {
    int n = poll(&p, 1, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // timed out: killed below
    ssize_t r = read(fds[0], reinterpret_cast<char*>(got) + have, sizeof got - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EOF: the child died before writing
    have += static_cast<size_t>(r);
  }
  close(fds[0]);
  if (have < sizeof got) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }

  Napi::Object out = Napi::Object::New(env);
  bool returned = have == sizeof got;
  out.Set("returned", Napi::Boolean::New(env, returned));
  out.Set("value", returned && got[0] >= 0 ? Napi::Value(Napi::Number::New(env, static_cast<double>(got[0]))) : env.Null());
  out.Set("errno", returned && got[0] < 0 ? Napi::Value(Napi::String::New(env, ErrnoName(static_cast<int>(-got[0])))) : env.Null());
  out.Set("pid", returned ? Napi::Value(Napi::Number::New(env, static_cast<double>(got[1]))) : env.Null());
  out.Set("signal", !returned && WIFSIGNALED(status) ? Napi::Value(Napi::Number::New(env, WTERMSIG(status))) : env.Null());
  return out;
}

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeSeccompVersion", Napi::Function::New(env, ProbeSeccompVersion, "probeSeccompVersion"));
  exports.Set("probeLandlockAbi", Napi::Function::New(env, ProbeLandlockAbi, "probeLandlockAbi"));
  exports.Set("probeSyscallEntry", Napi::Function::New(env, ProbeSyscallEntry, "probeSyscallEntry"));
}

}  // namespace zygote
