// heap: giving the zygote's idle V8 heap back, as V8's memory reducer would in a running loop.
#pragma once

#include <napi.h>

namespace zygote {

void InitHeap(Napi::Env env, Napi::Object exports);

}  // namespace zygote
