// errors: turning a failed syscall into a JS Error that names the call and the errno symbol.
#pragma once

#include <napi.h>

namespace zygote {

// The symbolic name of an errno value ("EPERM"), or "E<number>" when glibc has none.
const char* ErrnoName(int err);

// An Error whose message reads "<syscall> failed: <ENAME> (<strerror>)", with .code, .errno
// and .syscall set as Node's own system errors do.
Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err);

// Throws ErrnoError; a helper for the common "if (rc < 0) throw" shape.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err);

}  // namespace zygote
