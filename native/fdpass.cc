// fdpass: AF_UNIX SOCK_SEQPACKET sockets and packets that carry file descriptors (SCM_RIGHTS).
//
// SEQPACKET keeps message boundaries, so one packet is one protocol frame and the fds that
// ride on it can never be attributed to a neighbouring frame (with SOCK_STREAM the kernel
// may merge or split data around the control message). See unix(7) and cmsg(3).
#include "fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "errors.h"

namespace zygote {

bool SendPacket(int fd, const char* data, size_t len, const int* fds, int nfds, int* err) {
  *err = 0;
  struct iovec iov = {const_cast<char*>(data), len};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket)];
  if (nfds > 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    // MSG_NOSIGNAL: a vanished peer is an EPIPE to handle, not a SIGPIPE that kills us.
    n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return true;
  if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
  return false;
}

RecvStatus RecvPacket(int fd, size_t max_bytes, Packet* out, int* err) {
  *err = 0;
  // One scratch buffer per thread, grown to the largest limit asked for: a packet is copied
  // out at its real size instead of allocating (and zeroing) max_bytes every time.
  static thread_local std::vector<char> scratch;
  if (scratch.size() < max_bytes + 1) scratch.resize(max_bytes + 1);
  out->fds.clear();
  out->truncated = false;
  out->fds_truncated = false;
  // One byte more than allowed, so an oversized packet is seen as such (MSG_TRUNC also says so).
  struct iovec iov = {scratch.data(), max_bytes + 1};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    // MSG_CMSG_CLOEXEC: received fds must never leak into anything this process execs.
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return RecvStatus::kWouldBlock;
    *err = errno;
    return RecvStatus::kEof;
  }
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* got = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; i++) out->fds.push_back(got[i]);
    }
  }
  // A zero-length read on SEQPACKET is the peer's orderly shutdown (we never send empty
  // packets). Any fds that came with it are closed so none leak.
  if (n == 0 && out->fds.empty()) return RecvStatus::kEof;
  out->truncated = (msg.msg_flags & MSG_TRUNC) != 0 || static_cast<size_t>(n) > max_bytes;
  out->fds_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  size_t keep = std::min(static_cast<size_t>(n), max_bytes);
  out->data.assign(scratch.data(), scratch.data() + keep);
  return RecvStatus::kPacket;
}

namespace {

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "expected a file descriptor number");
  return info[i].As<Napi::Number>().Int32Value();
}

sockaddr_un UnixAddress(Napi::Env env, const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw Napi::Error::New(env, "socket path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) +
                                    " bytes long, got " + std::to_string(path.size()));
  }
  memcpy(addr.sun_path, path.c_str(), path.size());
  return addr;
}

// socketpair() -> [fd, fd]: a connected SEQPACKET pair, both close-on-exec and non-blocking.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
    ThrowErrno(info.Env(), "socketpair", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, sv[0]);
  out.Set(1u, sv[1]);
  return out;
}

// listenUnix(path, backlog) -> fd. The socket file is created with mode 0600 (umask 0177
// around bind), so there is no window in which another user could connect. It is bound under a
// temporary name beside path and renamed into place only once it listens (without replacing
// anything: a file already at path is EADDRINUSE, as bind would say), so a client that sees the
// file never gets ECONNREFUSED from a server that is still starting.
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  UnixAddress(env, path);  // checks path's length
  size_t slash = path.rfind('/');
  std::string temp = path.substr(0, slash == std::string::npos ? 0 : slash + 1) + ".zygote-" + std::to_string(getpid()) + ".sock";
  // A long path leaves no room for the temporary name: bind it directly.
  bool direct = temp.size() >= sizeof(sockaddr_un::sun_path);
  sockaddr_un addr = UnixAddress(env, direct ? path : temp);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  if (!direct) unlink(temp.c_str());  // our own pid's leftover, if any
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_err = errno;
  umask(old);
  if (rc < 0) {
    close(fd);
    ThrowErrno(env, "bind", bind_err);
  }
  if (listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    if (!direct) unlink(temp.c_str());
    ThrowErrno(env, "listen", e);
  }
  if (!direct && syscall(SYS_renameat2, AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) < 0) {
    int e = errno;
    close(fd);
    unlink(temp.c_str());
    ThrowErrno(env, "bind", e == EEXIST ? EADDRINUSE : e);
  }
  return Napi::Number::New(env, fd);
}

// connectUnix(path) -> fd, non-blocking and close-on-exec.
Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr = UnixAddress(env, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  // A blocking connect on AF_UNIX returns at once unless the backlog is full; it is made
  // non-blocking only afterwards so a full backlog is an error here, not a silent EAGAIN.
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "connect", e);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return Napi::Number::New(env, fd);
}

// accept(fd) -> fd | null (nothing pending).
Napi::Value Accept(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  int c;
  do c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  while (c < 0 && errno == EINTR);
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return info.Env().Null();
    ThrowErrno(info.Env(), "accept4", errno);
  }
  return Napi::Number::New(info.Env(), c);
}

// peerCred(fd) -> { pid, uid, gid } of the process that connected (SO_PEERCRED).
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  struct ucred cred = {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    ThrowErrno(info.Env(), "getsockopt(SO_PEERCRED)", errno);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("pid", cred.pid);
  out.Set("uid", cred.uid);
  out.Set("gid", cred.gid);
  return out;
}

// sendPacket(fd, data: Buffer, fds: number[]) -> true, or false when the socket is full.
Napi::Value SendPacketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  int fds[kMaxFdsPerPacket];
  int nfds = 0;
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array arr = info[2].As<Napi::Array>();
    if (arr.Length() > static_cast<uint32_t>(kMaxFdsPerPacket))
      throw Napi::RangeError::New(env, "too many fds for one packet");
    for (uint32_t i = 0; i < arr.Length(); i++) fds[nfds++] = arr.Get(i).As<Napi::Number>().Int32Value();
  }
  int err;
  bool sent = SendPacket(fd, data.Data(), data.Length(), fds, nfds, &err);
  if (!sent && err != 0) ThrowErrno(env, "sendmsg", err);
  return Napi::Boolean::New(env, sent);
}

// recvPacket(fd, maxBytes) -> { data, fds, truncated, fdsTruncated } | null (nothing pending) | "eof".
// A read error other than EAGAIN (ECONNRESET) is reported as end of stream too: the peer
// is gone either way, and the caller's cleanup is the same.
Napi::Value RecvPacketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  size_t max = info[1].As<Napi::Number>().Uint32Value();
  Packet p;
  int err;
  switch (RecvPacket(fd, max, &p, &err)) {
    case RecvStatus::kWouldBlock:
      return env.Null();
    case RecvStatus::kEof:
      return Napi::String::New(env, "eof");
    case RecvStatus::kPacket:
      break;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<char>::Copy(env, p.data.data(), p.data.size()));
  Napi::Array fds = Napi::Array::New(env, p.fds.size());
  for (size_t i = 0; i < p.fds.size(); i++) fds.Set(static_cast<uint32_t>(i), p.fds[i]);
  out.Set("fds", fds);
  out.Set("truncated", p.truncated);
  out.Set("fdsTruncated", p.fds_truncated);
  return out;
}

}  // namespace

void InitFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix, "listenUnix"));
  exports.Set("connectUnix", Napi::Function::New(env, ConnectUnix, "connectUnix"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("sendPacket", Napi::Function::New(env, SendPacketJs, "sendPacket"));
  exports.Set("recvPacket", Napi::Function::New(env, RecvPacketJs, "recvPacket"));
}

}  // namespace zygote
