// probe: read-only checks of what this host's kernel offers each sandbox layer (zygote doctor).
//
// Nothing here changes the process or the host: seccomp_version() reads a constant of the
// libseccomp the addon was linked against, landlock_create_ruleset(NULL, 0,
// LANDLOCK_CREATE_RULESET_VERSION) only asks the kernel for its ABI version (no fd is made),
// and the syscall-entry probe makes its one call in a throwaway child.
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <sched.h>
#include <stdio.h>

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

// What a probe child wrote to its pipe before it ended, and how it ended.
struct ChildRun {
  std::string out;
  bool complete = false;  // it closed the pipe (exited) rather than outliving the bound
  int status = 0;
};

// Forks a child that runs body(fd) (raw syscalls only: the parent may be multi-threaded) and
// _exits; collects what it writes to fd until EOF, for 5 s at most (then it is killed), and
// reaps it. Throws on pipe or fork failure.
template <typename Body>
ChildRun RunProbeChild(Napi::Env env, Body body) {
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
    body(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  ChildRun run;
  char buf[4096];
  struct pollfd p{fds[0], POLLIN, 0};
  for (;;) {
    int n = poll(&p, 1, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // silent for 5 s: killed below
    ssize_t r = read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      run.complete = r == 0;
      break;
    }
    run.out.append(buf, static_cast<size_t>(r));
  }
  close(fds[0]);
  if (!run.complete) kill(pid, SIGKILL);
  while (waitpid(pid, &run.status, __WALL) < 0 && errno == EINTR) {
  }
  return run;
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

  ChildRun run = RunProbeChild(env, [entry](int fd) { EntryChild(entry, fd); });
  int64_t got[2] = {0, 0};
  bool returned = run.out.size() == sizeof got;
  if (returned) memcpy(got, run.out.data(), sizeof got);
  int status = run.status;
  Napi::Object out = Napi::Object::New(env);
  out.Set("returned", Napi::Boolean::New(env, returned));
  out.Set("value", returned && got[0] >= 0 ? Napi::Value(Napi::Number::New(env, static_cast<double>(got[0]))) : env.Null());
  out.Set("errno", returned && got[0] < 0 ? Napi::Value(Napi::String::New(env, ErrnoName(static_cast<int>(-got[0])))) : env.Null());
  out.Set("pid", returned ? Napi::Value(Napi::Number::New(env, static_cast<double>(got[1]))) : env.Null());
  out.Set("signal", !returned && WIFSIGNALED(status) ? Napi::Value(Napi::Number::New(env, WTERMSIG(status))) : env.Null());
  return out;
}

// A throwaway user namespace mapping its root to 65534, for an idmapped mount to use: a forked
// child unshares it and waits; the caller writes the maps from outside. Returns the child's
// pid (to kill and reap) and the namespace's fd, or an errno.
struct Userns {
  pid_t pid = -1;
  int fd = -1;
  int hold = -1;  // the child waits for EOF on the other end
  int err = 0;
};

bool WriteFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text, strlen(text)) == static_cast<ssize_t>(strlen(text));
  close(fd);
  return ok;
}

Userns MakeUserns() {
  Userns u;
  int ready[2], hold[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return {-1, -1, -1, errno};
  if (pipe2(hold, O_CLOEXEC) < 0) {
    u.err = errno;
    close(ready[0]);
    close(ready[1]);
    return u;
  }
  u.pid = fork();
  if (u.pid == 0) {
    close(ready[0]);
    close(hold[1]);
    char r = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    ssize_t unused = write(ready[1], &r, 1);
    (void)unused;
    char c;
    while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  u.hold = hold[1];
  if (u.pid < 0) {
    u.err = errno;
    close(ready[0]);
    return u;
  }
  char r = 'n';
  struct pollfd p{ready[0], POLLIN, 0};
  if (poll(&p, 1, 5000) <= 0 || read(ready[0], &r, 1) != 1 || r != 'y') u.err = EPERM;
  close(ready[0]);
  char path[64];
  if (!u.err) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", u.pid);
    if (!WriteFile(path, "0 65534 1")) u.err = errno;
  }
  if (!u.err) {
    snprintf(path, sizeof path, "/proc/%d/gid_map", u.pid);
    if (!WriteFile(path, "0 65534 1")) u.err = errno;
  }
  if (!u.err) {
    snprintf(path, sizeof path, "/proc/%d/ns/user", u.pid);
    u.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (u.fd < 0) u.err = errno;
  }
  return u;
}

void DropUserns(Userns& u) {
  if (u.fd >= 0) close(u.fd);
  if (u.hold >= 0) close(u.hold);  // the child reads EOF and exits
  if (u.pid > 0) {
    int status;
    while (waitpid(u.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

// probeMountAttr(path, attr) -> { ok, errno }: can a mount of path's filesystem take this
// attribute? Tried on a detached copy (open_tree OPEN_TREE_CLONE): the host's mount table never
// changes, and the copy goes with its fd. attr "noexec", or "idmap" (kernel 5.12+, and per
// filesystem), with a throwaway user namespace.
Napi::Value ProbeMountAttr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "probeMountAttr(path, attr): path and attr must be strings");
  std::string path = info[0].As<Napi::String>();
  std::string which = info[1].As<Napi::String>();
  if (which != "noexec" && which != "idmap") throw Napi::TypeError::New(env, "probeMountAttr(path, attr): attr must be \"noexec\" or \"idmap\", got \"" + which + "\"");
  struct mount_attr attr = {};
  Userns userns;
  int err = 0;
  if (which == "noexec") {
    attr.attr_set = MOUNT_ATTR_NOEXEC;
  } else {
    userns = MakeUserns();
    err = userns.err;
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<__u64>(userns.fd);
  }
  if (!err) {
    int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree < 0) {
      err = errno;
    } else {
      if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) err = errno;
      close(tree);
    }
  }
  DropUserns(userns);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", Napi::Boolean::New(env, err == 0));
  out.Set("errno", err == 0 ? env.Null() : Napi::Value(Napi::String::New(env, ErrnoName(err))));
  return out;
}

// probeSeccompSpeculation() -> { before, after }: the Speculation_Store_Bypass and
// SpeculationIndirectBranch lines of /proc/self/status in a forked child before and after it
// installs an allow-all seccomp filter with no flags, as the children's filter is installed:
// what the kernel's speculation policy does to a filtered process here.
Napi::Value ProbeSeccompSpeculation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ChildRun run = RunProbeChild(env, [](int fd) {
    char buf[8192];
    auto copy_status = [&]() {
      int status = static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC));
      if (status < 0) return;
      ssize_t n = read(status, buf, sizeof buf);
      close(status);
      if (n > 0) {
        ssize_t unused = write(fd, buf, static_cast<size_t>(n));
        (void)unused;
      }
    };
    copy_status();
    ssize_t unused = write(fd, "\n--\n", 4);
    (void)unused;
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0) copy_status();
  });
  return Napi::String::New(env, run.out);
}

// probeFork() -> { ok, errno, micros }: whether this process can fork now (zygote health). A
// raw clone(SIGCHLD), so no atfork handler runs: the child only exits, touching nothing of the
// parent's heap. The child cannot block, so the wait for it is bounded by its exit.
Napi::Value ProbeFork(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) syscall(SYS_exit_group, 0);
  int err = pid < 0 ? errno : 0;
  if (pid > 0) {
    int status;
    while (waitpid(static_cast<pid_t>(pid), &status, __WALL) < 0 && errno == EINTR) {
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", Napi::Boolean::New(env, pid > 0));
  out.Set("errno", pid > 0 ? env.Null() : Napi::Value(Napi::String::New(env, ErrnoName(err))));
  out.Set("micros", Napi::Number::New(env, (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3));
  return out;
}

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeSeccompVersion", Napi::Function::New(env, ProbeSeccompVersion, "probeSeccompVersion"));
  exports.Set("probeLandlockAbi", Napi::Function::New(env, ProbeLandlockAbi, "probeLandlockAbi"));
  exports.Set("probeSyscallEntry", Napi::Function::New(env, ProbeSyscallEntry, "probeSyscallEntry"));
  exports.Set("probeMountAttr", Napi::Function::New(env, ProbeMountAttr, "probeMountAttr"));
  exports.Set("probeSeccompSpeculation", Napi::Function::New(env, ProbeSeccompSpeculation, "probeSeccompSpeculation"));
  exports.Set("probeFork", Napi::Function::New(env, ProbeFork, "probeFork"));
}

}  // namespace zygote
