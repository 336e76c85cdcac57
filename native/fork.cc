// fork: turning the warm zygote into a child that is ready to run JS.
//
// The zygote's main thread calls forkChild() from its serve loop, between events, so no
// JS is half-way through anything. The sequence is the one that survived the stress runs
// recorded in shared/notes/fork-safety.md:
//   parent: snapshot fds, MADV_DOFORK every anonymous mapping, block signals, glibc fork()
//           (not raw clone3: glibc's fork handlers reset its cached tid and libuv's thread
//           pool), pidfd_open the child, unblock signals.
//   child:  the ordered setup list in RunChildSetup below, then back to JS, which fixes
//           per-process JS state (process.pid, Math.random) before any step code runs.
// The child reports the outcome of its setup over a pipe the zygote reads (never over its
// stdout, which untrusted code will own), and on any failure exits without running JS.
#include "fork.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <string>
#include <vector>

#include "childfds.h"
#include "errors.h"
#include "forkable.h"
#include "report.h"
#include "signals.h"

namespace zygote {
namespace {

struct ForkSpec {
  int stdio[3];      // the child's ends, put on 0, 1, 2
  int report_fd;     // write end of the setup-report pipe
  char name[16];     // comm name (TASK_COMM_LEN)
  pid_t parent;      // the zygote, for the PDEATHSIG race check
  int death_signal;  // sent to the child when the zygote dies
};

// Child side. Each step returns 0 or an errno; the first failure is reported and ends the
// child. Order matters, and each step says why it stands where it does.
void RunChildSetup(const ForkSpec& spec, const std::vector<FdIdentity>& snapshot, uv_loop_t* loop) {
  auto fail = [&](const char* step, int err) {
    WriteReport(spec.report_fd, false, step, err);
    _exit(kSetupFailedExitCode);
  };

  // 1. Signals first: until the zygote's handlers are gone, a signal here would write a
  //    wake-up into the zygote's self-pipe. fork() ran with every signal blocked, so none
  //    has been delivered yet; the mask is restored once the handlers are Node's again.
  RestoreZygoteSignals();

  // 2. Die with the zygote. PDEATHSIG fires when the parent *thread* exits; the zygote forks
  //    from its main thread, which lives as long as it does. If the zygote died between
  //    fork and here, getppid() has already changed: bail out.
  if (prctl(PR_SET_PDEATHSIG, spec.death_signal) < 0) fail("prctl(PR_SET_PDEATHSIG)", errno);
  if (getppid() != spec.parent) fail("zygote exited during fork", ESRCH);

  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) < 0) fail("sigprocmask", errno);

  // 3. The child's pipes become its stdio (dup2 clears close-on-exec on 0-2 as it should).
  for (int i = 0; i < 3; i++) {
    if (dup2(spec.stdio[i], i) < 0) fail("dup2(stdio)", errno);
  }

  // 4. Close what was inherited, before uv_loop_fork so the loop's new fds cannot be hit.
  if (int err = SweepInheritedFds(snapshot, loop, spec.report_fd)) fail("close inherited fds", err);

  // 5. Give the event loop a fresh epoll fd, async eventfd and signal pipe (uv_loop_fork(3):
  //    required before the loop runs again in the child).
  if (int rc = uv_loop_fork(loop)) fail("uv_loop_fork", -rc);
  if (int err = RenewLoopReserveFd(loop)) fail("renew loop reserve fd", err);

  // 6. A name for ps and for logs.
  if (spec.name[0] != '\0' && prctl(PR_SET_NAME, spec.name) < 0) fail("prctl(PR_SET_NAME)", errno);

  // Done: say so and close the channel, so nothing the step does can write to it.
  WriteReport(spec.report_fd, true, "ready", 0);
  close(spec.report_fd);
}

int FdField(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("forkChild: ") + key + " must be an fd number");
  int fd = v.As<Napi::Number>().Int32Value();
  if (fd <= STDERR_FILENO) throw Napi::RangeError::New(env, std::string("forkChild: ") + key + " must be above 2");
  return fd;
}

ForkSpec ParseSpec(Napi::Env env, Napi::Object o) {
  ForkSpec spec = {};
  spec.stdio[0] = FdField(env, o, "stdin");
  spec.stdio[1] = FdField(env, o, "stdout");
  spec.stdio[2] = FdField(env, o, "stderr");
  spec.report_fd = FdField(env, o, "report");
  std::string name = o.Has("name") && o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "";
  strncpy(spec.name, name.c_str(), sizeof spec.name - 1);
  spec.parent = getpid();
  spec.death_signal = SIGKILL;
  return spec;
}

// forkChild({ stdin, stdout, stderr, report, name }) ->
//   in the zygote: { role: "parent", pid, pidfd }
//   in the child:  { role: "child", pid }  (only after every setup step succeeded)
Napi::Value ForkChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ForkSpec spec = ParseSpec(env, info[0].As<Napi::Object>());
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    throw Napi::Error::New(env, "forkChild: no event loop");

  std::vector<FdIdentity> snapshot = SnapshotFds();
  MakeMemoryForkable();

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    RunChildSetup(spec, snapshot, loop);
    Napi::Object out = Napi::Object::New(env);
    out.Set("role", "child");
    out.Set("pid", getpid());
    return out;
  }
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) ThrowErrno(env, "fork", fork_err);

  // The child cannot be reaped before we open the pidfd (only we reap it), so there is no
  // pid-reuse window here.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, __WALL);
    ThrowErrno(env, "pidfd_open", e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("role", "parent");
  out.Set("pid", pid);
  out.Set("pidfd", pidfd);
  return out;
}

}  // namespace

void InitFork(Napi::Env env, Napi::Object exports) {
  exports.Set("forkChild", Napi::Function::New(env, ForkChild, "forkChild"));
}

}  // namespace zygote
