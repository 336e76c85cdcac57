// sources: a client's own mount sources as O_PATH fds, and the zygote's check of one.
#pragma once

#include <napi.h>

namespace zygote {

void InitSources(Napi::Env env, Napi::Object exports);

}  // namespace zygote
