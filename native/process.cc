// process: small process and fd primitives the zygote's serve loop and the client use.
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"
#include "report.h"

namespace zygote {
namespace {

int IntArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// pipe() -> [readFd, writeFd], both close-on-exec. The zygote makes the child's stdio with it.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) ThrowErrno(info.Env(), "pipe2", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, p[0]);
  out.Set(1u, p[1]);
  return out;
}

// setNonBlocking(fd, on)
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) ThrowErrno(info.Env(), "fcntl(F_GETFL)", errno);
  flags = info[1].ToBoolean() ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, flags) < 0) ThrowErrno(info.Env(), "fcntl(F_SETFL)", errno);
  return info.Env().Undefined();
}

// close(fd); EBADF is an error (a double close is a bug), EINTR is not (Linux closed it).
Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// poll(fds: Int32Array, events: Int16Array, revents: Int16Array, timeoutMs) -> ready count.
// Typed arrays so the serve loop can reuse them and poll many fds without per-call objects.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
  Napi::Int16Array events = info[1].As<Napi::Int16Array>();
  Napi::Int16Array revents = info[2].As<Napi::Int16Array>();
  int timeout = IntArg(info, 3, "timeoutMs");
  size_t n = fds.ElementLength();
  if (events.ElementLength() < n || revents.ElementLength() < n) throw Napi::RangeError::New(env, "poll: arrays differ in length");
  std::vector<struct pollfd> pfds(n);
  for (size_t i = 0; i < n; i++) pfds[i] = {fds[i], events[i], 0};
  int rc;
  do rc = poll(pfds.data(), n, timeout);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(env, "poll", errno);
  for (size_t i = 0; i < n; i++) revents[i] = pfds[i].revents;
  return Napi::Number::New(env, rc);
}

// reap(pid) -> null while it runs, else { code | null, signal | null, userUs, systemUs,
// maxRssKb }. wait4 rather than waitid: only wait4 returns the child's rusage. The zygote
// reaps a pid only after its pidfd said it exited, and no one else reaps it, so the pid
// cannot have been reused.
Napi::Value Reap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = IntArg(info, 0, "pid");
  int status = 0;
  struct rusage ru = {};
  pid_t rc;
  do rc = wait4(pid, &status, WNOHANG | __WALL, &ru);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(env, "wait4", errno);
  if (rc == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("code", WIFEXITED(status) ? Napi::Number::New(env, WEXITSTATUS(status)) : env.Null());
  out.Set("signal", WIFSIGNALED(status) ? Napi::Number::New(env, WTERMSIG(status)) : env.Null());
  out.Set("userUs", static_cast<double>(ru.ru_utime.tv_sec) * 1e6 + ru.ru_utime.tv_usec);
  out.Set("systemUs", static_cast<double>(ru.ru_stime.tv_sec) * 1e6 + ru.ru_stime.tv_usec);
  out.Set("maxRssKb", static_cast<double>(ru.ru_maxrss));
  return out;
}

// pidfdSendSignal(pidfd, signal) -> true, or false when the process has already exited.
// A pidfd names one process for good, so this cannot hit a recycled pid.
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  int pidfd = IntArg(info, 0, "pidfd");
  int sig = IntArg(info, 1, "signal");
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "pidfd_send_signal", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// readReport(fd) -> { ok, step, errno, code } | null (not yet) | "eof" (the child died
// before it reported: its exit status says why) | { exit: { code, signal, maxRssKb, userUs, systemUs } } (a pid
// namespace's init passing on how the step ended; see native/init.cc).
Napi::Value ReadReport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  SetupReport r = {};
  ssize_t n;
  do n = read(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return env.Null();
  if (n < 0) ThrowErrno(env, "read(report)", errno);
  if (n == 0) return Napi::String::New(env, "eof");
  if (n != sizeof r || (r.magic != kReportMagic && r.magic != kExitMagic)) throw Napi::Error::New(env, "malformed setup report from child");
  if (r.magic == kExitMagic) {
    ExitRecord x;
    memcpy(&x, &r, sizeof x);
    Napi::Object status = Napi::Object::New(env);
    status.Set("code", WIFEXITED(x.wait_status) ? Napi::Number::New(env, WEXITSTATUS(x.wait_status)) : env.Null());
    status.Set("signal", WIFSIGNALED(x.wait_status) ? Napi::Number::New(env, WTERMSIG(x.wait_status)) : env.Null());
    status.Set("maxRssKb", Napi::Number::New(env, static_cast<double>(x.max_rss_kb)));
    status.Set("userUs", Napi::Number::New(env, static_cast<double>(x.user_us)));
    status.Set("systemUs", Napi::Number::New(env, static_cast<double>(x.system_us)));
    status.Set("alone", (x.flags & kExitAlone) != 0);
    Napi::Object out = Napi::Object::New(env);
    out.Set("exit", status);
    return out;
  }
  r.step[sizeof r.step - 1] = '\0';
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", r.ok == 1);
  out.Set("step", r.step);
  out.Set("errno", r.err);
  out.Set("code", r.err ? ErrnoName(r.err) : "");
  out.Set("message", r.err ? strerror(r.err) : "");
  return out;
}

// exitNow(code): exit_group without running atexit handlers or Node's teardown. Node's
// teardown waits on V8 worker threads that do not exist in a forked child and would hang.
Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  _exit(code & 0xff);
}

// execve(path, argv[], env[]): replaces this process (the CLI uses it to become a zygote
// with the right Node flags and a clean environment). Returns only by throwing.
Napi::Value Execve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  auto strings = [](Napi::Array a) {
    std::vector<std::string> v;
    for (uint32_t i = 0; i < a.Length(); i++) v.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    return v;
  };
  std::vector<std::string> argv = strings(info[1].As<Napi::Array>());
  std::vector<std::string> envp = strings(info[2].As<Napi::Array>());
  std::vector<char*> argv_p, envp_p;
  for (auto& s : argv) argv_p.push_back(s.data());
  argv_p.push_back(nullptr);
  for (auto& s : envp) envp_p.push_back(s.data());
  envp_p.push_back(nullptr);
  // Node marks its own 0-2 close-on-exec; the new image must keep this process's stdio.
  for (int fd = 0; fd <= STDERR_FILENO; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  execve(path.c_str(), argv_p.data(), envp_p.data());
  ThrowErrno(env, "execve", errno);
}

// sameOpenFile(pid1, fd1, pid2, fd2) -> whether both fds are one open file description
// (kcmp KCMP_FILE). Tests use it to prove a child shares nothing with the zygote.
Napi::Value SameOpenFile(const Napi::CallbackInfo& info) {
  constexpr int kKcmpFile = 0;
  long rc = syscall(SYS_kcmp, IntArg(info, 0, "pid1"), IntArg(info, 2, "pid2"), kKcmpFile,
                    IntArg(info, 1, "fd1"), IntArg(info, 3, "fd2"));
  if (rc < 0) ThrowErrno(info.Env(), "kcmp", errno);
  return Napi::Boolean::New(info.Env(), rc == 0);
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
  exports.Set("reap", Napi::Function::New(env, Reap, "reap"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("readReport", Napi::Function::New(env, ReadReport, "readReport"));
  exports.Set("exitNow", Napi::Function::New(env, ExitNow, "exitNow"));
  exports.Set("execve", Napi::Function::New(env, Execve, "execve"));
  exports.Set("sameOpenFile", Napi::Function::New(env, SameOpenFile, "sameOpenFile"));
}

}  // namespace zygote
