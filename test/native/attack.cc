// Test-only addon: raw syscalls that JS cannot make, for the sandbox attack tests.
#include <napi.h>

Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(zygote_attack_helper, Init)
