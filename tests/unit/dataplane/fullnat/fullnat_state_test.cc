// One worker's share of the full-NAT source pairs: allocation, exhaustion, quiet time,
// ownership among workers, and the pair as the index stores it.
#include "dataplane/fullnat/fullnat_state.h"

#include <arpa/inet.h>

#include "dataplane/flow_query.h"
#include "dataplane/fullnat/fullnat_path.h"
#include "dataplane/lookup.h"

#include <gtest/gtest.h>

#include <set>

#include "packet_builder.h"

namespace l4lb::dataplane {
namespace {

std::vector<SnapSnatAddr> addrs(uint16_t lo, uint16_t hi, uint32_t quiet) {
  return {{test::ipAddr("198.18.0.2"), lo, hi, quiet}, {test::ipAddr("2001:db8::2"), lo, hi, quiet}};
}

TEST(FullNatState, EveryOwnedPairOnceThenExhausted) {
  std::string err;
  auto st = FullNatState::create(addrs(1000, 1099, 100), 0, 1, SOCKET_ID_ANY, err);
  ASSERT_TRUE(st) << err;
  std::set<uint16_t> got;
  SnatPair p;
  for (int i = 0; i < 100; i++) {
    ASSERT_TRUE(st->alloc(0, 5, p));
    EXPECT_EQ(p.addr, 0u);
    EXPECT_TRUE(got.insert(p.port).second) << p.port;
    EXPECT_EQ(st->unpackPair(st->packPair(p)).port, p.port);
  }
  EXPECT_FALSE(st->alloc(0, 5, p));
  EXPECT_TRUE(st->alloc(1, 5, p));  // the other address has its own ports
  EXPECT_EQ(st->unpackPair(st->packPair(p)).addr, 1u);
  EXPECT_EQ(st->usage(0, 5).in_use, 100u);
}

TEST(FullNatState, AFreedPairWaitsOutTheQuietTimeAcrossTheClockWrap) {
  std::string err;
  auto st = FullNatState::create(addrs(1000, 1001, 100), 0, 1, SOCKET_ID_ANY, err);
  ASSERT_TRUE(st) << err;
  SnatPair a, b, c;
  ASSERT_TRUE(st->alloc(0, 1, a));
  ASSERT_TRUE(st->alloc(0, 1, b));
  const uint32_t t = 0xffffffc0u;  // the clock wraps within the quiet time
  st->release(a, t);
  EXPECT_EQ(st->usage(0, t).quiet, 1u);
  EXPECT_FALSE(st->alloc(0, t + 99, c));
  ASSERT_TRUE(st->alloc(0, t + 100, c));
  EXPECT_EQ(c.port, a.port);
}

TEST(FullNatState, WorkersOwnDisjointPortsAndAgreeOnTheOwner) {
  std::string err;
  std::set<uint16_t> all;
  for (uint16_t w = 0; w < 3; w++) {
    auto st = FullNatState::create(addrs(2000, 2009, 0), w, 3, SOCKET_ID_ANY, err);
    ASSERT_TRUE(st) << err;
    SnatPair p;
    while (st->alloc(0, 1, p)) {
      EXPECT_EQ(st->ownerOf(0, p.port), w);
      EXPECT_TRUE(all.insert(p.port).second) << "port " << p.port << " given to two workers";
      FullNatSession& s = st->session(0, p.port);
      s.used = true;  // each port has its own session slot
      SnatPair q;
      EXPECT_EQ(&st->slot(st->packPair(p) - 1, q), &s);
      EXPECT_EQ(q.port, p.port);
    }
  }
  EXPECT_EQ(all.size(), 10u);
}

TEST(FullNatState, UsageCountsInUseFreeAndQuiet) {
  std::string err;
  auto st = FullNatState::create(addrs(1000, 1009, 100), 0, 1, SOCKET_ID_ANY, err);
  ASSERT_TRUE(st) << err;
  std::vector<SnatPair> got(6);
  for (SnatPair& p : got) ASSERT_TRUE(st->alloc(0, 1, p));
  // Released at 1000, 1050 and 1080: quiet for 100 ms each, so at 1120 only the first is out.
  st->release(got[0], 1000);
  st->release(got[1], 1050);
  st->release(got[2], 1080);
  for (uint32_t now : {1080u, 1099u, 1100u, 1120u, 1149u, 1150u, 1179u, 1180u, 5000u}) {
    const FullNatState::Usage u = st->usage(0, now);
    // The reference: walk the releases.
    const uint32_t quiet = uint32_t(now - 1000 < 100) + uint32_t(now - 1050 < 100) + uint32_t(now - 1080 < 100);
    EXPECT_EQ(u.in_use, 3u) << now;
    EXPECT_EQ(u.waiting, 7u) << now;
    EXPECT_EQ(u.quiet, quiet) << now;
  }
  EXPECT_EQ(st->usage(1, 1120).in_use, 0u);  // the other address is untouched
  EXPECT_EQ(st->usage(1, 1120).waiting, 10u);
}

TEST(FullNatState, TheWorkerPublishesItsUsagePerAddress) {
  std::string err;
  WorkerState w;
  w.fullnat = FullNatState::create(addrs(1000, 1009, 100), 1, 2, SOCKET_ID_ANY, err);
  ASSERT_TRUE(w.fullnat) << err;
  w.snat_ports.resize(2);
  SnatPair a, b;
  ASSERT_TRUE(w.fullnat->alloc(0, 1, a));
  ASSERT_TRUE(w.fullnat->alloc(0, 1, b));
  ASSERT_TRUE(w.fullnat->alloc(1, 1, b));
  w.fullnat->release(a, 2000);
  publishSnatUsage(w, 2050);
  EXPECT_EQ(w.snat_published_ms, 2050u);
  // Worker 1 of 2 owns 5 of each address's 10 ports.
  EXPECT_EQ(w.snat_ports[0].in_use, 1u);
  EXPECT_EQ(w.snat_ports[0].free, 3u);
  EXPECT_EQ(w.snat_ports[0].quiet, 1u);
  EXPECT_EQ(w.snat_ports[1].in_use, 1u);
  EXPECT_EQ(w.snat_ports[1].free, 4u);
  EXPECT_EQ(w.snat_ports[1].quiet, 0u);
  publishSnatUsage(w, 2100);  // the quiet time is over
  EXPECT_EQ(w.snat_ports[0].free, 4u);
  EXPECT_EQ(w.snat_ports[0].quiet, 0u);
}

// explain's question (flow_query.h) on a full-NAT worker: the session's pair from the index.
TEST(FullNatState, TheFlowQueryFindsTheSessionsPair) {
  std::string err;
  WorkerState w;
  w.flows4 = FlowTable::create("fq4", 1024, sizeof(FlowKey4), SOCKET_ID_ANY, err);
  w.flows6 = FlowTable::create("fq6", 1024, sizeof(FlowKey6), SOCKET_ID_ANY, err);
  w.fullnat = FullNatState::create(addrs(3000, 3099, 100), 1, 4, SOCKET_ID_ANY, err);
  ASSERT_TRUE(w.flows4 && w.flows6 && w.fullnat) << err;
  SnatPair p;
  ASSERT_TRUE(w.fullnat->alloc(1, 1, p));
  ASSERT_TRUE(w.fullnat->alloc(1, 1, p));  // the second pair: not the first position
  FlowKey4 k{}, other{};
  const IpAddr c = test::ipAddr("198.18.5.5"), vip = test::ipAddr("198.18.1.10");
  makeFlowKey(k, c.bytes.data(), vip.bytes.data(), htons(40000), htons(80), 6);
  makeFlowKey(other, c.bytes.data(), vip.bytes.data(), htons(40001), htons(80), 6);
  const FlowValue v{w.fullnat->packPair(p), FlowState::TcpEstablished, 1};
  ASSERT_TRUE(w.fullnat->index(false).upsert(&k, FlowTable::indexHash(&k, sizeof(k)), v.pack()));
  FlowQueryAnswer a;
  ASSERT_TRUE(postFlowQuery(w.query, false, &k, sizeof(k)));
  answerFlowQuery(w);
  ASSERT_TRUE(takeFlowAnswer(w.query, a));
  EXPECT_TRUE(a.snat_hit);
  EXPECT_FALSE(a.hit);  // the flow table itself holds nothing
  EXPECT_EQ(a.snat_addr, 1u);
  EXPECT_EQ(a.snat_port, 3005);  // worker 1 of 4 owns 3001, 3005, ...
  EXPECT_EQ(p.port, 3005);
  ASSERT_TRUE(postFlowQuery(w.query, false, &other, sizeof(other)));
  answerFlowQuery(w);
  ASSERT_TRUE(takeFlowAnswer(w.query, a));
  EXPECT_FALSE(a.snat_hit);
}

}  // namespace
}  // namespace l4lb::dataplane
