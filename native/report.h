// report: the fixed-size record a child writes to tell the zygote how its setup went.
#pragma once

#include <stdint.h>

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

// The same record, written by a pid namespace's init (native/init.cc) when the step exits:
// err holds the raw wait status of the step, which the init cannot reproduce by dying of
// the same signal (the init of a pid namespace ignores its own signals).
constexpr uint32_t kExitMagic = 0x5a594758;  // "ZYGX"

// Child side; async-signal-safe.
void WriteReport(int fd, bool ok, const char* step, int err);
void WriteExitRecord(int fd, int wait_status);

}  // namespace zygote
