// maps: this process's memory mappings, as /proc/self/maps lists them.
#pragma once

#include <stdint.h>

#include <functional>

namespace zygote {

// One line: "start-end perms offset dev inode   [path]".
struct Mapping {
  uintptr_t start;
  uintptr_t end;
  char perms[5];             // e.g. "rw-p"
  unsigned long long inode;  // 0 for memory (anonymous, [heap], [stack], the kernel's own)
  const char* path;          // "" when none; valid only during the call
};

// Calls visit for each mapping, in address order. False if /proc/self/maps cannot be read.
bool ForEachMapping(const std::function<void(const Mapping&)>& visit);

}  // namespace zygote
