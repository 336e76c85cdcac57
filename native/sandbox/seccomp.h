// seccomp: the syscall filter. Compiled once in the zygote (prepare), installed in each child (apply).
#pragma once

#include <linux/filter.h>
#include <napi.h>

#include <vector>

namespace zygote::sandbox {

// Child side: installs the compiled filter on every thread (TSYNC). Needs no_new_privs
// (or CAP_SYS_ADMIN). Returns 0 or an errno.
int ApplySeccomp(const std::vector<sock_filter>& program);

// The compiled filter with this id (from compileSeccomp), or nullptr.
const std::vector<sock_filter>* SeccompProgram(int id);

void InitSeccomp(Napi::Env env, Napi::Object exports);

}  // namespace zygote::sandbox
