// The test topology of the data-plane and publisher tests: port 0 "wan" faces the clients
// (through a gateway), port 1 "lan" holds the backends (connected). One MAC plan for the
// balancer's ports, the gateway and the client; the segments' addresses are a parameter
// (Segments), so each suite keeps the address plan its expected frames were written for.
// Snapshots come from the real SnapshotBuilder. A test file takes these names with
// `using namespace test::topo;` and may still define its own constants: an inner declaration
// hides the one brought in.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "l4lb/snapshot.h"
#include "packet_builder.h"

namespace l4lb::test::topo {

using control::BackendConfig;
using control::BuildResult;
using control::Config;
using control::PortConfig;
using control::PortRuntime;
using control::SnapshotBuilder;
using control::VipConfig;
using test::Frame;
using test::get16;
using test::ipAddr;
using test::macAddr;
using test::PacketBuilder;

inline const MacAddr kWanMac = macAddr("02:00:00:00:00:10");
inline const MacAddr kLanMac = macAddr("02:00:00:00:00:20");
inline const MacAddr kGwMac = macAddr("02:00:00:00:00:fe");
inline const MacAddr kClientMac = macAddr("02:00:00:00:c0:01");
inline constexpr uint16_t kWan = 0, kLan = 1;

// The two segments' prefixes and wan's gateways; an empty string leaves the field unset.
struct Segments {
  std::string wan4 = "198.18.0.1/24";
  std::string wan6 = "2001:db8:ff::1/64";
  std::string gw4 = "198.18.0.254";
  std::string gw6 = "2001:db8:ff::fe";
  std::string lan4 = "198.19.0.1/24";
  std::string lan6 = "2001:db8:2::1/64";
  std::string device = "net_null_";  // + the port's name
};

inline PortConfig makePort(const std::string& name, const std::string& v4, const std::string& v6,
                           const std::string& device = "net_null_") {
  PortConfig p;
  p.name = name;
  p.device = device + name;
  if (!v4.empty()) p.ipv4 = *Prefix::parse(v4);
  if (!v6.empty()) p.ipv6 = *Prefix::parse(v6);
  return p;
}

inline BackendConfig makeBackend(const IpAddr& a, const MacAddr& mac, uint32_t weight = 1, uint16_t port = 0) {
  BackendConfig b;
  b.address = a;
  b.mac = mac;
  b.weight = weight;
  b.port = port;
  return b;
}

// wan (+ its gateways, resolved to kGwMac) and lan; no VIPs yet.
inline Config topology(const Segments& s = {}) {
  Config c;
  c.ports.push_back(makePort("wan", s.wan4, s.wan6, s.device));
  c.ports.push_back(makePort("lan", s.lan4, s.lan6, s.device));
  if (!s.gw4.empty()) {
    c.ports[0].gateway4 = ipAddr(s.gw4);
    c.neighbours.push_back({ipAddr(s.gw4), kGwMac});
  }
  if (!s.gw6.empty()) {
    c.ports[0].gateway6 = ipAddr(s.gw6);
    c.neighbours.push_back({ipAddr(s.gw6), kGwMac});
  }
  return c;
}

// The two VIPs the per-forwarding-mode suites send through, and their one backend each.
struct TwoVips {
  IpAddr vip4, b4;
  MacAddr b4_mac;
  IpAddr vip6, b6;
  MacAddr b6_mac;
};

// `c` with those two VIPs forwarded by `mode` and scheduled by `sched`: vip4:80/tcp -> b4 and
// [vip6]:53/udp -> b6, the backends listening on 8080 and 5353 behind NAT (on the VIP's port
// otherwise).
inline Config withTwoVips(Config c, const TwoVips& t, FwdMode mode, Scheduler sched = Scheduler::Maglev) {
  const bool nat = mode == FwdMode::Nat;
  VipConfig v4;
  v4.address = t.vip4;
  v4.port = 80;
  v4.protocol = Proto::Tcp;
  v4.forwarding = mode;
  v4.scheduler = sched;
  v4.backends = {makeBackend(t.b4, t.b4_mac, 1, nat ? 8080 : 0)};
  VipConfig v6 = v4;
  v6.address = t.vip6;
  v6.port = 53;
  v6.protocol = Proto::Udp;
  v6.backends = {makeBackend(t.b6, t.b6_mac, 1, nat ? 5353 : 0)};
  c.vips = {v4, v6};
  return c;
}

// Port ids 0 and 1 with the balancer's MACs.
inline std::vector<PortRuntime> portRuntimes(const MacAddr& wan = kWanMac, const MacAddr& lan = kLanMac) {
  return {{kWan, wan}, {kLan, lan}};
}

inline std::unique_ptr<Snapshot> build(SnapshotBuilder& sb, const Config& c) {
  BuildResult r = sb.build(c, portRuntimes());
  EXPECT_TRUE(r) << r.joined();
  return std::move(r.snapshot);
}

}  // namespace l4lb::test::topo
