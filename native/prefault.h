// prefault: copying, in a pool child before its claim, the pages a claimed child would write
// first, so that its step does not pay a copy-on-write fault for each of them.
#pragma once

#include <napi.h>
#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

namespace zygote {

struct PageRange {
  uintptr_t start;
  size_t length;
};

// madvise(MADV_POPULATE_WRITE) over each range: each private page is copied (or, where never
// mapped, allocated) now. Best effort: a range that no longer matches a writable mapping (the
// zygote's heap moved since the ranges were learned) is skipped; nothing here can fail a child.
void PrefaultRanges(const std::vector<PageRange>& ranges);

// [start, length, start, length, ...] from JS (learned pages: addresses below 2^47 are exact
// as doubles). A TypeError naming `what` ("forkChild: prefault") if it is not numbers.
std::vector<PageRange> PageRangesFromJs(Napi::Env env, Napi::Value value, const std::string& what);

}  // namespace zygote
