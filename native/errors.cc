// errors: turning a failed syscall into a JS Error that names the call and the errno symbol.
#include "errors.h"

#include <string.h>

#include <string>

namespace zygote {

const char* ErrnoName(int err) {
  // strerrorname_np is glibc >= 2.32; a thread-local buffer covers unknown values.
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  static thread_local char buf[24];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err) {
  std::string msg = std::string(syscall) + " failed: " + ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, msg);
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowErrno(Napi::Env env, const char* syscall, int err) {
  throw ErrnoError(env, syscall, err);
}

}  // namespace zygote
