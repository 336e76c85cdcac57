// probe: read-only checks of what this host's kernel offers each sandbox layer (zygote doctor).
#include "probe.h"

namespace zygote {

void InitProbe(Napi::Env env, Napi::Object exports) {}

}  // namespace zygote
