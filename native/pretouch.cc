// pretouch: see pretouch.h. The ranges are learned by a learner (zygote/prefault.ts): after
// its rehearsal it times one read of each page it has an entry for in its readable private
// mappings, memory and regular files (accessedPages below). A page it accessed since its fork reads in well under a microsecond;
// one it never touched takes the trap. Where first accesses cost nothing (bare metal), every
// resident page reads fast, and pool children read them all: cheap there, and still right.
#include "pretouch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "maps.h"

namespace zygote {
namespace {

constexpr size_t kPage = 4096;
// A read slower than this took the first-access trap (6 us measured here; an accessed page
// reads in tens of nanoseconds, a cache and TLB miss in a few hundred).
constexpr long kAccessedBelowNs = 1000;

struct Vma {
  uintptr_t start;
  uintptr_t end;
};

// The readable private mappings of this process that are memory or regular files: the JS
// heap, malloc's heap, the stack, V8's code space, node's and the libraries' text and data.
// Not the kernel's special mappings ([vvar], [vvar_vclock], [vdso]: reading some faults), not
// devices (a read may do something), not shared mappings, not PROT_NONE reservations and
// guard pages. A file page past the file's end would raise SIGBUS: it is never resident, and
// only resident pages are read.
std::vector<Vma> ReadablePrivateMappings() {
  std::vector<Vma> out;
  ForEachMapping([&](const Mapping& m) {
    if (m.perms[0] != 'r' || m.perms[3] != 'p') return;
    bool memory = m.inode == 0 && (m.path[0] == '\0' || strcmp(m.path, "[heap]") == 0 || strcmp(m.path, "[stack]") == 0);
    bool file = m.inode != 0 && m.path[0] == '/' && strncmp(m.path, "/dev/", 5) != 0;
    if (memory || file) out.push_back({m.start, m.end});
  });
  return out;
}

long NowNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Calls visit(page) for each resident page of [start, end) (mincore: an anonymous page never
// touched stays unmapped, and reading it would map the zero page for nothing; a file's page
// is resident when it is in the page cache, mapped here or not).
template <typename F>
void EachResidentPage(uintptr_t start, uintptr_t end, std::vector<unsigned char>& vec, F visit) {
  size_t pages = (end - start) / kPage;
  vec.resize(pages);
  if (mincore(reinterpret_cast<void*>(start), end - start, vec.data()) != 0) return;
  for (size_t i = 0; i < pages; i++) {
    if (vec[i] & 1) visit(start + i * kPage);
  }
}

// Calls visit(page) for each page of [start, end) that this process has a page-table entry
// for (/proc/self/pagemap bit 63), read before anything here touches them, 64 Ki entries at a
// time; stops once visit returns false.
template <typename F>
void EachMappedPage(int pagemap, uintptr_t start, uintptr_t end, std::vector<uint64_t>& entries, F visit) {
  constexpr size_t kChunk = 65536;
  for (uintptr_t at = start; at < end; at += kChunk * kPage) {
    size_t pages = std::min(kChunk, (end - at) / kPage);
    entries.resize(pages);
    ssize_t n = pread(pagemap, entries.data(), pages * sizeof(uint64_t), static_cast<off_t>(at / kPage * sizeof(uint64_t)));
    if (n <= 0) return;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uint64_t); i++) {
      if ((entries[i] >> 63) && !visit(at + i * kPage)) return;
    }
  }
}

// accessedPages(maxPages): [start, length, ...] merged ranges of the pages of this process's
// readable private mappings that it accessed since its fork, lowest addresses first, at most
// maxPages pages and 8,192 ranges. A page has an entry (fork copies those of memory; a file's,
// only where the mapping was ever written) and reads fast now. An entry's first read takes
// its trap: a learner calls this once, as its last act. (A file page without an entry is left
// alone: reading it would map its neighbours too, and they would then read fast.)
Napi::Value AccessedPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "accessedPages: maxPages must be a number");
  size_t max_pages = static_cast<size_t>(std::max(0.0, info[0].As<Napi::Number>().DoubleValue()));
  constexpr size_t kMaxRanges = 8192;
  std::vector<PageRange> ranges;
  size_t pages = 0;
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) throw Napi::Error::New(env, std::string("accessedPages: open /proc/self/pagemap: ") + strerror(errno));
  std::vector<uint64_t> entries;
  for (const Vma& m : ReadablePrivateMappings()) {
    if (pages >= max_pages || ranges.size() >= kMaxRanges) break;
    EachMappedPage(pagemap, m.start, m.end, entries, [&](uintptr_t page) {
      long t0 = NowNs();
      (void)*reinterpret_cast<volatile const char*>(page);
      if (NowNs() - t0 >= kAccessedBelowNs) return true;
      if (!ranges.empty() && ranges.back().start + ranges.back().length == page) {
        ranges.back().length += kPage;
      } else if (ranges.size() < kMaxRanges) {
        ranges.push_back({page, kPage});
      } else {
        return false;
      }
      return ++pages < max_pages;
    });
  }
  close(pagemap);
  Napi::Array out = Napi::Array::New(env, ranges.size() * 2);
  for (size_t i = 0; i < ranges.size(); i++) {
    out.Set(static_cast<uint32_t>(2 * i), Napi::Number::New(env, static_cast<double>(ranges[i].start)));
    out.Set(static_cast<uint32_t>(2 * i + 1), Napi::Number::New(env, static_cast<double>(ranges[i].length)));
  }
  return out;
}

// pretouchRanges([start, length, ...]): PretouchRanges in this process, for tests.
Napi::Value PretouchRangesJs(const Napi::CallbackInfo& info) {
  PretouchRanges(PageRangesFromJs(info.Env(), info[0], "pretouchRanges: ranges"));
  return info.Env().Undefined();
}

}  // namespace

void PretouchRanges(const std::vector<PageRange>& ranges) {
  if (ranges.empty()) return;
  std::vector<Vma> maps = ReadablePrivateMappings();
  std::vector<unsigned char> vec;
  for (const PageRange& r : ranges) {
    uintptr_t start = r.start & ~(kPage - 1);
    uintptr_t end = r.start + r.length;
    // maps is in address order: start at the first mapping that ends after the range starts.
    auto first = std::upper_bound(maps.begin(), maps.end(), start, [](uintptr_t at, const Vma& m) { return at < m.end; });
    for (auto it = first; it != maps.end() && it->start < end; ++it) {
      const Vma& m = *it;
      uintptr_t from = std::max(start, m.start), to = std::min(end, m.end);
      if (from >= to) continue;
      EachResidentPage(from, (to + kPage - 1) & ~(kPage - 1), vec, [](uintptr_t page) { (void)*reinterpret_cast<volatile const char*>(page); });
    }
  }
}

void InitPretouch(Napi::Env env, Napi::Object exports) {
  exports.Set("accessedPages", Napi::Function::New(env, AccessedPages, "accessedPages"));
  exports.Set("pretouchRanges", Napi::Function::New(env, PretouchRangesJs, "pretouchRanges"));
}

}  // namespace zygote
