// stream: listenStream({ kind: 'tcp', host, port } | { kind: 'unix', path }, backlog) -> fd.
//
// Node's own servers live on libuv's loop, which the zygote does not run (it blocks in poll(2)),
// and whose handles a forked child would inherit: this fd is a plain one, close-on-exec and
// non-blocking, watched by the serve loop and closed in every child by its fd sweep.
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace zygote {

namespace {

// Binds and listens; closes fd and throws on failure.
int BindListen(Napi::Env env, int fd, const sockaddr* addr, socklen_t len, int backlog) {
  if (bind(fd, addr, len) < 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "bind", e);
  }
  if (listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "listen", e);
  }
  return fd;
}

Napi::Value ListenStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "listenStream(address, backlog)");
  Napi::Object a = info[0].As<Napi::Object>();
  std::string kind = a.Get("kind").As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  if (kind == "unix") {
    std::string path = a.Get("path").As<Napi::String>().Utf8Value();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) throw Napi::TypeError::New(env, "listenStream: the socket path is empty or too long");
    memcpy(addr.sun_path, path.c_str(), path.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) ThrowErrno(env, "socket", errno);
    // Mode 0600, as the control socket: the operator grants other scrapers access by ACL or group.
    mode_t old = umask(0177);
    try {
      BindListen(env, fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, backlog);
    } catch (...) {
      umask(old);
      throw;
    }
    umask(old);
    return Napi::Number::New(env, fd);
  }
  if (kind != "tcp") throw Napi::TypeError::New(env, "listenStream: kind must be \"tcp\" or \"unix\"");
  std::string host = a.Get("host").As<Napi::String>().Utf8Value();
  int port = a.Get("port").As<Napi::Number>().Int32Value();
  if (port < 1 || port > 65535) throw Napi::TypeError::New(env, "listenStream: port must be 1 to 65535");
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  bool is4 = inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &v4.sin_addr) == 1;
  if (!is4 && inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) != 1) throw Napi::TypeError::New(env, "listenStream: host must be an IPv4 or IPv6 address (or localhost), got \"" + host + "\"");
  int fd = socket(is4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (is4) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(port));
    return Napi::Number::New(env, BindListen(env, fd, reinterpret_cast<sockaddr*>(&v4), sizeof v4, backlog));
  }
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(static_cast<uint16_t>(port));
  return Napi::Number::New(env, BindListen(env, fd, reinterpret_cast<sockaddr*>(&v6), sizeof v6, backlog));
}

}  // namespace

void InitStream(Napi::Env env, Napi::Object exports) {
  exports.Set("listenStream", Napi::Function::New(env, ListenStream, "listenStream"));
}

}  // namespace zygote
