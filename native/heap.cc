// heap: giving the zygote's idle V8 heap back, as V8's memory reducer would in a running loop.
//
// V8 shrinks a heap that has gone quiet with its memory reducer: a mark-compact posts a delayed
// foreground task that, seconds later, collects with "reduce memory footprint" (shrinking the
// young generation back to its initial size and unmapping pooled pages). The task runs from
// Node's event loop, which the zygote never returns to: it serves from its own poll(2) loop. So
// nothing ever shrinks its heap. Measured: under a steady stream of spawns the young generation
// grew 4 MB -> 32 MB resident over 3,000 spawns (V8's cap), and old space kept 3 MB of
// fragmentation, while live objects stayed at ~7 MB; the zygote's RSS climbed 61 -> 94 MB, and
// a fork copies the page tables of all of it.
//
// reduceHeap() is that collection, run when the zygote's loop decides it is idle.
#include "heap.h"

// node.h defines NAPI_VERSION itself; the build defines it for node-addon-api.
#undef NAPI_VERSION
#include <node.h>
#include <v8.h>

namespace zygote {
namespace {

// reduceHeap(): full collections until nothing more is freed, in the reduce-memory mode: the
// young generation shrinks to its initial size, free pages are unmapped.
Napi::Value ReduceHeap(const Napi::CallbackInfo& info) {
  v8::Isolate::GetCurrent()->LowMemoryNotification();
  return info.Env().Undefined();
}

}  // namespace

void InitHeap(Napi::Env env, Napi::Object exports) {
  exports.Set("reduceHeap", Napi::Function::New(env, ReduceHeap, "reduceHeap"));
}

}  // namespace zygote
