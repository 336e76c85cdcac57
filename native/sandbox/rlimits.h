// rlimits: per-child resource limits (never RLIMIT_AS: V8 reserves huge address space).
#pragma once

#include <sys/resource.h>

namespace zygote::sandbox {

// Sets both soft and hard limit of resource to value; returns 0 or an errno.
int SetLimit(int resource, rlim_t value);
// Sets the soft and hard limits separately.
int SetLimits(int resource, rlim_t soft, rlim_t hard);

}  // namespace zygote::sandbox
