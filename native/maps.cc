// maps: see maps.h.
#include "maps.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace zygote {
namespace {

void ParseLine(const std::string& line, const std::function<void(const Mapping&)>& visit) {
  Mapping m{};
  char* end = nullptr;
  m.start = strtoull(line.c_str(), &end, 16);
  if (end == nullptr || *end != '-') return;
  m.end = strtoull(end + 1, &end, 16);
  unsigned long long offset = 0;
  char dev[16] = {0};
  int path_pos = 0;
  if (sscanf(end, " %4s %llx %15s %llu %n", m.perms, &offset, dev, &m.inode, &path_pos) < 4) return;
  m.path = end + path_pos;
  visit(m);
}

}  // namespace

bool ForEachMapping(const std::function<void(const Mapping&)>& visit) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string pending;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t pos = 0, nl;
    while ((nl = pending.find('\n', pos)) != std::string::npos) {
      ParseLine(pending.substr(pos, nl - pos), visit);
      pos = nl + 1;
    }
    pending.erase(0, pos);
  }
  close(fd);
  return true;
}

}  // namespace zygote
