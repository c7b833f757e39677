// Shared plumbing for the tests of the worker's burst (processBurst) on mbufs, without ports:
// the two-port topology (clients on "wan" through a gateway, backends on "lan"), snapshots from
// the real SnapshotBuilder, the scheduler fixtures and frame builders. Used by
// tests/unit/dataplane/{decide,scheduler,worker_counters,worker}_test.cc.
#pragma once

#include "dataplane/worker.h"

#include <gtest/gtest.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "burst_harness.h"
#include "control/snapshot_builder.h"
#include "packet_builder.h"
#include "topology.h"

namespace l4lb::dataplane::wtest {

using namespace test::topo;  // NOLINT(google-build-using-namespace): tests/common/topology.h

// The topology (tests/common/topology.h) with this suite's address plan: clients arrive on port 0
// "wan" through a gateway, backends sit on port 1 "lan" (connected).
inline const MacAddr kB4Mac = macAddr("02:00:00:00:01:01");
inline const MacAddr kB6Mac = macAddr("02:00:00:00:01:02");
inline const IpAddr kClient4 = ipAddr("198.51.100.7");
inline const IpAddr kClient6 = ipAddr("2001:db8:c::7");
inline const IpAddr kVip4 = ipAddr("192.0.2.1");
inline const IpAddr kVip6 = ipAddr("2001:db8:1::1");
inline const IpAddr kB4 = ipAddr("10.0.0.11");
inline const IpAddr kB6 = ipAddr("fd00::11");
inline const IpAddr kLan4 = ipAddr("10.0.0.1");
inline const IpAddr kLan6 = ipAddr("fd00::1");

// ---------------------------------------------------------------------------------------------
// Plumbing: mbufs, workers, snapshots.

using Out = test::SentFrame;

inline std::unique_ptr<WorkerState> makeWorker(uint32_t cap4 = 8192, uint32_t cap6 = 1024) {
  return test::makeBurstWorker("wt", cap4, cap6);
}

// Runs `frames` through processBurst in bursts of kBurst (test::runBursts); `no_headroom`: the
// frames start at the very beginning of their buffers.
inline std::vector<Out> run(WorkerState& w, const Snapshot& s, const std::vector<Frame>& frames, uint32_t now = 0,
                     uint16_t ingress = kWan, bool no_headroom = false) {
  return test::runBursts(w, s, frames, ingress, now, no_headroom ? 0 : RTE_PKTMBUF_HEADROOM);
}

inline std::optional<Out> runOne(WorkerState& w, const Snapshot& s, const Frame& f, uint32_t now = 0,
                          uint16_t ingress = kWan, bool no_headroom = false) {
  auto out = run(w, s, {f}, now, ingress, no_headroom);
  EXPECT_LE(out.size(), 1u);
  if (out.empty()) return std::nullopt;
  return out[0];
}

// wan (gateways toward clients) + lan (backends), no VIPs yet.
inline Config topology() {
  return test::topo::topology(
      {.wan4 = "203.0.113.1/24", .gw4 = "203.0.113.254", .lan4 = "10.0.0.1/24", .lan6 = "fd00::1/64"});
}

// A fullnat VIP `vip`:`port` (`proto`) with the source addresses `snat`, ports lo..hi, a quiet
// time, and one backend `backend`:`bport` (MAC `mac`); PROXY v2 when `proxy`.
struct FullNatVipSpec {
  IpAddr vip;
  uint16_t port = 80;
  Proto proto = Proto::Tcp;
  std::vector<IpAddr> snat;
  uint16_t lo = 40000, hi = 40003;
  uint32_t quiet_ms = 60'000;
  IpAddr backend;
  MacAddr mac;
  uint16_t bport = 0;
  bool proxy = false;
};
inline VipConfig fullNatVip(const FullNatVipSpec& f) {
  VipConfig v;
  v.address = f.vip;
  v.port = f.port;
  v.protocol = f.proto;
  v.forwarding = FwdMode::FullNat;
  v.snat_addresses = f.snat;
  v.snat_port_lo = f.lo;
  v.snat_port_hi = f.hi;
  v.snat_quiet_ms = f.quiet_ms;
  v.proxy_v2 = f.proxy;
  v.backends.push_back(makeBackend(f.backend, f.mac, 1, f.bport));
  return v;
}

// Scheduler fixtures: TCP VIP 192.0.2.1:80 (DSR) with backends 10.0.0.11.. (MAC ..:01:0i).
inline MacAddr backendMac(int i) { return macAddr("02:00:00:00:01:1" + std::to_string(i)); }
inline IpAddr backendAddr(int i) { return ipAddr("10.0.0." + std::to_string(20 + i)); }

inline Config schedConfig(Scheduler sched, const std::vector<uint32_t>& weights, uint16_t vip_port = 80) {
  Config c = topology();
  VipConfig v;
  v.address = kVip4;
  v.port = vip_port;
  v.protocol = Proto::Tcp;
  v.scheduler = sched;
  for (size_t i = 0; i < weights.size(); i++) v.backends.push_back(makeBackend(backendAddr(int(i)), backendMac(int(i)), weights[i]));
  c.vips.push_back(v);
  return c;
}

// schedConfig(Maglev, {1, 1, 1}), then the same without backend 1, both built by `sb` (so the
// remaining backends keep their ids).
inline std::pair<std::unique_ptr<Snapshot>, std::unique_ptr<Snapshot>> maglevThenBackend1Removed(SnapshotBuilder& sb) {
  Config full = schedConfig(Scheduler::Maglev, {1, 1, 1});
  Config less = full;
  less.vips[0].backends.erase(less.vips[0].backends.begin() + 1);  // backend 1 removed
  auto s1 = build(sb, full);
  return {std::move(s1), build(sb, less)};
}

// Which backend (index into the config's list) a DSR frame was sent to, -1 if none.
inline int backendOf(const Out& o, int n = 8) {
  MacAddr dst;
  std::memcpy(dst.bytes.data(), o.bytes.data(), 6);
  for (int i = 0; i < n; i++)
    if (dst == backendMac(i)) return i;
  return -1;
}

inline IpAddr clientAddr(uint32_t i) { return IpAddr::v4(rte_cpu_to_be_32(0xc6120000u + i)); }  // 198.18.0.0/15

inline Frame tcpTo(const IpAddr& client, uint16_t sport, uint8_t flags = kTcpSyn, uint16_t dport = 80,
            const IpAddr& vip = kVip4) {
  return PacketBuilder().eth(kClientMac, kWanMac).ipv4(client, vip).tcp(sport, dport, flags).payload(16).build();
}

inline Frame udpTo(const IpAddr& client, uint16_t sport, uint16_t dport = 53, const IpAddr& vip = kVip4) {
  return PacketBuilder().eth(kClientMac, kWanMac).ipv4(client, vip).udp(sport, dport).payload(16).build();
}

// Sends one flow per element and returns the backend index each went to.
inline std::vector<int> backendsFor(WorkerState& w, const Snapshot& s, const std::vector<Frame>& frames, uint32_t now = 0) {
  auto out = run(w, s, frames, now);
  EXPECT_EQ(out.size(), frames.size());
  std::vector<int> r;
  for (const auto& o : out) {
    EXPECT_EQ(o.port, kLan);
    r.push_back(backendOf(o));
  }
  return r;
}

inline std::vector<Frame> flows(uint32_t n, uint8_t flags = kTcpSyn, uint32_t first = 0) {
  std::vector<Frame> f;
  for (uint32_t i = first; i < first + n; i++) f.push_back(tcpTo(clientAddr(i), uint16_t(1024 + i % 50000), flags));
  return f;
}

using test::ctr;  // tests/common/burst_harness.h
using test::expectFrame;
using test::expectOnlyDrop;

}  // namespace l4lb::dataplane::wtest
