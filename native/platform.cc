// platform: keeping Node's task platform from waiting on worker threads a fork left behind.
//
// Every mark-compact GC in V8 11 (MarkCompactCollector::ClearNonLiveReferences) posts a job
// whose extra worker task goes to Node's platform thread pool, even with --single-threaded;
// the main thread does the job's work itself, so the worker task has nothing left to do.
// In a forked child that pool has no thread, so the task stays queued for ever, and
// NodePlatform::DrainTasks, which blocks until the worker queue is empty, never returns.
// Node calls DrainTasks whenever an event loop runs dry: at the end of every Worker thread
// (worker.terminate() or a Worker that finishes) and at a natural exit. Measured: a child
// that GCs and then ends a Worker hung 1-3 times in 10 (gdb: Worker::Run ->
// SpinEventLoopInternal -> NodePlatform::DrainTasks -> uv_cond_wait).
//
// The zygote therefore replaces DrainTasks in NodePlatform's vtable, once, before it forks:
// the replacement runs the isolate's foreground tasks until none are left, as the original
// does, but does not wait for the worker queue. In the zygote itself nothing calls DrainTasks
// while it serves (its loop is parked), and its own pool thread still runs every task.
#include "platform.h"

#include <dlfcn.h>
// node.h defines NAPI_VERSION itself; the build defines it for node-addon-api.
#undef NAPI_VERSION
#include <node.h>
#include <sys/mman.h>
#include <unistd.h>
#include <v8.h>

#include <cstdint>

namespace zygote {
namespace {

// Itanium C++ ABI name of node::NodePlatform::DrainTasks(v8::Isolate*).
constexpr const char* kDrainTasksSymbol = "_ZN4node12NodePlatform10DrainTasksEPN2v87IsolateE";
// How many vtable slots to search: MultiIsolatePlatform has about 30 virtual functions.
constexpr int kMaxSlots = 64;

bool g_patched = false;

// Called as a member function: `self` is the platform (this), as the ABI passes it.
void DrainForegroundTasksOnly(node::MultiIsolatePlatform* self, v8::Isolate* isolate) {
  while (self->FlushForegroundTasks(isolate)) {
  }
}

// patchPlatformDrain() -> { slot } ; throws if this Node's platform does not look as expected.
Napi::Value PatchPlatformDrain(const Napi::CallbackInfo& info) {
  Napi::Env napi_env = info.Env();
  if (g_patched) return Napi::Boolean::New(napi_env, true);
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  node::Environment* env = node::GetCurrentEnvironment(isolate->GetCurrentContext());
  node::MultiIsolatePlatform* platform = env == nullptr ? nullptr : node::GetMultiIsolatePlatform(env);
  if (platform == nullptr) throw Napi::Error::New(napi_env, "patchPlatformDrain: no Node platform for this isolate");
  void* original = dlsym(RTLD_DEFAULT, kDrainTasksSymbol);
  if (original == nullptr) {
    throw Napi::Error::New(napi_env, std::string("patchPlatformDrain: node does not export ") + kDrainTasksSymbol +
                                         " (not Node's own NodePlatform?); Worker threads in children could hang");
  }
  // Itanium ABI: a polymorphic object starts with its vtable pointer.
  void** vtable = *reinterpret_cast<void***>(platform);
  int slot = -1;
  for (int i = 0; i < kMaxSlots; i++) {
    if (vtable[i] == original) {
      slot = i;
      break;
    }
  }
  if (slot < 0) throw Napi::Error::New(napi_env, "patchPlatformDrain: DrainTasks not found in NodePlatform's vtable");
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t start = reinterpret_cast<uintptr_t>(&vtable[slot]) & ~static_cast<uintptr_t>(page - 1);
  // Two pages: the slot may straddle a page boundary.
  if (mprotect(reinterpret_cast<void*>(start), static_cast<size_t>(page) * 2, PROT_READ | PROT_WRITE) < 0) {
    throw Napi::Error::New(napi_env, std::string("patchPlatformDrain: mprotect failed: ") + strerror(errno));
  }
  vtable[slot] = reinterpret_cast<void*>(&DrainForegroundTasksOnly);
  mprotect(reinterpret_cast<void*>(start), static_cast<size_t>(page) * 2, PROT_READ);
  g_patched = true;
  Napi::Object out = Napi::Object::New(napi_env);
  out.Set("slot", slot);
  return out;
}

}  // namespace

void InitPlatform(Napi::Env env, Napi::Object exports) {
  exports.Set("patchPlatformDrain", Napi::Function::New(env, PatchPlatformDrain, "patchPlatformDrain"));
}

}  // namespace zygote
