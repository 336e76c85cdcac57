// creds: dropping every privilege: securebits, capability sets, supplementary groups, gid, uid.
#pragma once

#include <sys/types.h>

namespace zygote::sandbox {

// Each returns 0 or an errno. Child side, in the order fork.cc lists them.

// Locks securebits so no later uid change or exec can regain capabilities (root only).
int LockSecurebits();
// Drops every capability from the bounding set (needs CAP_SETPCAP: before the uid change).
int DropBoundingSet();
// Empties the ambient set.
int ClearAmbientCaps();
// setgroups(0), setresgid(gid x3), setresuid(uid x3).
int DropGroups();
int SetGids(gid_t gid);
int SetUids(uid_t uid);
// Empties the effective, permitted and inheritable sets (capset).
int ClearCapabilities();
// Checks the work: ids are what was asked, no capability is left, setuid(0) fails.
int VerifyNoPrivilege(uid_t uid, gid_t gid);

}  // namespace zygote::sandbox
