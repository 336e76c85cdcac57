// signals: the zygote's termination signals, turned into bytes on a pipe it can poll.
#pragma once

#include <napi.h>

namespace zygote {

// Child side, after fork: puts back the dispositions the zygote replaced (async-signal-safe).
void RestoreZygoteSignals();

void InitSignals(Napi::Env env, Napi::Object exports);

}  // namespace zygote
