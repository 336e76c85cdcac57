// namespaces: the child's own network, IPC, UTS, cgroup and mount namespaces (unshared after
// fork, as root).
//
// A pid namespace cannot be made this way: after unshare(CLONE_NEWPID) the kernel refuses the
// caller new threads, and libuv aborts (shared/notes/fork-safety.md, failure 6); native/fork.cc
// makes it at fork time. The root is sandbox/root.cc, the user namespace sandbox/userns.cc.
#include "namespaces.h"

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <linux/mount.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zygote::sandbox {

int Unshare(int flags) { return unshare(flags) < 0 ? errno : 0; }

int LoopbackUp() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct ifreq ifr = {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int err = 0;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
    err = errno;
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) err = errno;
  }
  close(fd);
  return err;
}

int PrivateMounts() { return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ? errno : 0; }

int SetHostname(const char* name) { return sethostname(name, strlen(name)) < 0 ? errno : 0; }

}  // namespace zygote::sandbox
