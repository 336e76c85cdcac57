// landlock: the filesystem rights the step keeps, enforced by the kernel's Landlock LSM.
#pragma once

#include "root.h"

namespace zygote::sandbox {

// Restricts the calling process (and every thread and child it makes later) to reading and
// executing what it can see, writing only in /tmp, the writable binds and the devices, and
// (ABI 6+) signalling and reaching abstract unix sockets only within its own domain. abi is
// the kernel's Landlock ABI (probed once by the zygote); the rights asked for are exactly the
// ones that ABI knows. Needs no_new_privs. Returns 0 or an errno; *step names the part.
int ApplyLandlock(int abi, const RootSpec& root, const char** step);

}  // namespace zygote::sandbox
