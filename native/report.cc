// report: the fixed-size record a child writes to tell the zygote how its setup went.
#include "report.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

namespace zygote {

void WriteReport(int fd, bool ok, const char* step, int err) {
  SetupReport r = {};
  r.magic = kReportMagic;
  r.ok = ok ? 1 : 0;
  r.err = err;
  strncpy(r.step, step, sizeof r.step - 1);
  ssize_t n;
  do n = write(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
}

}  // namespace zygote
