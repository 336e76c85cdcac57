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

// Child side; async-signal-safe.
void WriteReport(int fd, bool ok, const char* step, int err);

}  // namespace zygote
