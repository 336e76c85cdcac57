// signals: the zygote's termination signals, turned into bytes on a pipe it can poll.
//
// The zygote's main thread sits in poll(2), not in the Node event loop, so Node's own
// signal handling cannot wake it. The classic self-pipe: a handler writes the signal number
// to a non-blocking pipe that the serve loop polls. The dispositions it replaced are saved
// so a forked child gets them back before any of its JS runs.
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "errors.h"

namespace zygote {
namespace {

int g_pipe[2] = {-1, -1};
struct sigaction g_saved[NSIG];
bool g_installed[NSIG];

void OnSignal(int sig) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(sig);
  // Non-blocking: a full pipe already holds a pending wake-up, so dropping the byte is fine.
  ssize_t ignored = write(g_pipe[1], &b, 1);
  (void)ignored;
  errno = saved;
}

// installSignalPipe(signals: number[]) -> fd to poll for readability.
Napi::Value InstallSignalPipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_pipe[0] < 0 && pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) < 0) ThrowErrno(env, "pipe2", errno);
  Napi::Array sigs = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < sigs.Length(); i++) {
    int sig = sigs.Get(i).As<Napi::Number>().Int32Value();
    if (sig <= 0 || sig >= NSIG) throw Napi::RangeError::New(env, "bad signal number");
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction old;
    if (sigaction(sig, &sa, &old) < 0) ThrowErrno(env, "sigaction", errno);
    if (!g_installed[sig]) {
      g_saved[sig] = old;
      g_installed[sig] = true;
    }
  }
  return Napi::Number::New(env, g_pipe[0]);
}

// readSignals() -> the signal numbers received since the last call, oldest first.
Napi::Value ReadSignals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  unsigned char buf[64];
  uint32_t n = 0;
  for (;;) {
    ssize_t r = read(g_pipe[0], buf, sizeof buf);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++) out.Set(n++, static_cast<int>(buf[i]));
  }
  return out;
}

}  // namespace

void RestoreZygoteSignals() {
  for (int sig = 1; sig < NSIG; sig++) {
    if (g_installed[sig]) sigaction(sig, &g_saved[sig], nullptr);
  }
  // The child must not share the zygote's wake-up pipe; the fd sweep closes it as well.
  if (g_pipe[0] >= 0) close(g_pipe[0]);
  if (g_pipe[1] >= 0) close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
}

void InitSignals(Napi::Env env, Napi::Object exports) {
  exports.Set("installSignalPipe", Napi::Function::New(env, InstallSignalPipe, "installSignalPipe"));
  exports.Set("readSignals", Napi::Function::New(env, ReadSignals, "readSignals"));
}

}  // namespace zygote
