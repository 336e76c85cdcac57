// stream: listening stream sockets (TCP or Unix) for plain-text services the zygote serves from
// its poll loop, such as its metrics.
#pragma once

#include <napi.h>

namespace zygote {

// Adds listenStream to the addon's exports.
void InitStream(Napi::Env env, Napi::Object exports);

}  // namespace zygote
