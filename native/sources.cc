// sources: a client opening its own mount sources, with its own credentials, to pass them to
// the zygote as fds; and the zygote's check that what it got is such an fd.
//
// The fd is O_PATH: it proves the client could reach the path (search permission on every
// directory of it, in the client's own mount namespace), and closing it never calls into the
// filesystem (an open FUSE file's close waits for its server). Whether the client may read or
// write the source itself is checked here against the client's effective ids (faccessat2 on the
// fd: no path is resolved twice), for a clear error before anything is sent; the child's
// idmapped mount then holds the step to the client's own permissions (sandbox/root.cc).
#include "sources.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "sandbox/mountsrc.h"

namespace zygote {
namespace {

[[noreturn]] void ThrowSource(Napi::Env env, const char* syscall, const std::string& path, int err, const std::string& reason) {
  Napi::Error error = ErrnoError(env, syscall, err);
  error.Set("path", Napi::String::New(env, path));
  error.Set("reason", Napi::String::New(env, reason));
  error.Set("message", Napi::String::New(env, path + " " + reason + ": " + ErrnoName(err) + " (" + strerror(err) + ")"));
  throw error;
}

// openMountSource(path, writable) -> { fd, directory }. Throws an Error with .code (the errno's
// name), .path and .reason when this process may not mount it.
Napi::Value OpenMountSource(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "openMountSource: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "openMountSource: path must be absolute, without NUL");
  bool writable = info[1].ToBoolean();
  int fd;
  do fd = open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowSource(env, "open", path, errno, "cannot be opened by this process");
  const char* fs = nullptr;
  int err = 0;
  const char* why = nullptr;
  switch (sandbox::CheckMountSource(fd, &fs, &err)) {
    case sandbox::SourceProblem::kNone:
      break;
    case sandbox::SourceProblem::kUnexaminable:
      why = "cannot be examined (fstat, fstatfs)";
      break;
    case sandbox::SourceProblem::kSymlink:
      why = "is a symlink (name its target: the last component is never followed)";
      break;
    case sandbox::SourceProblem::kNotDirOrFile:
      why = "is not a directory or a regular file";
      break;
    case sandbox::SourceProblem::kPseudoFs:
      why = "is on a pseudo filesystem";
      break;
  }
  if (why != nullptr) {
    close(fd);
    ThrowSource(env, "mount source", path, err, fs ? std::string(why) + " (" + fs + ")" : why);
  }
  bool dir = sandbox::IsDirectory(fd);
  int mode = R_OK | (dir ? X_OK : 0) | (writable ? W_OK : 0);
  if (syscall(SYS_faccessat2, fd, "", mode, AT_EMPTY_PATH | AT_EACCESS) < 0) {
    int e = errno;
    close(fd);
    ThrowSource(env, "faccessat2", path, e, writable ? "is not readable and writable by this process" : "is not readable by this process");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("directory", dir);
  return out;
}

// isPathFd(fd) -> whether fd was opened with O_PATH (fcntl F_GETFL: no filesystem call).
Napi::Value IsPathFd(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "isPathFd: fd must be a number");
  int flags = fcntl(info[0].As<Napi::Number>().Int32Value(), F_GETFL);
  return Napi::Boolean::New(info.Env(), flags >= 0 && (flags & O_PATH) != 0);
}

}  // namespace

void InitSources(Napi::Env env, Napi::Object exports) {
  exports.Set("openMountSource", Napi::Function::New(env, OpenMountSource, "openMountSource"));
  exports.Set("isPathFd", Napi::Function::New(env, IsPathFd, "isPathFd"));
}

}  // namespace zygote
