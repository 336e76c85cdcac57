// report: the fixed-size record a child writes to tell the zygote how its setup went.
#pragma once

#include <stdint.h>
#include <sys/resource.h>

namespace zygote {

// Exit status of a child whose setup failed (after it wrote its report).
constexpr int kSetupFailedExitCode = 127;
constexpr uint32_t kReportMagic = 0x5a594752;  // "ZYGR"

// Fits in PIPE_BUF, so each write is atomic.
struct SetupReport {
  uint32_t magic;
  uint32_t ok;
  int32_t err;
  char step[52];
};
static_assert(sizeof(SetupReport) == 64, "report layout is part of the zygote's own ABI");

// Written by a pid namespace's init (native/init.cc) when the step exits: the step's raw wait
// status, which the init cannot reproduce by dying of the same signal (the init of a pid
// namespace ignores its own signals), and the step's own rusage, which the zygote's wait4 of
// the init cannot see apart from the init's.
constexpr uint32_t kExitMagic = 0x5a594758;  // "ZYGX"

// ExitRecord.flags: the step was the last process of its namespace (every other one had been
// reaped when it was), so nothing of the sandbox runs any more but the init, about to exit.
constexpr uint32_t kExitAlone = 1;

struct ExitRecord {
  uint32_t magic;
  uint32_t ok;  // always 0: read where a SetupReport could be
  int32_t wait_status;
  uint32_t flags;  // kExitAlone
  int64_t max_rss_kb;
  int64_t user_us;
  int64_t system_us;
  char pad[24];
};
static_assert(sizeof(ExitRecord) == sizeof(SetupReport), "both records are read from one pipe, one size");

// Child side; async-signal-safe.
void WriteReport(int fd, bool ok, const char* step, int err);
void WriteExitRecord(int fd, int wait_status, const struct rusage& usage, uint32_t flags);

}  // namespace zygote
