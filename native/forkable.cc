// forkable: undoing V8's MADV_DONTFORK so that a forked child still has a JS heap.
//
// Node builds V8 with V8_ENABLE_PRIVATE_MAPPING_FORK_OPTIMIZATION: every page V8 reserves
// is madvise(MADV_DONTFORK)ed, so fork(2) leaves those ranges unmapped in the child and
// its first touch of the heap is a SIGSEGV (measured: 5 of 5 children; see
// shared/notes/fork-safety.md). Before each fork we walk /proc/self/maps and mark every
// private anonymous mapping MADV_DOFORK again. It costs about 0.2-0.5 ms on a 90 MB
// zygote; madvise on a range that was never DONTFORK is a no-op.
#include "forkable.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

namespace zygote {

namespace {

// One maps line: "start-end perms offset dev inode   [path]".
void HandleMapsLine(const char* line, size_t len, int* seen) {
  std::string s(line, len);
  char* end = nullptr;
  uintptr_t start = strtoull(s.c_str(), &end, 16);
  if (end == nullptr || *end != '-') return;
  uintptr_t stop = strtoull(end + 1, &end, 16);
  char perms[5] = {0};
  unsigned long long offset = 0, inode = 0;
  char dev[16] = {0};
  int path_pos = 0;
  if (sscanf(end, " %4s %llx %15s %llu %n", perms, &offset, dev, &inode, &path_pos) < 4) return;
  if (perms[3] != 'p' || inode != 0) return;  // shared or file-backed: fork copies it anyway
  const char* path = end + path_pos;
  // The kernel's special mappings cannot be madvised and are always inherited.
  if (strncmp(path, "[vvar", 5) == 0 || strncmp(path, "[vdso", 5) == 0 || strncmp(path, "[vsyscall", 9) == 0) return;
  (*seen)++;
  madvise(reinterpret_cast<void*>(start), stop - start, MADV_DOFORK);
}

}  // namespace

int MakeMemoryForkable() {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int seen = 0;
  std::string pending;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t pos = 0, nl;
    while ((nl = pending.find('\n', pos)) != std::string::npos) {
      HandleMapsLine(pending.data() + pos, nl - pos, &seen);
      pos = nl + 1;
    }
    pending.erase(0, pos);
  }
  close(fd);
  return seen;
}

}  // namespace zygote
