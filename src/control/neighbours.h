// Next-hop MAC resolution through the kernel (rtnetlink, libnl-route): the kernel interface of a
// port (its tap, or the AF_XDP netdev itself) holds the port's addresses, so the kernel's own
// ARP / neighbour discovery resolves backends and gateways. We read its neighbour table, ask it
// to (re)resolve entries that are missing or stale (RTM_NEWNEIGH with NTF_USE, as a packet sent
// to the neighbour would), and listen to RTNLGRP_NEIGH so a change is picked up at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "l4lb/addr.h"

struct nl_sock;

namespace l4lb::control {

class NeighbourResolver {
 public:
  ~NeighbourResolver();
  // Opens the netlink sockets; false with `err` when netlink is unavailable.
  bool open(std::string& err);
  // The (address, interface) pairs to resolve.
  void setWanted(std::vector<std::pair<IpAddr, std::string>> wanted) { wanted_ = std::move(wanted); }
  // Socket that becomes readable on neighbour changes: call drainEvents() then refresh().
  int eventFd() const;
  void drainEvents();
  // Reads the kernel's table: `out` gets address -> MAC for every wanted entry the kernel holds
  // as usable (REACHABLE, STALE, DELAY, PROBE, PERMANENT, NOARP). Entries missing, failed or
  // stale get a resolution request when `request` is true. Returns false only on netlink errors.
  bool refresh(std::map<std::string, MacAddr>& out, bool request, std::string& err);
  // Entries (address%iface) that refresh() could not resolve, with the kernel state.
  const std::map<std::string, std::string>& unresolved() const { return unresolved_; }

 private:
  nl_sock* sock_ = nullptr;    // requests and dumps
  nl_sock* events_ = nullptr;  // RTNLGRP_NEIGH / RTNLGRP_IPV4_IFADDR notifications
  std::vector<std::pair<IpAddr, std::string>> wanted_;
  std::map<std::string, std::string> unresolved_;
};

// Gives the kernel interface `ifname` the port's addresses and MTU and brings it up (tap
// exception path). Addresses already present are kept; IPv6 skips DAD (the port owns it).
bool configureKernelInterface(const std::string& ifname, const std::vector<Prefix>& addrs, uint16_t mtu,
                              std::string& err);

}  // namespace l4lb::control
