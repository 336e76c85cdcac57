// rlimits: per-child resource limits (never RLIMIT_AS: V8 reserves huge address space).
#include "rlimits.h"

#include <errno.h>

namespace zygote::sandbox {

int SetLimit(int resource, rlim_t value) { return SetLimits(resource, value, value); }

int SetLimits(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit lim = {soft, hard};
  return setrlimit(resource, &lim) < 0 ? errno : 0;
}

}  // namespace zygote::sandbox
