// platform: keeping Node's task platform from waiting on worker threads a fork left behind.
#pragma once

#include <napi.h>

namespace zygote {

void InitPlatform(Napi::Env env, Napi::Object exports);

}  // namespace zygote
