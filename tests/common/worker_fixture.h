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
#include <vector>

#include "burst_harness.h"
#include "control/snapshot_builder.h"
#include "packet_builder.h"

namespace l4lb::dataplane::wtest {

using control::BackendConfig;
using control::Config;
using control::PortConfig;
using control::PortRuntime;
using control::SnapshotBuilder;
using control::VipConfig;
using test::get16;
using test::ipAddr;
using test::macAddr;
using test::PacketBuilder;
using test::Frame;

// Topology used throughout: clients arrive on port 0 "wan" (reached through a gateway), backends
// sit on port 1 "lan" (connected).
inline const MacAddr kWanMac = macAddr("02:00:00:00:00:10");
inline const MacAddr kLanMac = macAddr("02:00:00:00:00:20");
inline const MacAddr kGwMac = macAddr("02:00:00:00:00:fe");
inline const MacAddr kClientMac = macAddr("02:00:00:00:c0:01");
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
inline constexpr uint16_t kWan = 0, kLan = 1;

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

inline PortConfig makePort(const std::string& name, const std::string& v4, const std::string& v6) {
  PortConfig p;
  p.name = name;
  p.device = "net_null_" + name;
  p.ipv4 = *Prefix::parse(v4);
  p.ipv6 = *Prefix::parse(v6);
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

// wan (gateways toward clients) + lan (backends), no VIPs yet.
inline Config topology() {
  Config c;
  c.ports.push_back(makePort("wan", "203.0.113.1/24", "2001:db8:ff::1/64"));
  c.ports[0].gateway4 = ipAddr("203.0.113.254");
  c.ports[0].gateway6 = ipAddr("2001:db8:ff::fe");
  c.ports.push_back(makePort("lan", "10.0.0.1/24", "fd00::1/64"));
  c.neighbours.push_back({ipAddr("203.0.113.254"), kGwMac});
  c.neighbours.push_back({ipAddr("2001:db8:ff::fe"), kGwMac});
  return c;
}

inline std::unique_ptr<Snapshot> build(SnapshotBuilder& sb, const Config& c) {
  std::vector<PortRuntime> rt = {{0, kWanMac}, {1, kLanMac}};
  control::BuildResult r = sb.build(c, rt);
  EXPECT_TRUE(r) << r.joined();
  return std::move(r.snapshot);
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

inline uint64_t ctr(const WorkerState& w, Ctr c) { return w.counters.get(c); }

// Only drop reason `d` moved, by `n`.
inline void expectOnlyDrop(const WorkerState& w, Drop d, uint64_t n = 1) {
  for (size_t i = 1; i < size_t(Drop::Count); i++) {
    const uint64_t want = i == size_t(d) ? n : 0;
    EXPECT_EQ(w.counters.drops[i], want) << "drop counter " << toString(Drop(i));
  }
}


}  // namespace l4lb::dataplane::wtest
