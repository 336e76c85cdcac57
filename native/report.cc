// report: the fixed-size record a child writes to tell the zygote how its setup went.
#include "report.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

namespace zygote {

namespace {

void Write(int fd, uint32_t magic, bool ok, const char* step, int err) {
  SetupReport r = {};
  r.magic = magic;
  r.ok = ok ? 1 : 0;
  r.err = err;
  strncpy(r.step, step, sizeof r.step - 1);
  ssize_t n;
  do n = write(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
}

}  // namespace

void WriteReport(int fd, bool ok, const char* step, int err) { Write(fd, kReportMagic, ok, step, err); }

void WriteExitRecord(int fd, int wait_status, const struct rusage& usage, uint32_t flags) {
  ExitRecord r = {};
  r.magic = kExitMagic;
  r.wait_status = wait_status;
  r.flags = flags;
  r.max_rss_kb = usage.ru_maxrss;
  r.user_us = int64_t{usage.ru_utime.tv_sec} * 1000000 + usage.ru_utime.tv_usec;
  r.system_us = int64_t{usage.ru_stime.tv_sec} * 1000000 + usage.ru_stime.tv_usec;
  ssize_t n;
  do n = write(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
}

}  // namespace zygote
