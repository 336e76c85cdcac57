// fork: turning the warm zygote into a child that is ready to run JS.
#pragma once

#include <napi.h>

namespace zygote {

void InitFork(Napi::Env env, Napi::Object exports);

}  // namespace zygote
