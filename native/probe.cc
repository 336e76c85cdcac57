// probe: read-only checks of what this host's kernel offers each sandbox layer (zygote doctor).
//
// Nothing here changes the process or the host: seccomp_version() reads a constant of the
// libseccomp the addon was linked against, and landlock_create_ruleset(NULL, 0,
// LANDLOCK_CREATE_RULESET_VERSION) only asks the kernel for its ABI version (no fd is made).
#include "probe.h"

#include <errno.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

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

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeSeccompVersion", Napi::Function::New(env, ProbeSeccompVersion, "probeSeccompVersion"));
  exports.Set("probeLandlockAbi", Napi::Function::New(env, ProbeLandlockAbi, "probeLandlockAbi"));
}

}  // namespace zygote
