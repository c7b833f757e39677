#include "control/neighbours.h"

#include <linux/neighbour.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstring>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/rtnl.h>

namespace l4lb::control {

namespace {

struct NlAddr {
  nl_addr* a = nullptr;
  explicit NlAddr(const IpAddr& ip, int prefixlen = -1) {
    a = nl_addr_build(ip.isV4() ? AF_INET : AF_INET6, ip.bytes.data(), ip.isV4() ? 4 : 16);
    if (a != nullptr && prefixlen >= 0) nl_addr_set_prefixlen(a, prefixlen);
  }
  ~NlAddr() {
    if (a) nl_addr_put(a);
  }
  NlAddr(const NlAddr&) = delete;
  NlAddr& operator=(const NlAddr&) = delete;
};

std::string stateName(int state) {
  char buf[128];
  rtnl_neigh_state2str(state, buf, sizeof(buf));
  return buf[0] ? buf : "none";
}

int ignoreMsg(nl_msg*, void*) { return NL_OK; }

}  // namespace

NeighbourResolver::~NeighbourResolver() {
  if (sock_) nl_socket_free(sock_);
  if (events_) nl_socket_free(events_);
}

bool NeighbourResolver::open(std::string& err) {
  sock_ = nl_socket_alloc();
  events_ = nl_socket_alloc();
  if (sock_ == nullptr || events_ == nullptr) {
    err = "netlink: out of memory";
    return false;
  }
  int r = nl_connect(sock_, NETLINK_ROUTE);
  if (r == 0) {
    nl_socket_disable_seq_check(events_);
    nl_socket_modify_cb(events_, NL_CB_VALID, NL_CB_CUSTOM, ignoreMsg, nullptr);
    r = nl_connect(events_, NETLINK_ROUTE);
  }
  if (r == 0) r = nl_socket_add_memberships(events_, RTNLGRP_NEIGH, 0);
  if (r == 0) r = nl_socket_set_nonblocking(events_);
  if (r != 0) {
    err = std::string("netlink: ") + nl_geterror(r);
    return false;
  }
  return true;
}

int NeighbourResolver::eventFd() const { return events_ ? nl_socket_get_fd(events_) : -1; }

void NeighbourResolver::drainEvents() {
  if (events_ == nullptr) return;
  for (int i = 0; i < 1000; i++)
    if (nl_recvmsgs_default(events_) < 0) break;  // -NLE_AGAIN: drained
}

bool NeighbourResolver::refresh(std::map<std::string, MacAddr>& out, bool request, std::string& err) {
  unresolved_.clear();
  if (wanted_.empty()) return true;
  nl_cache* cache = nullptr;
  int r = rtnl_neigh_alloc_cache(sock_, &cache);
  if (r != 0) {
    err = std::string("netlink neighbour dump: ") + nl_geterror(r);
    return false;
  }
  for (const auto& [ip, ifname] : wanted_) {
    const std::string key = ip.str() + "%" + ifname;
    const int ifindex = int(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) {
      unresolved_[key] = "no interface " + ifname;
      continue;
    }
    NlAddr dst(ip);
    rtnl_neigh* n = dst.a ? rtnl_neigh_get(cache, ifindex, dst.a) : nullptr;
    int state = n ? rtnl_neigh_get_state(n) : 0;
    nl_addr* ll = n ? rtnl_neigh_get_lladdr(n) : nullptr;
    const bool usable = (state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)) &&
                        ll != nullptr && nl_addr_get_len(ll) == 6;
    if (usable) {
      MacAddr m;
      std::memcpy(m.bytes.data(), nl_addr_get_binary_addr(ll), 6);
      out[ip.str()] = m;
    } else {
      unresolved_[key] = n ? stateName(state) : "not in the kernel's table";
    }
    if (n) rtnl_neigh_put(n);
    // Missing, failed or stale: ask the kernel to probe, as sending a packet there would
    // (NTF_USE runs neigh_event_send). Stale entries stay usable while being re-validated.
    if (request && dst.a && (!usable || (state & NUD_STALE))) {
      rtnl_neigh* req = rtnl_neigh_alloc();
      if (req) {
        rtnl_neigh_set_ifindex(req, ifindex);
        rtnl_neigh_set_dst(req, dst.a);
        rtnl_neigh_set_flags(req, NTF_USE);
        rtnl_neigh_set_state(req, NUD_NONE);
        r = rtnl_neigh_add(sock_, req, NLM_F_CREATE);
        rtnl_neigh_put(req);
        if (r != 0) unresolved_[key] += std::string(" (resolution request: ") + nl_geterror(r) + ")";
      }
    }
  }
  nl_cache_free(cache);
  return true;
}

bool configureKernelInterface(const std::string& ifname, const std::vector<Prefix>& addrs, uint16_t mtu,
                              std::string& err) {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) {
    err = "netlink: out of memory";
    return false;
  }
  bool ok = false;
  rtnl_link* link = nullptr;
  rtnl_link* change = nullptr;
  int r = nl_connect(sock, NETLINK_ROUTE);
  if (r == 0) r = rtnl_link_get_kernel(sock, 0, ifname.c_str(), &link);
  if (r != 0) {
    err = "kernel interface " + ifname + ": " + nl_geterror(r);
  } else {
    const int ifindex = rtnl_link_get_ifindex(link);
    change = rtnl_link_alloc();
    rtnl_link_set_flags(change, IFF_UP);
    rtnl_link_set_mtu(change, mtu);
    r = rtnl_link_change(sock, link, change, 0);
    if (r != 0) {
      err = "kernel interface " + ifname + ": set up, mtu " + std::to_string(mtu) + ": " + nl_geterror(r);
    } else {
      ok = true;
      for (const Prefix& p : addrs) {
        rtnl_addr* a = rtnl_addr_alloc();
        NlAddr local(p.addr, p.len);
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_local(a, local.a);
        rtnl_addr_set_prefixlen(a, p.len);
        if (!p.addr.isV4()) rtnl_addr_set_flags(a, IFA_F_NODAD);
        r = rtnl_addr_add(sock, a, 0);
        rtnl_addr_put(a);
        if (r != 0 && r != -NLE_EXIST) {
          err = "kernel interface " + ifname + ": address " + p.str() + ": " + nl_geterror(r);
          ok = false;
          break;
        }
      }
    }
  }
  if (change) rtnl_link_put(change);
  if (link) rtnl_link_put(link);
  nl_socket_free(sock);
  return ok;
}

}  // namespace l4lb::control
