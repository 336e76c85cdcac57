// forkable: undoing V8's MADV_DONTFORK so that a forked child still has a JS heap.
//
// Node builds V8 with V8_ENABLE_PRIVATE_MAPPING_FORK_OPTIMIZATION: every page V8 reserves
// is madvise(MADV_DONTFORK)ed, so fork(2) leaves those ranges unmapped in the child and
// its first touch of the heap is a SIGSEGV (measured: 5 of 5 children; see
// shared/notes/fork-safety.md). Before each fork we walk /proc/self/maps and mark every
// private anonymous mapping MADV_DOFORK again. It costs about 0.2-0.5 ms on a 90 MB
// zygote; madvise on a range that was never DONTFORK is a no-op.
#include "forkable.h"

#include <string.h>
#include <sys/mman.h>

#include "maps.h"

namespace zygote {

int MakeMemoryForkable() {
  int seen = 0;
  bool read = ForEachMapping([&](const Mapping& m) {
    if (m.perms[3] != 'p' || m.inode != 0) return;  // shared or file-backed: fork copies it anyway
    // The kernel's special mappings cannot be madvised and are always inherited.
    if (strncmp(m.path, "[vvar", 5) == 0 || strncmp(m.path, "[vdso", 5) == 0 || strncmp(m.path, "[vsyscall", 9) == 0) return;
    seen++;
    madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DOFORK);
  });
  return read ? seen : -1;
}

}  // namespace zygote
