// forkable: undoing V8's MADV_DONTFORK so that a forked child still has a JS heap.
#pragma once

namespace zygote {

// Marks every private anonymous mapping MADV_DOFORK. Returns the number of mappings seen.
// Runs in the zygote right before each fork, because V8 maps new pages as it grows.
int MakeMemoryForkable();

}  // namespace zygote
