// files: opening files a sandboxed step wrote without following its links, and mapping files
// read-only without copying them.
#pragma once

#include <napi.h>

namespace zygote {

// Adds openBeneath, openDirectory, fstatFile, mmapFile and unmapFile to the addon's exports.
void InitFiles(Napi::Env env, Napi::Object exports);

}  // namespace zygote
