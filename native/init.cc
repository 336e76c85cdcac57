// init: pid 1 of a child's pid namespace, a tiny reaper in C that never runs JS.
//
// Why a separate init rather than making the step pid 1 (as Chromium's zygote does with its
// init process reaper, and bubblewrap and tini for containers):
//   - the init of a pid namespace ignores every signal it has no handler for when it comes
//     from inside the namespace, so a step that ran process.kill(process.pid, 'SIGTERM') or
//     abort() as pid 1 would not die of it;
//   - when pid 1 exits the kernel kills everything else in the namespace, so whatever the
//     step leaves behind dies with it, and nothing it does can outlive the exit.
// The init is as confined as the step (same namespaces, uid, no capabilities, no_new_privs)
// plus its own tiny seccomp filter, holds no fd but the report pipe, and trusts nothing the
// step sends it: signals from inside the namespace are dropped, never forwarded back.
#include "init.h"

#include <errno.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

namespace zygote {
namespace {

void CloseAllBut(int keep) {
  if (keep > 0) syscall(SYS_close_range, 0, keep - 1, 0);
  syscall(SYS_close_range, keep + 1, ~0U, 0);
}

// Reaps what has already exited beside the step; true when nothing else is left in the
// namespace (every orphan is the init's child, so no child left means no process left). The
// zygote may then report the exit at once, while this init is still tearing itself down.
bool ReapRest() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
    if (pid > 0) continue;
    return pid < 0 && errno == ECHILD;
  }
}

int ExitCodeFor(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

void RunInit(pid_t step, int report_fd, const std::vector<sock_filter>* filter) {
  CloseAllBut(report_fd);
  if (filter != nullptr) {
    struct sock_fprog prog = {static_cast<unsigned short>(filter->size()), const_cast<sock_filter*>(filter->data())};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
      // Fail closed: no step runs beside an init that could not confine itself.
      kill(step, SIGKILL);
    }
  }
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    // Reap first: SIGCHLD may have been merged with an earlier one or come before we waited.
    for (;;) {
      int status = 0;
      struct rusage usage = {};
      // wait4: the step's own rusage (its peak RSS, its CPU) goes with its status.
      pid_t pid = wait4(-1, &status, WNOHANG | __WALL, &usage);
      if (pid == step) {
        WriteExitRecord(report_fd, status, usage, ReapRest() ? kExitAlone : 0);
        _exit(ExitCodeFor(status));
      }
      if (pid <= 0) break;
    }
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0 || sig == SIGCHLD) continue;
    // From outside the namespace (the zygote, for a client's kill request) the sender's pid
    // reads as 0; from the step it is its own pid. Only the former is passed on.
    if (info.si_pid == 0 && (info.si_code == SI_USER || info.si_code == SI_QUEUE)) kill(step, sig);
  }
}

}  // namespace zygote
