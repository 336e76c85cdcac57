// prefault: see prefault.h. The ranges are learned by the zygote from a learner child that ran
// main's rehearsal (zygote/prefault.ts); on these machines a page fault costs 10-16 us, and a
// claimed step's ~1,200 faults were the largest part of its first byte.
#include "prefault.h"

#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace zygote {

void PrefaultRanges(const std::vector<PageRange>& ranges) {
  for (const PageRange& r : ranges) {
    // EINVAL/ENOMEM (unmapped, or not writable now), EFAULT: left to fault on first use.
    madvise(reinterpret_cast<void*>(r.start), r.length, MADV_POPULATE_WRITE);
  }
}

}  // namespace zygote
