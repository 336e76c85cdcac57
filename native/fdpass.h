// fdpass: AF_UNIX SOCK_SEQPACKET sockets and packets that carry file descriptors (SCM_RIGHTS).
#pragma once

#include <napi.h>

#include <vector>

namespace zygote {

// Most descriptors one packet may carry: a spawn request carries one per mount (at most 32,
// zygote/sandbox/root.ts); a Spawned reply four.
constexpr int kMaxFdsPerPacket = 32;

enum class RecvStatus { kPacket, kWouldBlock, kEof };

struct Packet {
  std::vector<char> data;
  std::vector<int> fds;
  bool truncated = false;      // the data did not fit and was cut: a protocol error
  bool fds_truncated = false;  // more fds came than fit (the rest were closed by the kernel)
};

// Sends one packet with optional fds; returns false on EAGAIN, sets errno and returns false
// with *err set on any other failure.
bool SendPacket(int fd, const char* data, size_t len, const int* fds, int nfds, int* err);

// Receives one packet of at most max_bytes. Received fds are close-on-exec.
RecvStatus RecvPacket(int fd, size_t max_bytes, Packet* out, int* err);

void InitFdPass(Napi::Env env, Napi::Object exports);

}  // namespace zygote
