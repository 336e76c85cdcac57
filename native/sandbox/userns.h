// userns: the child's own user namespace, in which it is root and nothing else.
#pragma once

#include <sys/types.h>

namespace zygote::sandbox {

// Unshares a user namespace and maps its root, alone, to the host uid and gid the process
// already runs as (it must have dropped to them first). No other id exists inside, so files
// of every other host user show as the overflow id and setgroups is denied for good. The
// process writes its own maps: a process may map just its own ids without privilege in the
// parent namespace, so the zygote need not take part. Returns 0 or an errno; *step names
// the part that failed.
int EnterUserNamespace(uid_t host_uid, gid_t host_gid, const char** step);

}  // namespace zygote::sandbox
