// childfds: what a forked child keeps of the zygote's file descriptors (nothing it did not make).
//
// Untrusted code must never hold the zygote's sockets, other children's pidfds and pipes,
// or any of Node's internal fds shared with the zygote (a shared epoll or eventfd would
// let a child steal or inject the zygote's wake-ups). But several of those fds belong to
// libuv loops whose threads are gone, and libuv may still write to them:
//  - uv_loop_fork() closes the main loop's epoll fd, async eventfd and signal pipe itself
//    and then opens new ones. If we closed those numbers first, the new fds could take them
//    and uv_loop_fork would close its own fresh fds. So the loop's fds are left to it.
//  - Threads lost in the fork (V8's platform delayed-task scheduler, the inspector's
//    helper) each own a loop whose async eventfd the main thread can still write to via
//    uv_async_send(). On a closed fd that write aborts the process; on a reused number it
//    would write 8 bytes into whatever the step opened there. Each inherited eventfd is
//    therefore replaced by a fresh, private eventfd at the same number.
//  - fds created in the child by fork handlers (libuv's pthread_atfork re-creates its
//    global signal lock pipe) are the child's own and stay.
// Everything else inherited is closed.
#include "childfds.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace zygote {
namespace {

constexpr int kMaxFds = 65536;
int g_child_fds[kMaxFds];  // child side scratch: no allocation after fork

struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Lists the open fds of this process into out (excluding the listing's own fd).
// Returns the count, or -errno.
int ListFds(int* out, int max) {
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -errno;
  int count = 0;
  alignas(linux_dirent64) char buf[8192];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      close(dir);
      return -e;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<linux_dirent64*>(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      int fd = atoi(d->d_name);
      if (fd == dir) continue;
      if (count == max) {
        close(dir);
        return -EMFILE;
      }
      out[count++] = fd;
    }
  }
  close(dir);
  return count;
}

bool IsEventFd(int fd) {
  char path[32], target[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0) return false;
  target[n] = '\0';
  return strcmp(target, "anon_inode:[eventfd]") == 0;
}

bool IsLoopFd(const uv_loop_t* loop, int fd) {
  // Fields of UV_LOOP_PRIVATE_FIELDS / UV_PLATFORM_LOOP_FIELDS (uv/unix.h, uv/linux.h).
  return fd == loop->backend_fd || fd == loop->async_io_watcher.fd || fd == loop->async_wfd ||
         fd == loop->signal_pipefd[0] || fd == loop->signal_pipefd[1] || fd == loop->inotify_fd ||
         fd == loop->emfile_fd;
}

const FdIdentity* FindInherited(const std::vector<FdIdentity>& snapshot, int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return nullptr;
  // The snapshot is sorted by fd number (SnapshotFds sorts it in the parent).
  auto it = std::lower_bound(snapshot.begin(), snapshot.end(), fd,
                             [](const FdIdentity& id, int value) { return id.fd < value; });
  if (it == snapshot.end() || it->fd != fd) return nullptr;
  return (it->dev == st.st_dev && it->ino == st.st_ino) ? &*it : nullptr;
}

}  // namespace

std::vector<FdIdentity> SnapshotFds() {
  std::vector<FdIdentity> out;
  static int fds[kMaxFds];
  int n = ListFds(fds, kMaxFds);
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (fstat(fds[i], &st) == 0) out.push_back({fds[i], st.st_dev, st.st_ino});
  }
  std::sort(out.begin(), out.end(), [](const FdIdentity& a, const FdIdentity& b) { return a.fd < b.fd; });
  return out;
}

int SweepInheritedFds(const std::vector<FdIdentity>& snapshot, const uv_loop_t* loop, int keep) {
  int n = ListFds(g_child_fds, kMaxFds);
  if (n < 0) return -n;
  for (int i = 0; i < n; i++) {
    int fd = g_child_fds[i];
    if (fd <= STDERR_FILENO || fd == keep || IsLoopFd(loop, fd)) continue;
    if (FindInherited(snapshot, fd) == nullptr) continue;  // made in this child: ours
    if (IsEventFd(fd)) {
      int fresh = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fresh < 0) return errno;
      if (dup3(fresh, fd, O_CLOEXEC) < 0) return errno;
      close(fresh);
      continue;
    }
    if (close(fd) < 0 && errno != EBADF) return errno;
  }
  return 0;
}

int RenewLoopReserveFd(uv_loop_t* loop) {
  // libuv keeps emfile_fd open (on /dev/null) to free one slot when accept() hits EMFILE.
  // The inherited one is the zygote's open file; give the child a private one instead.
  if (loop->emfile_fd < 0) return 0;
  int fresh = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fresh < 0) return errno;
  if (fresh != loop->emfile_fd) {
    if (dup3(fresh, loop->emfile_fd, O_CLOEXEC) < 0) return errno;
    close(fresh);
  }
  return 0;
}

}  // namespace zygote
