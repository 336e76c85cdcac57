// network: a networked child's veth pair, made by the child itself over rtnetlink, as real
// root, right after its fresh network namespace got its loopback up (native/fork.cc).
//
// How the two namespaces are reached: before unshare(CLONE_NEWNET) the child opens an fd of
// the zygote's namespace and an rtnetlink socket there. A netlink socket keeps operating on
// the namespace it was created in (sock_net), so after the unshare the child holds one socket
// per namespace and never setns()es back into the host's: no step can leave it there.
// The veth is created in the child's namespace with its peer placed in the host's
// (IFLA_NET_NS_FD, veth(4)); each side then gets IPv6 address generation off (no fe80::, so
// the link carries no IPv6 at all), its IPv4 address, and up; the child a default route. When
// the child's namespace dies with the child, the kernel deletes the pair.
//
// Raw rtnetlink, no libmnl: six small requests, each sent with NLM_F_ACK and its answer read
// with a bounded wait (rtnetlink answers during sendmsg, so the wait is a formality).
#include "network.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../errors.h"

namespace zygote::sandbox {
namespace {

constexpr int kReplyTimeoutMs = 1000;

// One rtnetlink request in a fixed buffer: header, fixed body (ifinfomsg, ifaddrmsg, rtmsg),
// attributes and nests, each 4-byte aligned. A request that would not fit fails with
// EMSGSIZE when sent; nothing is ever written past the buffer.
class Request {
 public:
  Request(uint16_t type, uint16_t flags, uint32_t seq) {
    Header()->nlmsg_len = NLMSG_LENGTH(0);
    Header()->nlmsg_type = type;
    Header()->nlmsg_flags = NLM_F_REQUEST | flags;
    Header()->nlmsg_seq = seq;
  }
  nlmsghdr* Header() { return reinterpret_cast<nlmsghdr*>(buf_); }
  bool Fits() const { return !overflow_; }

  // A zeroed fixed-size body (at the start of the message or of a nest such as VETH_INFO_PEER).
  template <typename T>
  T* Body() {
    static T spare;  // written to instead of the buffer when it is full; the request is refused anyway
    void* p = Reserve(sizeof(T));
    return p ? static_cast<T*>(p) : &spare;
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    auto* a = static_cast<rtattr*>(Reserve(RTA_LENGTH(len)));
    if (a == nullptr) return;
    a->rta_type = type;
    a->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    memcpy(RTA_DATA(a), data, len);
  }
  void String(uint16_t type, const char* s) { Attr(type, s, strlen(s) + 1); }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  // A nested attribute: Begin returns where it starts, End closes it over what came since.
  size_t Begin(uint16_t type) {
    size_t at = Header()->nlmsg_len;
    auto* a = static_cast<rtattr*>(Reserve(RTA_LENGTH(0)));
    if (a != nullptr) a->rta_type = type;
    return at;
  }
  void End(size_t at) {
    if (overflow_) return;
    reinterpret_cast<rtattr*>(buf_ + at)->rta_len = static_cast<unsigned short>(Header()->nlmsg_len - at);
  }

 private:
  void* Reserve(size_t len) {
    size_t at = NLMSG_ALIGN(Header()->nlmsg_len);
    size_t end = at + RTA_ALIGN(len);
    if (end > sizeof buf_) {
      overflow_ = true;
      return nullptr;
    }
    memset(buf_ + at, 0, end - at);
    Header()->nlmsg_len = static_cast<uint32_t>(end);
    return buf_ + at;
  }

  alignas(nlmsghdr) char buf_[512] = {};
  bool overflow_ = false;
};

// Sends req on the rtnetlink socket nl and reads the kernel's answer to it (bounded): the ack
// (0) or the error it carries; for RTM_GETLINK, the link's ifindex in *index.
int Transact(int nl, Request& req, int* index = nullptr) {
  if (!req.Fits()) return EMSGSIZE;
  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  const uint32_t len = req.Header()->nlmsg_len;
  const uint32_t seq = req.Header()->nlmsg_seq;
  ssize_t sent = sendto(nl, req.Header(), len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  if (sent < 0) return errno;
  if (static_cast<size_t>(sent) != len) return EIO;
  alignas(nlmsghdr) static char buf[16384];
  for (;;) {
    pollfd p = {nl, POLLIN, 0};
    int ready = poll(&p, 1, kReplyTimeoutMs);
    if (ready < 0) return errno;
    if (ready == 0) return ETIMEDOUT;
    ssize_t got = recv(nl, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0) return errno == EAGAIN ? ETIMEDOUT : errno;
    if (static_cast<size_t>(got) > sizeof buf) return EMSGSIZE;
    int left = static_cast<int>(got);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;  // nothing else is expected: the socket joined no groups
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EBADMSG;
        int err = -static_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        return err == 0 && index != nullptr ? EBADMSG : err;  // a GETLINK answers with the link, not an ack
      }
      if (index != nullptr && h->nlmsg_type == RTM_NEWLINK && h->nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
        *index = static_cast<ifinfomsg*>(NLMSG_DATA(h))->ifi_index;
        return *index > 0 ? 0 : EBADMSG;
      }
    }
  }
}

int OpenNetlink(int* fd) {
  *fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  return *fd < 0 ? errno : 0;
}

// RTM_GETLINK by name: the ifindex of name in nl's namespace.
int LinkIndex(int nl, uint32_t seq, const char* name, int* index) {
  Request r(RTM_GETLINK, 0, seq);
  r.Body<ifinfomsg>()->ifi_family = AF_UNSPEC;
  r.String(IFLA_IFNAME, name);
  r.U32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);  // a shorter answer: only the index is read
  return Transact(nl, r, index);
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

int VethSetup::OpenHostNamespace() {
  host_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  return host_ns_ < 0 ? errno : 0;
}

int VethSetup::OpenHostNetlink() { return OpenNetlink(&host_nl_); }

int VethSetup::OpenChildNetlink() { return OpenNetlink(&child_nl_); }

int VethSetup::CreatePair() {
  Request r(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ++seq_);
  r.Body<ifinfomsg>()->ifi_family = AF_UNSPEC;
  r.String(IFLA_IFNAME, spec_.child_name);
  size_t info = r.Begin(IFLA_LINKINFO);
  r.String(IFLA_INFO_KIND, "veth");
  size_t data = r.Begin(IFLA_INFO_DATA);
  size_t peer = r.Begin(VETH_INFO_PEER);
  r.Body<ifinfomsg>()->ifi_family = AF_UNSPEC;
  r.String(IFLA_IFNAME, spec_.host_name);
  r.U32(IFLA_NET_NS_FD, static_cast<uint32_t>(host_ns_));
  r.End(peer);
  r.End(data);
  r.End(info);
  int err = Transact(child_nl_, r);
  if (err != 0) return err;
  // The namespace fd was needed only to place the peer.
  CloseFd(&host_ns_);
  return 0;
}

int VethSetup::LookUpPair() {
  if (int err = LinkIndex(host_nl_, ++seq_, spec_.host_name, &host_index_)) return err;
  return LinkIndex(child_nl_, ++seq_, spec_.child_name, &child_index_);
}

int VethSetup::NoIpv6(int nl, int index) {
  Request r(RTM_NEWLINK, NLM_F_ACK, ++seq_);
  ifinfomsg* link = r.Body<ifinfomsg>();
  link->ifi_family = AF_UNSPEC;
  link->ifi_index = index;
  size_t af = r.Begin(IFLA_AF_SPEC);
  size_t inet6 = r.Begin(AF_INET6);
  uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
  r.Attr(IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof mode);
  r.End(inet6);
  r.End(af);
  int err = Transact(nl, r);
  // EAFNOSUPPORT: the kernel has no IPv6 for this link (ipv6.disable=1): nothing to turn off.
  return err == EAFNOSUPPORT ? 0 : err;
}

int VethSetup::AddAddress(int nl, int index, in_addr addr) {
  Request r(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ++seq_);
  ifaddrmsg* a = r.Body<ifaddrmsg>();
  a->ifa_family = AF_INET;
  a->ifa_prefixlen = static_cast<unsigned char>(spec_.prefix);
  a->ifa_scope = RT_SCOPE_UNIVERSE;
  a->ifa_index = static_cast<unsigned>(index);
  r.Attr(IFA_LOCAL, &addr, sizeof addr);
  r.Attr(IFA_ADDRESS, &addr, sizeof addr);
  return Transact(nl, r);
}

int VethSetup::SetUp(int nl, int index) {
  Request r(RTM_NEWLINK, NLM_F_ACK, ++seq_);
  ifinfomsg* link = r.Body<ifinfomsg>();
  link->ifi_family = AF_UNSPEC;
  link->ifi_index = index;
  link->ifi_flags = IFF_UP;
  link->ifi_change = IFF_UP;
  return Transact(nl, r);
}

int VethSetup::DefaultRoute() {
  Request r(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ++seq_);
  rtmsg* m = r.Body<rtmsg>();
  m->rtm_family = AF_INET;
  m->rtm_dst_len = 0;
  m->rtm_table = RT_TABLE_MAIN;
  m->rtm_protocol = RTPROT_BOOT;
  m->rtm_scope = RT_SCOPE_UNIVERSE;
  m->rtm_type = RTN_UNICAST;
  r.Attr(RTA_GATEWAY, &spec_.host_addr, sizeof spec_.host_addr);
  r.U32(RTA_OIF, static_cast<uint32_t>(child_index_));
  return Transact(child_nl_, r);
}

void VethSetup::Close() {
  CloseFd(&host_ns_);
  CloseFd(&host_nl_);
  CloseFd(&child_nl_);
}

namespace {

// interfaceIndex(name) -> the ifindex of name in the caller's network namespace, or 0.
Napi::Value InterfaceIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "interfaceIndex: name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) throw Napi::RangeError::New(env, "interfaceIndex: name must be 1 to 15 bytes");
  unsigned index = if_nametoindex(name.c_str());
  if (index == 0 && errno != ENODEV) ThrowErrno(env, "if_nametoindex", errno);
  return Napi::Number::New(env, index);
}

}  // namespace

void InitNetwork(Napi::Env env, Napi::Object exports) {
  exports.Set("interfaceIndex", Napi::Function::New(env, InterfaceIndex, "interfaceIndex"));
}

}  // namespace zygote::sandbox
