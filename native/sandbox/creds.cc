// creds: dropping every privilege: securebits, capability sets, supplementary groups, gid, uid.
//
// Order (as Android's SpecializeCommon and bubblewrap do): everything that needs
// CAP_SETPCAP (securebits, bounding set) first, while still root; then groups, gid and uid
// (the gid first: after setresuid we could no longer change it); then the remaining
// capability sets, which SECBIT_NO_SETUID_FIXUP made us clear by hand; then check.
#include "creds.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace zygote::sandbox {
namespace {

int Errno(int rc) { return rc < 0 ? errno : 0; }

// The highest capability this kernel knows (CAP_LAST_CAP of the headers may be older).
int LastCap() {
  int last = CAP_LAST_CAP;
  while (prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0) last++;
  return last;
}

}  // namespace

int LockSecurebits() {
  // NOROOT: uid 0 gains no capabilities from exec. NO_SETUID_FIXUP: a uid change leaves the
  // capability sets alone (we clear them ourselves, explicitly). KEEP_CAPS stays off.
  // NO_CAP_AMBIENT_RAISE: nothing can be put back in the ambient set. All locked.
  unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  return Errno(prctl(PR_SET_SECUREBITS, bits, 0, 0, 0));
}

int DropBoundingSet() {
  int last = LastCap();
  for (int cap = 0; cap <= last; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return errno;
  }
  return 0;
}

int ClearAmbientCaps() { return Errno(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)); }

int DropGroups() { return Errno(setgroups(0, nullptr)); }

int SetGids(gid_t gid) { return Errno(setresgid(gid, gid, gid)); }

int SetUids(uid_t uid) { return Errno(setresuid(uid, uid, uid)); }

int ClearCapabilities() {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return Errno(static_cast<int>(syscall(SYS_capset, &header, data)));
}

int VerifyNoPrivilege(uid_t uid, gid_t gid) {
  uid_t r, e, s;
  gid_t rg, eg, sg;
  if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0) return errno;
  if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid) return EPERM;
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) < 0) return errno;
  for (auto& d : data) {
    if (d.effective || d.permitted || d.inheritable) return EPERM;
  }
  if (uid != 0 && syscall(SYS_setuid, 0) == 0) return EPERM;  // bubblewrap's habit: prove it
  return 0;
}

}  // namespace zygote::sandbox
