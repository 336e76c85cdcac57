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

std::vector<PageRange> PageRangesFromJs(Napi::Env env, Napi::Value value, const std::string& what) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, what + " must be an array of numbers");
  Napi::Array a = value.As<Napi::Array>();
  std::vector<PageRange> out;
  for (uint32_t i = 0; i + 1 < a.Length(); i += 2) {
    Napi::Value start = a.Get(i), length = a.Get(i + 1);
    if (!start.IsNumber() || !length.IsNumber()) throw Napi::TypeError::New(env, what + " must be numbers");
    out.push_back({static_cast<uintptr_t>(start.As<Napi::Number>().DoubleValue()), static_cast<size_t>(length.As<Napi::Number>().DoubleValue())});
  }
  return out;
}

}  // namespace zygote
