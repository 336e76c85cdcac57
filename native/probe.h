// probe: read-only checks of what this host's kernel offers each sandbox layer (zygote doctor).
#pragma once

#include <napi.h>

namespace zygote {

// Adds the probe functions (probeSeccompVersion, probeLandlockAbi, probeSyscallEntry,
// probeMountAttr, probeSeccompSpeculation, probeFork) to the addon's exports.
void InitProbe(Napi::Env env, Napi::Object exports);

}  // namespace zygote
