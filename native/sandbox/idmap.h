// idmap: the user namespace a client's mounts are idmapped through (sandbox/root.cc).
#pragma once

#include <napi.h>
#include <sys/types.h>

namespace zygote::sandbox {

// Zygote side, as root: a user namespace whose only mappings are from_uid -> to_uid and
// from_gid -> to_gid (a mount idmapped through it shows files owned by from_uid as to_uid's,
// and everything else as nobody's). Returns an fd of it, or minus an errno with *step set.
int MakeIdmapUserns(uid_t from_uid, uid_t to_uid, gid_t from_gid, gid_t to_gid, const char** step);

void InitIdmap(Napi::Env env, Napi::Object exports);

}  // namespace zygote::sandbox
