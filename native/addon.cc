// addon: the native module's exports; each concern lives in its own file.
#include <napi.h>

#include "channel.h"
#include "fdpass.h"
#include "files.h"
#include "fork.h"
#include "heap.h"
#include "platform.h"
#include "pretouch.h"
#include "probe.h"
#include "process.h"
#include "sandbox/idmap.h"
#include "sandbox/network.h"
#include "sandbox/outputfs.h"
#include "sandbox/seccomp.h"
#include "signals.h"
#include "sources.h"
#include "stream.h"

namespace zygote {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitFdPass(env, exports);
  InitFiles(env, exports);
  InitChannel(env, exports);
  InitFork(env, exports);
  InitProcess(env, exports);
  InitSignals(env, exports);
  InitProbe(env, exports);
  InitPlatform(env, exports);
  InitHeap(env, exports);
  InitPretouch(env, exports);
  InitSources(env, exports);
  InitStream(env, exports);
  sandbox::InitIdmap(env, exports);
  sandbox::InitSeccomp(env, exports);
  sandbox::InitNetwork(env, exports);
  sandbox::InitOutputFs(env, exports);
  return exports;
}

NODE_API_MODULE(zygote_native, Init)

}  // namespace zygote
