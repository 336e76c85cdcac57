// rlimits: per-child resource limits (never RLIMIT_AS: V8 reserves huge address space).
#include "rlimits.h"

#include <errno.h>

namespace zygote::sandbox {

int SetLimit(int resource, rlim_t value) {
  struct rlimit lim = {value, value};
  return setrlimit(resource, &lim) < 0 ? errno : 0;
}

}  // namespace zygote::sandbox
