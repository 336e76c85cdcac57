// channel: the client's end of a zygote control socket, driven by the Node event loop.
#pragma once

#include <napi.h>

namespace zygote {

void InitChannel(Napi::Env env, Napi::Object exports);

}  // namespace zygote
