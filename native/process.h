// process: small process and fd primitives the zygote's serve loop and the client use.
#pragma once

#include <napi.h>

namespace zygote {

void InitProcess(Napi::Env env, Napi::Object exports);

}  // namespace zygote
