// Schedulers through the worker's burst: Maglev (consistent, weighted), source hash, round robin
// and weighted round robin pick new flows' backends; the per-burst VIP memo answers each packet's
// own VIP.
#include "worker_fixture.h"

namespace l4lb::dataplane {
namespace {

using namespace wtest;  // NOLINT(google-build-using-namespace): the shared fixture

TEST(Scheduler, MaglevConsistentAndWeighted) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 2, 3}));
  ASSERT_TRUE(s);
  // 3000 SYNs are 3000 embryonic entries: a table whose quota (25 %) holds them all.
  auto w = makeWorker(16384);
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

}  // namespace
}  // namespace l4lb::dataplane
