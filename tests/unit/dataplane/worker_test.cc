// Worker (processBurst) end to end on mbufs, without ports: schedulers, flow-table stickiness and
// timeouts, golden output bytes for every forwarding mode, and one test per drop verdict.
// Snapshots come from the real SnapshotBuilder; expected frames are built independently with the
// test PacketBuilder or by hand (outer headers), and checked with its own checksum code.
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

namespace l4lb::dataplane {
namespace {

using control::BackendConfig;
using control::Config;
using control::PortConfig;
using control::PortRuntime;
using control::BuildResult;
using control::SnapshotBuilder;
using control::VipConfig;
using test::get16;
using test::ipAddr;
using test::macAddr;
using test::PacketBuilder;
using test::Frame;

// Topology used throughout: clients arrive on port 0 "wan" (reached through a gateway), backends
// sit on port 1 "lan" (connected).
const MacAddr kWanMac = macAddr("02:00:00:00:00:10");
const MacAddr kLanMac = macAddr("02:00:00:00:00:20");
const MacAddr kGwMac = macAddr("02:00:00:00:00:fe");
const MacAddr kClientMac = macAddr("02:00:00:00:c0:01");
const MacAddr kB4Mac = macAddr("02:00:00:00:01:01");
const MacAddr kB6Mac = macAddr("02:00:00:00:01:02");
const IpAddr kClient4 = ipAddr("198.51.100.7");
const IpAddr kClient6 = ipAddr("2001:db8:c::7");
const IpAddr kVip4 = ipAddr("192.0.2.1");
const IpAddr kVip6 = ipAddr("2001:db8:1::1");
const IpAddr kB4 = ipAddr("10.0.0.11");
const IpAddr kB6 = ipAddr("fd00::11");
const IpAddr kLan4 = ipAddr("10.0.0.1");
const IpAddr kLan6 = ipAddr("fd00::1");
constexpr uint16_t kWan = 0, kLan = 1;

// ---------------------------------------------------------------------------------------------
// Plumbing: mbufs, workers, snapshots.

using Out = test::SentFrame;

std::unique_ptr<WorkerState> makeWorker(uint32_t cap4 = 8192, uint32_t cap6 = 1024) {
  return test::makeBurstWorker("wt", cap4, cap6);
}

// Runs `frames` through processBurst in bursts of kBurst (test::runBursts); `no_headroom`: the
// frames start at the very beginning of their buffers.
std::vector<Out> run(WorkerState& w, const Snapshot& s, const std::vector<Frame>& frames, uint32_t now = 0,
                     uint16_t ingress = kWan, bool no_headroom = false) {
  return test::runBursts(w, s, frames, ingress, now, no_headroom ? 0 : RTE_PKTMBUF_HEADROOM);
}

std::optional<Out> runOne(WorkerState& w, const Snapshot& s, const Frame& f, uint32_t now = 0,
                          uint16_t ingress = kWan, bool no_headroom = false) {
  auto out = run(w, s, {f}, now, ingress, no_headroom);
  EXPECT_LE(out.size(), 1u);
  if (out.empty()) return std::nullopt;
  return out[0];
}

PortConfig makePort(const std::string& name, const std::string& v4, const std::string& v6) {
  PortConfig p;
  p.name = name;
  p.device = "net_null_" + name;
  p.ipv4 = *Prefix::parse(v4);
  p.ipv6 = *Prefix::parse(v6);
  return p;
}

BackendConfig makeBackend(const IpAddr& a, const MacAddr& mac, uint32_t weight = 1, uint16_t port = 0) {
  BackendConfig b;
  b.address = a;
  b.mac = mac;
  b.weight = weight;
  b.port = port;
  return b;
}

// wan (gateways toward clients) + lan (backends), no VIPs yet.
Config topology() {
  Config c;
  c.ports.push_back(makePort("wan", "203.0.113.1/24", "2001:db8:ff::1/64"));
  c.ports[0].gateway4 = ipAddr("203.0.113.254");
  c.ports[0].gateway6 = ipAddr("2001:db8:ff::fe");
  c.ports.push_back(makePort("lan", "10.0.0.1/24", "fd00::1/64"));
  c.neighbours.push_back({ipAddr("203.0.113.254"), kGwMac});
  c.neighbours.push_back({ipAddr("2001:db8:ff::fe"), kGwMac});
  return c;
}

std::unique_ptr<Snapshot> build(SnapshotBuilder& sb, const Config& c) {
  std::vector<PortRuntime> rt = {{0, kWanMac}, {1, kLanMac}};
  BuildResult r = sb.build(c, rt);
  EXPECT_TRUE(r) << r.joined();
  return std::move(r.snapshot);
}

// Scheduler fixtures: TCP VIP 192.0.2.1:80 (DSR) with backends 10.0.0.11.. (MAC ..:01:0i).
MacAddr backendMac(int i) { return macAddr("02:00:00:00:01:1" + std::to_string(i)); }
IpAddr backendAddr(int i) { return ipAddr("10.0.0." + std::to_string(20 + i)); }

Config schedConfig(Scheduler sched, const std::vector<uint32_t>& weights, uint16_t vip_port = 80) {
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
int backendOf(const Out& o, int n = 8) {
  MacAddr dst;
  std::memcpy(dst.bytes.data(), o.bytes.data(), 6);
  for (int i = 0; i < n; i++)
    if (dst == backendMac(i)) return i;
  return -1;
}

IpAddr clientAddr(uint32_t i) { return IpAddr::v4(rte_cpu_to_be_32(0xc6120000u + i)); }  // 198.18.0.0/15

Frame tcpTo(const IpAddr& client, uint16_t sport, uint8_t flags = kTcpSyn, uint16_t dport = 80,
            const IpAddr& vip = kVip4) {
  return PacketBuilder().eth(kClientMac, kWanMac).ipv4(client, vip).tcp(sport, dport, flags).payload(16).build();
}

Frame udpTo(const IpAddr& client, uint16_t sport, uint16_t dport = 53, const IpAddr& vip = kVip4) {
  return PacketBuilder().eth(kClientMac, kWanMac).ipv4(client, vip).udp(sport, dport).payload(16).build();
}

// Sends one flow per element and returns the backend index each went to.
std::vector<int> backendsFor(WorkerState& w, const Snapshot& s, const std::vector<Frame>& frames, uint32_t now = 0) {
  auto out = run(w, s, frames, now);
  EXPECT_EQ(out.size(), frames.size());
  std::vector<int> r;
  for (const auto& o : out) {
    EXPECT_EQ(o.port, kLan);
    r.push_back(backendOf(o));
  }
  return r;
}

std::vector<Frame> flows(uint32_t n, uint8_t flags = kTcpSyn, uint32_t first = 0) {
  std::vector<Frame> f;
  for (uint32_t i = first; i < first + n; i++) f.push_back(tcpTo(clientAddr(i), uint16_t(1024 + i % 50000), flags));
  return f;
}

uint64_t ctr(const WorkerState& w, Ctr c) { return w.counters.get(c); }

// Only drop reason `d` moved, by `n`.
void expectOnlyDrop(const WorkerState& w, Drop d, uint64_t n = 1) {
  for (size_t i = 1; i < size_t(Drop::Count); i++) {
    const uint64_t want = i == size_t(d) ? n : 0;
    EXPECT_EQ(w.counters.drops[i], want) << "drop counter " << toString(Drop(i));
  }
}

// ---------------------------------------------------------------------------------------------
// (a) Schedulers

TEST(Scheduler, MaglevConsistentAndWeighted) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 2, 3}));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  const uint32_t n = 3000;
  auto first = backendsFor(*w, *s, flows(n));
  ASSERT_EQ(first.size(), n);
  std::map<int, int> count;
  for (int b : first) count[b]++;
  EXPECT_EQ(count.count(-1), 0u);
  EXPECT_NEAR(count[0] / double(n), 1.0 / 6, 0.03);
  EXPECT_NEAR(count[1] / double(n), 2.0 / 6, 0.03);
  EXPECT_NEAR(count[2] / double(n), 3.0 / 6, 0.03);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), n);
  EXPECT_EQ(ctr(*w, Ctr::RxPackets), n);

  // The same 5-tuple maps to the same backend with no state at all (a fresh worker) ...
  auto w2 = makeWorker();
  EXPECT_EQ(backendsFor(*w2, *s, flows(n, kTcpAck)), first);
  // ... and through the flow table.
  EXPECT_EQ(backendsFor(*w, *s, flows(n, kTcpAck)), first);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), n);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), n);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST(Scheduler, SourceHashSticksToClientAddress) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::SourceHash, {1, 1, 1}, /*vip_port=*/0));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  std::vector<Frame> one;
  const IpAddr c = ipAddr("198.18.7.7");
  for (uint16_t dport : {80, 443, 8080, 22})
    for (uint16_t sp = 0; sp < 200; sp++) one.push_back(tcpTo(c, uint16_t(2000 + sp), kTcpSyn, dport));
  auto got = backendsFor(*w, *s, one);
  ASSERT_EQ(got.size(), one.size());
  std::set<int> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 1u) << "one client address must always reach one backend";
  EXPECT_NE(*distinct.begin(), -1);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), one.size());

  // 1000 clients spread over every backend (expected 333 each, sd ~15).
  std::vector<Frame> many;
  for (uint32_t i = 0; i < 1000; i++) many.push_back(tcpTo(clientAddr(i * 7 + 3), 5555));
  std::map<int, int> count;
  for (int b : backendsFor(*w, *s, many)) count[b]++;
  EXPECT_EQ(count.count(-1), 0u);
  for (int b = 0; b < 3; b++) EXPECT_GE(count[b], 250) << "backend " << b;
  // Stateless: a fresh worker agrees.
  auto w2 = makeWorker();
  EXPECT_EQ(backendsFor(*w2, *s, {tcpTo(c, 9999, kTcpSyn, 1234)}), (std::vector<int>{*distinct.begin()}));
}

TEST(Scheduler, RoundRobinCyclesInOrder) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::RoundRobin, {5, 1, 1}));  // weights ignored
  ASSERT_TRUE(s);
  auto w = makeWorker();
  auto got = backendsFor(*w, *s, flows(10));
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0}));
  // An existing flow does not consume a turn.
  EXPECT_EQ(backendsFor(*w, *s, flows(3, kTcpAck)), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(backendsFor(*w, *s, flows(2, kTcpSyn, 100)), (std::vector<int>{1, 2}));
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 12u);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 3u);
}

TEST(Scheduler, WeightedRoundRobinExactShares) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::WeightedRoundRobin, {1, 2, 3}));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  auto got = backendsFor(*w, *s, flows(600));
  std::map<int, int> count;
  for (int b : got) count[b]++;
  EXPECT_EQ(count[0], 100);
  EXPECT_EQ(count[1], 200);
  EXPECT_EQ(count[2], 300);
  // Smooth order (c b a c b c), repeated.
  for (size_t i = 0; i < got.size(); i++) ASSERT_EQ(got[i], (std::vector<int>{2, 1, 0, 2, 1, 2})[i % 6]) << i;
}

// ---------------------------------------------------------------------------------------------
// (b) Flow table

// The per-burst VIP memo (lookup.h VipMemo) must answer only the exact question it saw: one
// burst alternating between three VIPs (same address on two ports, another address, UDP on the
// TCP VIP's address and port) and a port that is no VIP gives each packet its own VIP's backend.
TEST(Scheduler, BurstAcrossVipsEachPacketItsOwnVip) {
  Config c = schedConfig(Scheduler::Maglev, {1});  // 192.0.2.1:80/tcp -> backend 0
  VipConfig v81 = c.vips[0];
  v81.port = 81;
  v81.backends = {makeBackend(backendAddr(1), backendMac(1))};
  VipConfig other = c.vips[0];
  other.address = ipAddr("192.0.2.2");
  other.backends = {makeBackend(backendAddr(2), backendMac(2))};
  VipConfig udp = c.vips[0];
  udp.protocol = Proto::Udp;
  udp.backends = {makeBackend(backendAddr(3), backendMac(3))};
  c.vips.push_back(v81);
  c.vips.push_back(other);
  c.vips.push_back(udp);
  SnapshotBuilder sb;
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  auto w = makeWorker();
  std::vector<Frame> burst;
  std::vector<int> want;
  for (uint16_t i = 0; i < 6; i++) {
    burst.push_back(tcpTo(kClient4, uint16_t(2000 + i)));  // :80
    want.push_back(0);
    burst.push_back(tcpTo(kClient4, uint16_t(2000 + i), kTcpSyn, 81));
    want.push_back(1);
    burst.push_back(tcpTo(kClient4, uint16_t(2000 + i), kTcpSyn, 81));  // same question twice
    want.push_back(1);
    burst.push_back(tcpTo(kClient4, uint16_t(2000 + i), kTcpSyn, 80, ipAddr("192.0.2.2")));
    want.push_back(2);
    burst.push_back(udpTo(kClient4, uint16_t(2000 + i), 80));
    want.push_back(3);
  }
  burst.push_back(tcpTo(kClient4, 3000, kTcpSyn, 82));  // no VIP on :82
  ASSERT_LE(burst.size(), size_t(kBurst));
  EXPECT_EQ(backendsFor(*w, *s, std::vector<Frame>(burst.begin(), burst.end() - 1)), want);
  auto out = run(*w, *s, {burst.back()});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w->counters.get(Drop::NoVip), 1u);
}

TEST(FlowStickiness, EstablishedFlowKeepsBackendWhenBackendAdded) {
  SnapshotBuilder sb;
  auto s1 = build(sb, schedConfig(Scheduler::Maglev, {1, 1}));
  auto s2 = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));  // backend 2 added
  ASSERT_TRUE(s1 && s2);
  auto w = makeWorker();
  const uint32_t n = 600;
  auto before = backendsFor(*w, *s1, flows(n));
  // What Maglev alone picks under the new table (a stateless worker).
  auto probe = makeWorker();
  auto fresh = backendsFor(*probe, *s2, flows(n));
  std::vector<uint32_t> moved;
  for (uint32_t i = 0; i < n; i++)
    if (fresh[i] == 2) moved.push_back(i);
  ASSERT_FALSE(moved.empty()) << "no flow that the new backend would take";
  auto after = backendsFor(*w, *s2, flows(n, kTcpAck));
  EXPECT_EQ(after, before);
  for (uint32_t i : moved) EXPECT_NE(after[i], 2) << "flow " << i << " moved to the added backend";
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), n);
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), 0u);
  // New flows do reach the added backend.
  auto newer = backendsFor(*w, *s2, flows(300, kTcpSyn, 10000));
  EXPECT_GT(std::count(newer.begin(), newer.end(), 2), 50);
}

TEST(FlowStickiness, EstablishedFlowKeepsBackendWhenWeightsChange) {
  SnapshotBuilder sb;
  auto s1 = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
  auto s2 = build(sb, schedConfig(Scheduler::Maglev, {10, 1, 1}));
  ASSERT_TRUE(s1 && s2);
  auto w = makeWorker();
  const uint32_t n = 600;
  auto before = backendsFor(*w, *s1, flows(n));
  auto probe = makeWorker();
  auto fresh = backendsFor(*probe, *s2, flows(n));
  uint32_t differ = 0;
  for (uint32_t i = 0; i < n; i++) differ += fresh[i] != before[i];
  ASSERT_GT(differ, 50u) << "weight change should move some flows for new connections";
  EXPECT_EQ(backendsFor(*w, *s2, flows(n, kTcpAck)), before);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), n);
}

TEST(FlowStickiness, RemovedBackendIsRepicked) {
  SnapshotBuilder sb;
  Config full = schedConfig(Scheduler::Maglev, {1, 1, 1});
  Config less = full;
  less.vips[0].backends.erase(less.vips[0].backends.begin() + 1);  // backend 1 removed
  auto s1 = build(sb, full);
  auto s2 = build(sb, less);
  ASSERT_TRUE(s1 && s2);
  auto w = makeWorker();
  const uint32_t n = 600;
  auto before = backendsFor(*w, *s1, flows(n));
  auto probe = makeWorker();
  auto fresh = backendsFor(*probe, *s2, flows(n));
  const auto on1 = uint64_t(std::count(before.begin(), before.end(), 1));
  ASSERT_GT(on1, 0u);
  auto after = backendsFor(*w, *s2, flows(n, kTcpAck));
  for (uint32_t i = 0; i < n; i++) {
    if (before[i] == 1) {
      EXPECT_EQ(after[i], fresh[i]) << "flow " << i << " re-picked by Maglev";
    }
    else EXPECT_EQ(after[i], before[i]) << "flow " << i << " kept";
    EXPECT_NE(after[i], 1);
  }
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), on1);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), n - on1);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), n);  // a rehash is not a new flow
  // The re-picked entries were stored: the next round is all hits.
  EXPECT_EQ(backendsFor(*w, *s2, flows(n, kTcpAck)), after);
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), on1);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 2 * n - on1);
}

TEST(FlowStickiness, UnhealthyRehashesDrainingKeeps) {
  SnapshotBuilder sb;
  auto s1 = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
  ASSERT_TRUE(s1);
  const uint32_t id0 = s1->vips[0].backends[0], id1 = s1->vips[0].backends[1];
  // Backend 1 out of the table (its slots given to backend 0), in two states.
  auto without1 = [&](BackendState st) {
    Snapshot c = *s1;
    c.backends[id1].state = st;
    for (uint32_t& slot : c.vips[0].maglev)
      if (slot == id1) slot = id0;
    return c;
  };
  const Snapshot draining = without1(BackendState::Draining);
  const Snapshot unhealthy = without1(BackendState::Unhealthy);
  const uint32_t n = 300;
  auto w = makeWorker();
  auto before = backendsFor(*w, *s1, flows(n));
  const auto on1 = uint64_t(std::count(before.begin(), before.end(), 1));
  ASSERT_GT(on1, 0u);
  EXPECT_EQ(backendsFor(*w, draining, flows(n, kTcpAck)), before);  // draining keeps its flows
  auto nw = backendsFor(*w, draining, flows(n, kTcpSyn, 5000));
  EXPECT_EQ(std::count(nw.begin(), nw.end(), 1), 0) << "draining backend got new flows";
  auto after = backendsFor(*w, unhealthy, flows(n, kTcpAck));
  for (uint32_t i = 0; i < n; i++) EXPECT_EQ(after[i], before[i] == 1 ? 0 : before[i]) << i;
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), on1);
}

TEST(FlowTimeouts, UdpIdleIsNewTcpEstablishedIsHit) {
  SnapshotBuilder sb;
  Config c = schedConfig(Scheduler::RoundRobin, {1, 1, 1, 1});
  c.vips.push_back(c.vips[0]);
  c.vips[1].port = 53;
  c.vips[1].protocol = Proto::Udp;
  c.vips[1].backends.clear();
  for (int i = 0; i < 4; i++) c.vips[1].backends.push_back(makeBackend(ipAddr("10.0.0." + std::to_string(40 + i)), backendMac(i)));
  c.flow_table.udp_timeout_ms = 1000;
  c.flow_table.tcp_syn_timeout_ms = 500;
  c.flow_table.tcp_established_timeout_ms = 300'000;
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->timeouts.udp_ms, 1000u);
  auto w = makeWorker();
  const Frame u = udpTo(kClient4, 4000);
  auto b0 = backendsFor(*w, *s, {u}, 0);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 1u);
  EXPECT_EQ(backendsFor(*w, *s, {u}, 900), b0);  // within the timeout: same backend
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 1u);
  // Idle 2500 ms > 1000: a new flow, and round robin moves it to the next backend.
  auto b1 = backendsFor(*w, *s, {u}, 2500);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 2u);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 1u);
  EXPECT_NE(b1, b0);

  // TCP: SYN at 0, ACK at 100 (established), then hits far past the UDP / SYN timeouts.
  const Frame syn = tcpTo(kClient4, 4000, kTcpSyn), ack = tcpTo(kClient4, 4000, kTcpAck);
  auto t0 = backendsFor(*w, *s, {syn}, 0);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 3u);
  EXPECT_EQ(backendsFor(*w, *s, {ack}, 100), t0);
  EXPECT_EQ(backendsFor(*w, *s, {ack}, 2500), t0);
  EXPECT_EQ(backendsFor(*w, *s, {ack}, 200'000), t0);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 4u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 3u);
  // 300 s after the last refresh (200'000): expired.
  backendsFor(*w, *s, {ack}, 200'000 + 300'001);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 4u);

  // A SYN-only flow uses the (short) SYN timeout.
  const Frame syn2 = tcpTo(kClient4, 4001, kTcpSyn);
  backendsFor(*w, *s, {syn2}, 1'000'000);
  backendsFor(*w, *s, {tcpTo(kClient4, 4001, kTcpAck)}, 1'000'400);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 5u);
  backendsFor(*w, *s, {syn2}, 1'000'000 + 400 + 10);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 5u);
  const Frame syn3 = tcpTo(kClient4, 4002, kTcpSyn);
  backendsFor(*w, *s, {syn3}, 2'000'000);
  backendsFor(*w, *s, {syn3}, 2'000'501);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 7u);
}

TEST(FlowTableFull, AllForwardedAndRoundRobinFallbackConsistent) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::RoundRobin, {1, 1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker(1024);
  const uint32_t n = 2000;
  auto first = backendsFor(*w, *s, flows(n));
  ASSERT_EQ(first.size(), n);
  EXPECT_EQ(std::count(first.begin(), first.end(), -1), 0);
  EXPECT_EQ(w->flows4->size(), 1024u);
  EXPECT_EQ(ctr(*w, Ctr::FlowTableFull), n - 1024);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 1024u);  // counted on insert; the rest are flow_table_full
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  // Second packet of every flow: same backend, stored or not.
  auto second = backendsFor(*w, *s, flows(n, kTcpAck));
  EXPECT_EQ(second, first);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 1024u);
  EXPECT_EQ(ctr(*w, Ctr::FlowTableFull), 2 * (n - 1024));
  // Same for weighted round robin.
  auto s2 = build(sb, schedConfig(Scheduler::WeightedRoundRobin, {1, 2, 3}));
  auto w2 = makeWorker(1024);
  auto a = backendsFor(*w2, *s2, flows(n));
  EXPECT_EQ(backendsFor(*w2, *s2, flows(n, kTcpAck)), a);
}

TEST(FlowTable, SameNewFlowTwiceInOneBurstRoundRobin) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::RoundRobin, {1, 1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  // SYN and the retransmitted SYN of one new flow arrive in the same burst.
  const Frame syn = tcpTo(kClient4, 4444, kTcpSyn);
  auto got = backendsFor(*w, *s, {syn, syn, tcpTo(kClient4, 4444, kTcpAck)});
  ASSERT_EQ(got.size(), 3u);
  auto later = backendsFor(*w, *s, {tcpTo(kClient4, 4444, kTcpAck)});
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(got[1], got[0]);
  EXPECT_EQ(got[2], got[0]);
  EXPECT_EQ(later[0], got[0]);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 1u);
}

TEST(FlowTable, SameNewFlowTwiceInOneBurstCountsOneNewFlow) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  const Frame syn = tcpTo(kClient4, 4444, kTcpSyn);
  auto got = backendsFor(*w, *s, {syn, syn});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], got[1]);  // Maglev is stateless: same answer
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 1u);
}

// ---------------------------------------------------------------------------------------------
// Per-backend and per-port counters (read by the control plane's metrics)

// Backend id of each configured backend (config order), found by its next-hop MAC.
std::vector<uint32_t> backendIds(const Snapshot& s, int n) {
  std::vector<uint32_t> ids(size_t(n), kNoBackend);
  for (uint32_t id : s.vips[0].backends)
    for (int i = 0; i < n; i++)
      if (s.backends[id].next_hop_mac == backendMac(i)) ids[size_t(i)] = id;
  return ids;
}

uint64_t countOf(const std::vector<int>& v, int i) { return uint64_t(std::count(v.begin(), v.end(), i)); }

TEST(BackendCounters, PacketsBytesNewAndSweptEnded) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
  ASSERT_TRUE(s);
  const auto ids = backendIds(*s, 3);
  auto w = makeWorker();
  const uint32_t n = 300;
  const uint64_t size = flows(1)[0].size();
  ASSERT_EQ(size, 14u + 20 + 20 + 16);
  auto first = backendsFor(*w, *s, flows(n));
  for (int i = 0; i < 3; i++) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    const uint64_t k = countOf(first, i);
    EXPECT_GT(k, 0u);
    EXPECT_EQ(b.packets, k) << i;
    EXPECT_EQ(b.bytes, k * size) << i;  // DSR: sent as received
    EXPECT_EQ(b.flows_new, k) << i;
    EXPECT_EQ(b.flows_ended, 0u) << i;
  }
  EXPECT_EQ(w->backend_ctrs[kNoBackend].packets, 0u);
  EXPECT_EQ(w->port_ctrs[kWan].rx_packets, n);
  EXPECT_EQ(w->port_ctrs[kWan].rx_bytes, n * size);
  EXPECT_EQ(w->port_ctrs[kLan].rx_packets, 0u);
  // TX per port is counted by workerMain after rte_eth_tx_burst, not by processBurst.
  EXPECT_EQ(w->port_ctrs[kLan].tx_packets, 0u);

  // Second packet of each flow: hits, counted as traffic, no new flow.
  EXPECT_EQ(backendsFor(*w, *s, flows(n, kTcpAck), 100), first);
  for (int i = 0; i < 3; i++) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    EXPECT_EQ(b.packets, 2 * countOf(first, i)) << i;
    EXPECT_EQ(b.bytes, 2 * countOf(first, i) * size) << i;
    EXPECT_EQ(b.flows_new, countOf(first, i)) << i;
  }
  EXPECT_EQ(w->port_ctrs[kWan].rx_packets, 2 * n);

  // A sweep before the (established) timeout removes nothing; after it, every entry, each
  // counted as ended on its backend.
  EXPECT_EQ(w->flows4->sweep(200'000, s->timeouts, w->flows4->capacity(), w->backend_ctrs.get()), 0u);
  EXPECT_EQ(w->flows4->sweep(100 + 300'001, s->timeouts, w->flows4->capacity(), w->backend_ctrs.get()), n);
  EXPECT_EQ(w->flows4->size(), 0u);
  for (int i = 0; i < 3; i++) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    EXPECT_EQ(b.flows_ended, countOf(first, i)) << i;
    EXPECT_EQ(b.flows_new, countOf(first, i)) << i;
  }
}

TEST(BackendCounters, RehashEndsOnOldBackendAndStartsOnNew) {
  SnapshotBuilder sb;
  Config full = schedConfig(Scheduler::Maglev, {1, 1, 1});
  Config less = full;
  less.vips[0].backends.erase(less.vips[0].backends.begin() + 1);  // backend 1 removed
  auto s1 = build(sb, full);
  auto s2 = build(sb, less);
  ASSERT_TRUE(s1 && s2);
  const auto ids = backendIds(*s1, 3);
  ASSERT_EQ(backendIds(*s2, 3)[0], ids[0]);  // ids are stable across rebuilds
  ASSERT_EQ(backendIds(*s2, 3)[2], ids[2]);
  auto w = makeWorker();
  const uint32_t n = 300;
  auto before = backendsFor(*w, *s1, flows(n));
  auto after = backendsFor(*w, *s2, flows(n, kTcpAck));
  const uint64_t on1 = countOf(before, 1);
  ASSERT_GT(on1, 0u);
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), on1);
  const BackendCounters& b1 = w->backend_ctrs[ids[1]];
  EXPECT_EQ(b1.flows_new, on1);
  EXPECT_EQ(b1.flows_ended, on1);  // every flow moved away: none active
  EXPECT_EQ(b1.packets, on1);
  uint64_t moved = 0;
  for (int i : {0, 2}) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    uint64_t moved_here = 0;
    for (uint32_t f = 0; f < n; f++) moved_here += before[f] == 1 && after[f] == i;
    moved += moved_here;
    EXPECT_EQ(b.flows_new, countOf(before, i) + moved_here) << i;
    EXPECT_EQ(b.flows_ended, 0u) << i;
    EXPECT_EQ(b.packets, countOf(before, i) + countOf(after, i)) << i;
  }
  EXPECT_EQ(moved, on1);
  // Active flows summed over backends: still n.
  uint64_t active = 0;
  for (uint32_t id : ids) active += w->backend_ctrs[id].flows_new - w->backend_ctrs[id].flows_ended;
  EXPECT_EQ(active, n);
}

TEST(BackendCounters, ExpiredEntryReplacedEndsTheOldOne) {
  SnapshotBuilder sb;
  Config c = schedConfig(Scheduler::RoundRobin, {1, 1});
  c.vips[0].port = 53;
  c.vips[0].protocol = Proto::Udp;
  c.flow_table.udp_timeout_ms = 1000;
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  const auto ids = backendIds(*s, 2);
  auto w = makeWorker();
  const Frame u = udpTo(kClient4, 4000);
  auto b0 = backendsFor(*w, *s, {u}, 0);
  auto b1 = backendsFor(*w, *s, {u}, 2500);  // idle past the timeout, not swept: replaced
  ASSERT_EQ(b0.size(), 1u);
  ASSERT_EQ(b1.size(), 1u);
  ASSERT_NE(b0[0], b1[0]);  // round robin moved it
  const BackendCounters& old_b = w->backend_ctrs[ids[size_t(b0[0])]];
  const BackendCounters& new_b = w->backend_ctrs[ids[size_t(b1[0])]];
  EXPECT_EQ(old_b.flows_new, 1u);
  EXPECT_EQ(old_b.flows_ended, 1u);
  EXPECT_EQ(new_b.flows_new, 1u);
  EXPECT_EQ(new_b.flows_ended, 0u);
  EXPECT_EQ(old_b.packets, 1u);
  EXPECT_EQ(new_b.packets, 1u);
  EXPECT_EQ(new_b.bytes, u.size());
  EXPECT_EQ(w->flows4->size(), 1u);
}

TEST(SweepFlows, PacedByTimeAndCountsEnded) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker(8192, 1024);  // both below kSweepPassMs: kSweepMinPerMs positions per ms
  ASSERT_EQ(kSweepMinPerMs, 16u);
  ASSERT_EQ(kSweepChunk, 64u);
  const uint32_t n = 100;
  ASSERT_EQ(backendsFor(*w, *s, flows(n), 0).size(), n);
  // 5 ms accrue 80 positions per table, visited in chunks of at most 64 per call.
  EXPECT_EQ(sweepFlows(*w, 5, s->timeouts), 0u);
  EXPECT_EQ(w->flows4->sweepCursor(), 64u);
  EXPECT_EQ(w->flows6->sweepCursor(), 64u);
  sweepFlows(*w, 5, s->timeouts);
  EXPECT_EQ(w->flows4->sweepCursor(), 80u);
  sweepFlows(*w, 5, s->timeouts);  // same millisecond, nothing owed
  EXPECT_EQ(w->flows4->sweepCursor(), 80u);
  EXPECT_EQ(w->flows6->sweepCursor(), 80u);
  sweepFlows(*w, 1000, s->timeouts);  // a gap accrues at most 10 ms
  EXPECT_EQ(w->flows4->sweepCursor(), 144u);
  EXPECT_EQ(w->flows4->size(), n);
  EXPECT_EQ(ctr(*w, Ctr::FlowExpired), 0u);
  // Past the SYN timeout, one whole pass (8192 / 16 = 512 ms) removes every entry.
  uint32_t removed = 0;
  for (uint32_t now = 20'000; now <= 20'000 + 520; now++)
    for (int k = 0; k < 4; k++) removed += sweepFlows(*w, now, s->timeouts);
  EXPECT_EQ(removed, n);
  EXPECT_EQ(ctr(*w, Ctr::FlowExpired), n);
  EXPECT_EQ(w->flows4->size(), 0u);
  const auto ids = backendIds(*s, 2);
  EXPECT_EQ(w->backend_ctrs[ids[0]].flows_ended + w->backend_ctrs[ids[1]].flows_ended, n);
  EXPECT_EQ(w->backend_ctrs[ids[0]].flows_ended, w->backend_ctrs[ids[0]].flows_new);
}

// ---------------------------------------------------------------------------------------------
// (c) Forwarding: golden bytes

Frame ethHdr(const MacAddr& dst, const MacAddr& src, uint16_t type) {
  Frame f(dst.bytes.begin(), dst.bytes.end());
  f.insert(f.end(), src.bytes.begin(), src.bytes.end());
  f.push_back(uint8_t(type >> 8));
  f.push_back(uint8_t(type));
  return f;
}

Frame ipv4Hdr(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint16_t payload_len, uint8_t tos, bool df,
              uint8_t ttl = 64, uint16_t id = 0) {
  Frame h(20, 0);
  h[0] = 0x45;
  h[1] = tos;
  test::put16(h, 2, uint16_t(20 + payload_len));
  test::put16(h, 4, id);
  test::put16(h, 6, df ? 0x4000 : 0);
  h[8] = ttl;
  h[9] = proto;
  std::copy(src.bytes.begin(), src.bytes.begin() + 4, h.begin() + 12);
  std::copy(dst.bytes.begin(), dst.bytes.begin() + 4, h.begin() + 16);
  test::put16(h, 10, test::ipv4HeaderChecksum(h, 0));
  return h;
}

Frame ipv6Hdr(const IpAddr& src, const IpAddr& dst, uint8_t next, uint16_t payload_len, uint8_t tc,
              uint32_t flow, uint8_t hop = 64) {
  Frame h(40, 0);
  test::put32(h, 0, (6u << 28) | (uint32_t(tc) << 20) | (flow & 0xfffff));
  test::put16(h, 4, payload_len);
  h[6] = next;
  h[7] = hop;
  std::copy(src.bytes.begin(), src.bytes.end(), h.begin() + 8);
  std::copy(dst.bytes.begin(), dst.bytes.end(), h.begin() + 24);
  return h;
}

Frame udpHdr(uint16_t sport, uint16_t dport, uint16_t len) {
  Frame h(8, 0);
  test::put16(h, 0, sport);
  test::put16(h, 2, dport);
  test::put16(h, 4, len);
  return h;
}

Frame cat(std::initializer_list<Frame> parts) {
  Frame f;
  for (const auto& p : parts) f.insert(f.end(), p.begin(), p.end());
  return f;
}

Frame ipPacketOf(const Frame& frame, size_t l3_off = 14) {
  auto l = test::locateAt(frame, l3_off);
  return Frame(frame.begin() + std::ptrdiff_t(l3_off), frame.begin() + std::ptrdiff_t(l->l3_end));
}

// The worker's flow hash (the scheduler input and the tunnels' entropy source). rte_hash_crc
// reads the key through uint64_t pointers, so hashing a freshly written FlowKey4 local breaks
// strict aliasing: at -O2 GCC hashed stack garbage here. Copy the key into uint64_t words first.
template <typename Key>
uint32_t hashOfKey(const Key& k) {
  static_assert(sizeof(Key) % 8 == 0);
  uint64_t words[sizeof(Key) / 8];
  std::memcpy(words, &k, sizeof(Key));
  return FlowTable::hashKey(words, sizeof(Key));
}
uint32_t flowHash4(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, uint8_t proto) {
  FlowKey4 k;
  k.saddr = s.v4be();
  k.daddr = d.v4be();
  k.sport = rte_cpu_to_be_16(sp);
  k.dport = rte_cpu_to_be_16(dp);
  k.proto = proto;
  return hashOfKey(k);
}
uint32_t flowHash6(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, uint8_t proto) {
  FlowKey6 k;
  std::memcpy(k.saddr, s.bytes.data(), 16);
  std::memcpy(k.daddr, d.bytes.data(), 16);
  k.sport = rte_cpu_to_be_16(sp);
  k.dport = rte_cpu_to_be_16(dp);
  k.proto = proto;
  return hashOfKey(k);
}

// vips[0] = 192.0.2.1:80/tcp -> 10.0.0.11 (:8080 for NAT); vips[1] = [2001:db8:1::1]:53/udp ->
// fd00::11 (:5353 for NAT). Both on lan.
Config fwdConfig(FwdMode mode) {
  Config c = topology();
  const bool nat = mode == FwdMode::Nat;
  VipConfig v4;
  v4.address = kVip4;
  v4.port = 80;
  v4.protocol = Proto::Tcp;
  v4.forwarding = mode;
  v4.backends.push_back(makeBackend(kB4, kB4Mac, 1, nat ? 8080 : 0));
  VipConfig v6;
  v6.address = kVip6;
  v6.port = 53;
  v6.protocol = Proto::Udp;
  v6.forwarding = mode;
  v6.backends.push_back(makeBackend(kB6, kB6Mac, 1, nat ? 5353 : 0));
  c.vips = {v4, v6};
  return c;
}

constexpr uint16_t kCport4 = 40000, kCport6 = 40001;

PacketBuilder clientTcp4(uint16_t payload = 100) {
  PacketBuilder b;
  b.eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).tos(0x28).ipId(0x1234).df().tcp(kCport4, 80, kTcpSyn);
  b.tcpSeq(1000, 0).payload(payload);
  return b;
}
PacketBuilder clientUdp6(uint16_t payload = 60) {
  PacketBuilder b;
  b.eth(kClientMac, kWanMac).ipv6(kClient6, kVip6).tos(0x28).udp(kCport6, 53).payload(payload);
  return b;
}

struct Golden {
  Frame in4, in6;
  Frame want4, want6;
};

Golden golden(FwdMode mode, const Frame& in4, const Frame& in6) {
  Golden g{in4, in6, {}, {}};
  const Frame ip4 = ipPacketOf(in4, in4[12] == 0x81 ? 18 : 14), ip6 = ipPacketOf(in6, in6[12] == 0x81 ? 18 : 14);
  const uint32_t h4 = flowHash4(kClient4, kVip4, kCport4, 80, kProtoTcp);
  const uint32_t h6 = flowHash6(kClient6, kVip6, kCport6, 53, kProtoUdp);
  switch (mode) {
    case FwdMode::Dsr:
      g.want4 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ip4});
      g.want6 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ip6});
      break;
    case FwdMode::Ipip:
      g.want4 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 4, uint16_t(ip4.size()), 0x28, true), ip4});
      g.want6 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 41, uint16_t(ip6.size()), 0x28, h6), ip6});
      break;
    case FwdMode::Gue: {
      const uint16_t l4 = uint16_t(8 + ip4.size()), l6 = uint16_t(8 + ip6.size());
      g.want4 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 17, l4, 0x28, true),
                     udpHdr(uint16_t(0x8000 | (h4 & 0x7fff)), 6080, l4), ip4});  // UDP checksum 0 (IPv4)
      g.want6 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 17, l6, 0x28, h6),
                     udpHdr(uint16_t(0x8000 | (h6 & 0x7fff)), 6080, l6), ip6});
      auto l = test::locate(g.want6);
      test::put16(g.want6, 14 + 40 + 6, *test::l4Checksum(g.want6, *l));
      break;
    }
    case FwdMode::Nat: {
      auto b4 = clientTcp4(uint16_t(ip4.size() - 40));
      b4.eth(kLanMac, kB4Mac).ipv4(kClient4, kB4).ttl(63).tcp(kCport4, 8080, kTcpSyn);
      g.want4 = b4.build();
      auto b6 = clientUdp6(uint16_t(ip6.size() - 48));
      b6.eth(kLanMac, kB6Mac).ipv6(kClient6, kB6).ttl(63).udp(kCport6, 5353);
      g.want6 = b6.build();
      break;
    }
  }
  return g;
}

void expectFrame(const Frame& got, const Frame& want, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  if (got == want) return;
  for (size_t i = 0; i < std::min(got.size(), want.size()); i++) {
    if (got[i] != want[i]) {
      ADD_FAILURE() << what << ": first difference at byte " << i << ": got 0x" << std::hex << int(got[i])
                    << " want 0x" << int(want[i]);
      return;
    }
  }
  ADD_FAILURE() << what << ": lengths differ";
}

// Checksums of every layer of an output frame, by the builder's independent code.
void expectChecksums(FwdMode mode, const Frame& f, Family outer, const std::string& what) {
  if (mode == FwdMode::Dsr || mode == FwdMode::Nat) {
    if (outer == Family::V4) {
      EXPECT_TRUE(test::ipv4HeaderChecksumOk(f)) << what;
    }
    EXPECT_TRUE(test::l4ChecksumOk(f)) << what;
    return;
  }
  const size_t ip = outer == Family::V4 ? 20 : 40;
  const size_t inner = 14 + ip + (mode == FwdMode::Gue ? 8 : 0);
  if (outer == Family::V4) {
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(f, 14)) << what;
  }
  if (mode == FwdMode::Gue && outer == Family::V6) {
    EXPECT_TRUE(test::l4ChecksumOk(f)) << what << " outer UDP";
  }
  if (mode == FwdMode::Gue && outer == Family::V4) {
    EXPECT_EQ(get16(f, 14 + 20 + 6), 0) << what;
  }
  auto l = test::locateAt(f, inner);
  ASSERT_TRUE(l) << what;
  if (l->family == Family::V4) {
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(f, inner)) << what;
  }
  EXPECT_TRUE(test::l4ChecksumOkAt(f, inner)) << what << " inner L4";
}

class Forwarding : public ::testing::TestWithParam<FwdMode> {};

TEST_P(Forwarding, GoldenTcp4AndUdp6) {
  const FwdMode mode = GetParam();
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(mode));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  Golden g = golden(mode, clientTcp4().build(), clientUdp6().build());
  auto o4 = runOne(*w, *s, g.in4);
  auto o6 = runOne(*w, *s, g.in6);
  ASSERT_TRUE(o4 && o6);
  EXPECT_EQ(o4->port, kLan);
  EXPECT_EQ(o6->port, kLan);
  expectFrame(o4->bytes, g.want4, "tcp4");
  expectFrame(o6->bytes, g.want6, "udp6");
  expectChecksums(mode, o4->bytes, Family::V4, "tcp4");
  expectChecksums(mode, o6->bytes, Family::V6, "udp6");
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 2u);
}

TEST_P(Forwarding, VlanTaggedInputLeavesUntagged) {
  const FwdMode mode = GetParam();
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(mode));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  Golden g = golden(mode, clientTcp4().vlan(100).build(), clientUdp6().vlan(200, test::kEtherTypeVlan, 5).build());
  ASSERT_EQ(get16(g.in4, 12), 0x8100);
  auto o4 = runOne(*w, *s, g.in4);
  auto o6 = runOne(*w, *s, g.in6);
  ASSERT_TRUE(o4 && o6);
  expectFrame(o4->bytes, g.want4, "tcp4 vlan");
  expectFrame(o6->bytes, g.want6, "udp6 vlan");
  expectChecksums(mode, o4->bytes, Family::V4, "tcp4 vlan");
  expectChecksums(mode, o6->bytes, Family::V6, "udp6 vlan");
}

TEST_P(Forwarding, EthernetPaddingTrimmed) {
  const FwdMode mode = GetParam();
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(mode));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  // 54-byte IPv4 TCP (no payload) padded to 64; 62-byte IPv6 UDP padded to 80 (padding bytes 0xee
  // would show up if copied; the builder pads with zeros, so also compare lengths).
  const Frame in4 = clientTcp4(0).padTo(64).build();
  const Frame in6 = clientUdp6(0).padTo(80).build();
  ASSERT_EQ(in4.size(), 64u);
  Golden g = golden(mode, in4, in6);
  auto o4 = runOne(*w, *s, in4);
  auto o6 = runOne(*w, *s, in6);
  ASSERT_TRUE(o4 && o6);
  expectFrame(o4->bytes, g.want4, "tcp4 padded");
  expectFrame(o6->bytes, g.want6, "udp6 padded");
  if (mode == FwdMode::Ipip) {
    EXPECT_EQ(o4->bytes.size(), 14u + 20 + 40);
    EXPECT_EQ(get16(o4->bytes, 16), 40 + 20);  // outer total length
  }
  if (mode == FwdMode::Dsr || mode == FwdMode::Nat) {
    EXPECT_EQ(o4->bytes.size(), 54u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, Forwarding,
                         ::testing::Values(FwdMode::Dsr, FwdMode::Ipip, FwdMode::Gue, FwdMode::Nat),
                         [](const auto& p) { return std::string(toString(p.param)); });

// Tunnels across families: IPv4 VIP to an IPv6 backend (RFC 2473, next header 4) and IPv6 VIP
// to an IPv4 backend (RFC 4213 style, protocol 41, DF set: IPv6 is never fragmented en route).
TEST(Tunnel, CrossFamilyGolden) {
  for (FwdMode mode : {FwdMode::Ipip, FwdMode::Gue}) {
    SCOPED_TRACE(std::string(toString(mode)));
    Config c = fwdConfig(mode);
    c.vips[0].backends[0] = makeBackend(kB6, kB6Mac);
    c.vips[1].backends[0] = makeBackend(kB4, kB4Mac);
    SnapshotBuilder sb;
    auto s = build(sb, c);
    ASSERT_TRUE(s);
    auto w = makeWorker();
    const Frame in4 = clientTcp4().build(), in6 = clientUdp6().build();
    const Frame ip4 = ipPacketOf(in4), ip6 = ipPacketOf(in6);
    const uint32_t h4 = flowHash4(kClient4, kVip4, kCport4, 80, kProtoTcp);
    const uint32_t h6 = flowHash6(kClient6, kVip6, kCport6, 53, kProtoUdp);
    Frame want4, want6;
    if (mode == FwdMode::Ipip) {
      want4 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 4, uint16_t(ip4.size()), 0x28, h4), ip4});
      // Outer IPv4 ID 1: the worker's second tunnelled packet (RFC 6864 counter).
      want6 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 41, uint16_t(ip6.size()), 0x28, true, 64, 1), ip6});
    } else {
      const uint16_t l4 = uint16_t(8 + ip4.size()), l6 = uint16_t(8 + ip6.size());
      want4 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 17, l4, 0x28, h4),
                   udpHdr(uint16_t(0x8000 | (h4 & 0x7fff)), 6080, l4), ip4});
      test::put16(want4, 14 + 40 + 6, *test::l4Checksum(want4, *test::locate(want4)));
      want6 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 17, l6, 0x28, true, 64, 1),
                   udpHdr(uint16_t(0x8000 | (h6 & 0x7fff)), 6080, l6), ip6});
    }
    auto o4 = runOne(*w, *s, in4);
    auto o6 = runOne(*w, *s, in6);
    ASSERT_TRUE(o4 && o6);
    expectFrame(o4->bytes, want4, "tcp4 in v6");
    expectFrame(o6->bytes, want6, "udp6 in v4");
    expectChecksums(mode, o4->bytes, Family::V6, "tcp4 in v6");
    expectChecksums(mode, o6->bytes, Family::V4, "udp6 in v4");
    // The too-big threshold follows the outer family: 40 (+8) bytes for an IPv6 outer header.
    const uint16_t room = uint16_t(1500 - 40 - (mode == FwdMode::Gue ? 8 : 0));
    auto fits = runOne(*w, *s, clientTcp4(uint16_t(room - 40)).build());
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->port, kLan);
    auto icmp = runOne(*w, *s, clientTcp4(uint16_t(room - 39)).build());
    ASSERT_TRUE(icmp);
    EXPECT_EQ(icmp->port, kWan);
    EXPECT_EQ(icmp->bytes[14 + 20], 3);
    EXPECT_EQ(get16(icmp->bytes, 14 + 20 + 6), room);
  }
}

TEST(Gue, SourcePortStablePerFlowAndInUpperHalf) {
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(FwdMode::Gue));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  // One flow: SYN, ACK, data of other sizes: one source port.
  std::set<uint16_t> one;
  const std::vector<std::pair<uint8_t, int>> pkts = {{kTcpSyn, 0}, {kTcpAck, 0}, {kTcpAck, 500}, {uint8_t(kTcpAck | kTcpFin), 1}};
  for (auto [flags, len] : pkts) {
    auto o = runOne(*w, *s, clientTcp4(uint16_t(len)).tcp(kCport4, 80, flags).build());
    ASSERT_TRUE(o);
    one.insert(get16(o->bytes, 34));
  }
  EXPECT_EQ(one.size(), 1u);
  // Many flows: all in 32768..65535, and spread.
  std::set<uint16_t> ports;
  for (uint32_t i = 0; i < 200; i++) {
    auto o = runOne(*w, *s, tcpTo(clientAddr(i), uint16_t(3000 + i)));
    ASSERT_TRUE(o);
    const uint16_t sp = get16(o->bytes, 34);
    EXPECT_GE(sp, 32768);
    EXPECT_EQ(get16(o->bytes, 36), 6080);
    ports.insert(sp);
  }
  EXPECT_GT(ports.size(), 190u);
}

TEST(Nat, ReverseRewrittenToVip) {
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(FwdMode::Nat));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  const uint8_t synack = kTcpSyn | kTcpAck;
  const Frame in4 = PacketBuilder()
                        .eth(kB4Mac, kLanMac)
                        .ipv4(kB4, kClient4)
                        .ipId(7)
                        .df()
                        .tcp(8080, kCport4, synack)
                        .tcpSeq(5000, 1001)
                        .payload(50)
                        .build();
  const Frame want4 = PacketBuilder()
                          .eth(kWanMac, kGwMac)
                          .ipv4(kVip4, kClient4)
                          .ttl(63)
                          .ipId(7)
                          .df()
                          .tcp(80, kCport4, synack)
                          .tcpSeq(5000, 1001)
                          .payload(50)
                          .build();
  const Frame in6 = PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kB6, kClient6).udp(5353, kCport6).payload(33).build();
  const Frame want6 =
      PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).ttl(63).udp(53, kCport6).payload(33).build();
  auto o4 = runOne(*w, *s, in4, 0, kLan);
  auto o6 = runOne(*w, *s, in6, 0, kLan);
  ASSERT_TRUE(o4 && o6);
  EXPECT_EQ(o4->port, kWan);
  EXPECT_EQ(o6->port, kWan);
  expectFrame(o4->bytes, want4, "reverse tcp4");
  expectFrame(o6->bytes, want6, "reverse udp6");
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o4->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o4->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o6->bytes));
  EXPECT_EQ(ctr(*w, Ctr::NatReverse), 2u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 0u);  // stateless
  EXPECT_EQ(w->flows4->size(), 0u);
  // A reply from the wrong source port is not ours: no open relay.
  runOne(*w, *s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kClient4).tcp(8081, kCport4, kTcpAck).build(), 0, kLan);
  expectOnlyDrop(*w, Drop::NoVip);
}

TEST(Nat, TtlDecrementAndExpiry) {
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(FwdMode::Nat));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  auto o = runOne(*w, *s, clientTcp4().ttl(2).build());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->bytes[14 + 8], 1);
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  EXPECT_FALSE(runOne(*w, *s, clientTcp4().ttl(1).build()));
  EXPECT_FALSE(runOne(*w, *s, clientTcp4().ttl(0).build()));
  EXPECT_FALSE(runOne(*w, *s, clientUdp6().ttl(1).build()));
  // Reverse direction too.
  EXPECT_FALSE(runOne(*w, *s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kClient4).ttl(1).tcp(8080, kCport4, kTcpAck).build(), 0, kLan));
  expectOnlyDrop(*w, Drop::TtlExceeded, 4);
  // DSR and tunnels do not touch the TTL.
  auto sd = build(sb, fwdConfig(FwdMode::Dsr));
  auto od = runOne(*w, *sd, clientTcp4().ttl(1).build());
  ASSERT_TRUE(od);
  EXPECT_EQ(od->bytes[14 + 8], 1);
}

TEST(Nat, UdpChecksumCornerCases) {
  SnapshotBuilder sb;
  Config c = fwdConfig(FwdMode::Nat);
  c.vips.push_back(c.vips[1]);
  c.vips[2].address = ipAddr("192.0.2.2");
  c.vips[2].backends[0] = makeBackend(ipAddr("10.0.0.12"), kB6Mac, 1, 5353);
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  auto w = makeWorker();
  // IPv4 UDP without checksum stays without one; with one, it stays valid.
  Frame nock = PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, ipAddr("192.0.2.2")).udp(1111, 53).payload(20).build();
  test::put16(nock, 14 + 20 + 6, 0);
  auto o = runOne(*w, *s, nock);
  ASSERT_TRUE(o);
  EXPECT_EQ(get16(o->bytes, 14 + 20 + 6), 0);
  EXPECT_EQ(get16(o->bytes, 14 + 20 + 2), 5353);
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o->bytes));
  // Many source ports: every rewritten checksum verifies and is never 0.
  for (uint16_t sp = 1; sp < 600; sp++) {
    auto r = runOne(*w, *s, PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, ipAddr("192.0.2.2")).udp(sp, 53).payload(sp % 7).build());
    ASSERT_TRUE(r);
    ASSERT_TRUE(test::l4ChecksumOk(r->bytes)) << sp;
  }
}

// ---------------------------------------------------------------------------------------------
// (d) Drop verdicts, one per test

struct DropFixture : ::testing::Test {
  void SetUp() override {
    s = build(sb, fwdConfig(FwdMode::Ipip));
    ASSERT_TRUE(s);
    w = makeWorker();
  }
  // Sends one frame, expects it dropped for reason `d` and nothing else counted as a drop.
  void expectDropped(const Frame& f, Drop d, const Snapshot* snap = nullptr, uint16_t ingress = kWan) {
    auto out = run(*w, snap ? *snap : *s, {f}, 0, ingress);
    EXPECT_TRUE(out.empty()) << "expected drop " << toString(d);
    expectOnlyDrop(*w, d);
    EXPECT_EQ(ctr(*w, Ctr::RxPackets), 1u);
    EXPECT_EQ(ctr(*w, Ctr::RxBytes), f.size());
  }
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<WorkerState> w;
};

TEST_F(DropFixture, TooShort) { expectDropped(Frame(10, 0xab), Drop::TooShort); }

TEST_F(DropFixture, TooShortIpHeader) {
  Frame f = clientTcp4().build();
  f.resize(14 + 12);
  expectDropped(f, Drop::TooShort);
}

TEST_F(DropFixture, NotIp) {
  expectDropped(PacketBuilder().eth(kClientMac, kWanMac).etherType(test::kEtherTypeArp).payload(28).build(), Drop::NotIp);
}

TEST_F(DropFixture, BadIpHeader) { expectDropped(clientTcp4().badIpChecksum().build(), Drop::BadIpHeader); }

TEST_F(DropFixture, BadLength) { expectDropped(clientTcp4().ipTotalLength(1000).build(), Drop::BadLength); }

TEST_F(DropFixture, Fragment) { expectDropped(clientTcp4().mf().build(), Drop::Fragment); }

TEST_F(DropFixture, UnsupportedProto) {
  expectDropped(PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).l4Raw(test::kIpProtoGre, {0, 0, 0x08, 0}).build(),
                Drop::UnsupportedProto);
}

TEST_F(DropFixture, Icmp) {
  // Echo to a VIP is answered (exception_test.cc); to another address, on a port without an
  // exception path, it is still counted here.
  expectDropped(PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, ipAddr("192.0.2.99")).icmpEcho(1, 1).payload(8).build(),
                Drop::Icmp);
}

TEST_F(DropFixture, NoVip) {
  // Wrong address, wrong port, wrong protocol: all not VIPs.
  expectDropped(tcpTo(kClient4, 1000, kTcpSyn, 80, ipAddr("192.0.2.99")), Drop::NoVip);
  run(*w, *s, {tcpTo(kClient4, 1000, kTcpSyn, 81), udpTo(kClient4, 1000, 80)});
  expectOnlyDrop(*w, Drop::NoVip, 3);
}

TEST_F(DropFixture, NoBackendEmptyVip) {
  Config c = fwdConfig(FwdMode::Ipip);
  c.vips[0].backends.clear();
  auto empty = build(sb, c);
  ASSERT_TRUE(empty);
  expectDropped(clientTcp4().build(), Drop::NoBackend, empty.get());
  EXPECT_EQ(w->flows4->size(), 0u);
}

TEST_F(DropFixture, NoBackendAllUnhealthy) {
  Snapshot down = *s;
  for (auto& b : down.backends) b.state = BackendState::Unhealthy;
  for (auto& v : down.vips) std::fill(v.maglev.begin(), v.maglev.end(), kNoBackend);
  // Established under the healthy snapshot, then every backend fails.
  ASSERT_TRUE(runOne(*w, *s, clientTcp4().build()));
  EXPECT_FALSE(runOne(*w, down, clientTcp4().tcp(kCport4, 80, kTcpAck).build()));
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), 1u);
  EXPECT_FALSE(runOne(*w, down, tcpTo(kClient4, 999)));
  expectOnlyDrop(*w, Drop::NoBackend, 2);
  // Round robin with an empty sequence, too.
  Config c = schedConfig(Scheduler::RoundRobin, {1});
  c.vips[0].backends.clear();
  auto rr = build(sb, c);
  ASSERT_TRUE(rr);
  EXPECT_FALSE(runOne(*w, *rr, tcpTo(kClient4, 999)));
  expectOnlyDrop(*w, Drop::NoBackend, 3);
}

TEST_F(DropFixture, TtlExceeded) {
  auto nat = build(sb, fwdConfig(FwdMode::Nat));
  expectDropped(clientTcp4().ttl(1).build(), Drop::TtlExceeded, nat.get());
}

TEST_F(DropFixture, TooBigWithoutDf) {
  // 1481-byte IPv4 packet + 20 bytes of IPIP > 1500, DF clear: dropped (no outer fragmentation).
  const Frame f = clientTcp4(1441).df(false).build();
  ASSERT_EQ(get16(f, 16), 1481);
  expectDropped(f, Drop::TooBig);
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 0u);
  // One byte less fits exactly.
  ASSERT_TRUE(runOne(*w, *s, clientTcp4(1440).df(false).tcp(kCport4 + 1, 80, kTcpSyn).build()));
}

TEST_F(DropFixture, NoRoute) {
  Config c = fwdConfig(FwdMode::Nat);
  c.ports[0].gateway4.reset();
  auto nat = build(sb, c);
  ASSERT_TRUE(nat);
  expectDropped(PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kClient4).tcp(8080, kCport4, kTcpAck).build(), Drop::NoRoute,
                nat.get(), kLan);
}

TEST_F(DropFixture, NoHeadroom) {
  auto out = run(*w, *s, {clientTcp4().build()}, 0, kWan, /*no_headroom=*/true);
  EXPECT_TRUE(out.empty());
  expectOnlyDrop(*w, Drop::NoHeadroom);
}

TEST_F(DropFixture, RxCountersAndMixedBurst) {
  std::vector<Frame> fs = {clientTcp4().build(), Frame(10, 0), clientUdp6().build(), clientTcp4().mf().build(),
                           tcpTo(kClient4, 1, kTcpSyn, 9)};
  uint64_t bytes = 0;
  for (auto& f : fs) bytes += f.size();
  auto out = run(*w, *s, fs);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(ctr(*w, Ctr::RxPackets), 5u);
  EXPECT_EQ(ctr(*w, Ctr::RxBytes), bytes);
  EXPECT_EQ(w->counters.totalDrops(), 3u);
  EXPECT_EQ(w->counters.get(Drop::TooShort), 1u);
  EXPECT_EQ(w->counters.get(Drop::Fragment), 1u);
  EXPECT_EQ(w->counters.get(Drop::NoVip), 1u);
  // TX is counted by workerMain when the NIC accepts the packets, not by processBurst.
  EXPECT_EQ(ctr(*w, Ctr::TxPackets), 0u);
}

// ICMP "fragmentation needed" for DF IPv4 over the tunnel MTU: golden reply.
TEST_F(DropFixture, IcmpTooBigIpv4) {
  const Frame in = clientTcp4(1460).tcp(kCport4, 80, kTcpAck).build();  // 1500-byte IP packet, DF
  ASSERT_EQ(get16(in, 16), 1500);
  auto out = run(*w, *s, {in});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kWan);  // back where it came from
  const Frame quote(in.begin() + 14, in.begin() + 14 + 548);
  Frame icmp = {3, 4, 0, 0, 0, 0, uint8_t(1480 >> 8), uint8_t(1480 & 0xff)};
  icmp.insert(icmp.end(), quote.begin(), quote.end());
  test::put16(icmp, 2, test::checksumFromSum(test::onesSum(icmp)));
  const Frame want = cat({ethHdr(kClientMac, kWanMac, 0x0800),
                          ipv4Hdr(kVip4, kClient4, kProtoIcmp, uint16_t(icmp.size()), 0, false), icmp});
  ASSERT_EQ(want.size(), 14u + 576);
  expectFrame(out[0].bytes, want, "icmp too big v4");
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(out[0].bytes));
  EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 1u);
  expectOnlyDrop(*w, Drop::TooBig);  // the original packet is not forwarded
}

TEST_F(DropFixture, IcmpTooBigIpv4Gue) {
  auto gue = build(sb, fwdConfig(FwdMode::Gue));
  auto out = run(*w, *gue, {clientTcp4(1460 - 7).build()});  // 1493 + 28 > 1500
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes[14 + 20], 3);
  EXPECT_EQ(get16(out[0].bytes, 14 + 20 + 6), 1500 - 28);
  // 1472 fits exactly.
  auto fits = run(*w, *gue, {clientTcp4(1432).build()});
  ASSERT_EQ(fits.size(), 1u);
  EXPECT_EQ(fits[0].port, kLan);
}

TEST_F(DropFixture, IcmpTooBigIpv6) {
  const Frame in = clientUdp6(1432).build();  // 1480-byte IPv6 packet; + 40 > 1500
  ASSERT_EQ(in.size(), 14u + 1480);
  auto out = run(*w, *s, {in});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kWan);
  const Frame quote(in.begin() + 14, in.begin() + 14 + 1232);
  Frame icmp = {2, 0, 0, 0, 0, 0, uint8_t(1460 >> 8), uint8_t(1460 & 0xff)};
  icmp.insert(icmp.end(), quote.begin(), quote.end());
  Frame want = cat({ethHdr(kClientMac, kWanMac, 0x86dd), ipv6Hdr(kVip6, kClient6, kProtoIcmp6, uint16_t(icmp.size()), 0, 0),
                    icmp});
  auto l = test::locate(want);
  test::put16(want, 14 + 40 + 2, *test::l4Checksum(want, *l));
  ASSERT_EQ(want.size(), 14u + 1280);
  expectFrame(out[0].bytes, want, "icmpv6 packet too big");
  EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 1u);
  expectOnlyDrop(*w, Drop::TooBig);
}

TEST_F(DropFixture, IcmpTooBigFromVlanInput) {
  // Tagged input: the reply is untagged, and quotes the IP packet (not the tag).
  const Frame in = clientTcp4(1460).vlan(7).build();
  auto out = run(*w, *s, {in});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].bytes.size(), 14u + 576);
  EXPECT_EQ(get16(out[0].bytes, 12), 0x0800);
  EXPECT_TRUE(std::equal(in.begin() + 18, in.begin() + 18 + 548, out[0].bytes.begin() + 14 + 28));
  EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));
}

}  // namespace
}  // namespace l4lb::dataplane
