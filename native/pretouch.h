// pretouch: reading, in a pool child before its claim, the pages a claimed child would read
// first, so that its step does not pay the first-access trap for each of them.
//
// fork(2) gives the child copies of the zygote's page-table entries with the accessed bit
// cleared (pte_mkold). On these VMs the hypervisor traps the first access through such an
// entry to set the bit: measured, 6 us per page on a read (23 us on a copy-on-write write),
// invisible to the guest's fault counters. Entries of file mappings that were never written
// are not copied at all: each first access is a minor fault. A claimed step first-touches
// thousands of pages.
#pragma once

#include <napi.h>
#include <stddef.h>

#include <vector>

#include "prefault.h"

namespace zygote {

// Reads one byte of each resident page of ranges that lies in a readable private mapping of
// memory or a regular file in this process now (anything else, such as a guard page, a device
// or a range the heap has moved away from, is skipped: reading it could fault). A file page
// not yet mapped is faulted in. Best effort; cannot fail a child.
void PretouchRanges(const std::vector<PageRange>& ranges);

void InitPretouch(Napi::Env env, Napi::Object exports);

}  // namespace zygote
