// userns: the child's own user namespace, in which it is root and nothing else.
//
// It comes after the mount, network and other namespaces were made and the root was built
// (sandbox/root.cc), all as real root, so those namespaces are owned by the host's user
// namespace: the capabilities the child holds in its own user namespace (until capset drops
// them) give it no power over any of them. The kernel refuses unshare(CLONE_NEWUSER) to a
// chrooted process; after pivot_root the root is the mount namespace's own, as it must be.
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace zygote::sandbox {
namespace {

int WriteProcFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t len = static_cast<ssize_t>(strlen(text));
  int err = write(fd, text, len) == len ? 0 : (errno ? errno : EIO);
  close(fd);
  return err;
}

}  // namespace

int EnterUserNamespace(uid_t host_uid, gid_t host_gid, const char** step) {
  *step = "unshare(CLONE_NEWUSER)";
  if (unshare(CLONE_NEWUSER) < 0) return errno;
  // Gaining capabilities in the new namespace made the process non-dumpable (commit_creds),
  // which hands its /proc files to the host's root: own them again to write the maps. The
  // not-dumpable layer clears it once more later.
  *step = "prctl(PR_SET_DUMPABLE) for the id maps";
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) return errno;
  char map[64];
  *step = "write /proc/self/setgroups";
  if (int err = WriteProcFile("/proc/self/setgroups", "deny")) return err;
  *step = "write /proc/self/gid_map";
  snprintf(map, sizeof map, "0 %u 1\n", static_cast<unsigned>(host_gid));
  if (int err = WriteProcFile("/proc/self/gid_map", map)) return err;
  *step = "write /proc/self/uid_map";
  snprintf(map, sizeof map, "0 %u 1\n", static_cast<unsigned>(host_uid));
  return WriteProcFile("/proc/self/uid_map", map);
}

}  // namespace zygote::sandbox
