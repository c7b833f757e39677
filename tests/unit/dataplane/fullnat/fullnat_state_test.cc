// One worker's share of the full-NAT source pairs: allocation, exhaustion, quiet time,
// ownership among workers, and the pair as the index stores it.
#include "dataplane/fullnat/fullnat_state.h"

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

}  // namespace
}  // namespace l4lb::dataplane
