// network: a networked child's veth pair, made by the child itself over rtnetlink, as real
// root, between its fresh network namespace and the zygote's (zygote/sandbox/network.ts owns
// the addresses, the names and the host's nftables rules).
#pragma once

#include <napi.h>
#include <net/if.h>
#include <netinet/in.h>

namespace zygote::sandbox {

// One child's link, decided by the zygote: the host side at host_addr, the child side at
// child_addr, both in one /prefix; the child's default route goes through host_addr.
struct VethSpec {
  bool set = false;
  char host_name[IFNAMSIZ] = {0};
  char child_name[IFNAMSIZ] = {0};
  in_addr host_addr = {};
  in_addr child_addr = {};
  int prefix = 0;
};

// Child side, between fork and the first line of JS; every call returns 0 or an errno and
// is one named step of native/fork.cc's setup list. The fds it makes are its own (made after
// the inherited-fd sweep) and closed by Close() or by the child's exit.
class VethSetup {
 public:
  explicit VethSetup(const VethSpec& spec) : spec_(spec) {}
  ~VethSetup() { Close(); }
  VethSetup(const VethSetup&) = delete;
  VethSetup& operator=(const VethSetup&) = delete;

  // Before unshare(CLONE_NEWNET), in the zygote's network namespace: an fd of that namespace
  // (where the veth's peer goes) and an rtnetlink socket, which stays bound to the namespace
  // it was made in, so the host side is configured later without setns() back into it.
  int OpenHostNamespace();
  int OpenHostNetlink();
  // After the unshare, in the child's namespace.
  int OpenChildNetlink();
  // The pair: the child side here, its peer created straight in the host's namespace.
  int CreatePair();
  // The ifindex of each side, in its own namespace.
  int LookUpPair();
  // Each side: no IPv6 address at all (not even fe80::), its IPv4 address, up.
  int HostNoIpv6() { return NoIpv6(host_nl_, host_index_); }
  int HostAddress() { return AddAddress(host_nl_, host_index_, spec_.host_addr); }
  int HostUp() { return SetUp(host_nl_, host_index_); }
  int ChildNoIpv6() { return NoIpv6(child_nl_, child_index_); }
  int ChildAddress() { return AddAddress(child_nl_, child_index_, spec_.child_addr); }
  int ChildUp() { return SetUp(child_nl_, child_index_); }
  // The child's default route, through the host side.
  int DefaultRoute();
  void Close();

 private:
  int NoIpv6(int nl, int index);
  int AddAddress(int nl, int index, in_addr addr);
  int SetUp(int nl, int index);

  const VethSpec& spec_;
  int host_ns_ = -1;
  int host_nl_ = -1;
  int child_nl_ = -1;
  int host_index_ = 0;
  int child_index_ = 0;
  unsigned seq_ = 0;
};

// Adds interfaceIndex(name) to the addon's exports: the zygote checks a host-side name is
// free (a dead child's veth goes away with its namespace, asynchronously) before reusing it.
void InitNetwork(Napi::Env env, Napi::Object exports);

}  // namespace zygote::sandbox
