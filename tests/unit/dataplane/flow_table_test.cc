#include "dataplane/flow_table.h"

#include <gtest/gtest.h>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>

namespace l4lb::dataplane {
namespace {

FlowKey4 key(uint32_t i) {
  FlowKey4 k;
  k.saddr = rte_cpu_to_be_32(0xc6120000u | (i & 0xffff));  // 198.18.x.x
  k.daddr = rte_cpu_to_be_32(0xc612010au);
  k.sport = rte_cpu_to_be_16(uint16_t(1024 + (i >> 16)));
  k.dport = rte_cpu_to_be_16(80);
  k.proto = 6;
  return k;
}

std::unique_ptr<FlowTable> make(uint32_t cap) {
  static int n = 0;
  std::string err;
  auto t = FlowTable::create("ft_test_" + std::to_string(n++), cap, sizeof(FlowKey4), 0, err);
  EXPECT_TRUE(t) << err;
  return t;
}

bool lookup(FlowTable& t, const FlowKey4& k, FlowValue& v) {
  const void* keys[1] = {&k};
  hash_sig_t sig[1] = {FlowTable::hashKey(&k, sizeof(k))};
  uint64_t val[1];
  uint64_t hit = t.lookupBulk(keys, sig, 1, val);
  if (hit & 1) v = FlowValue::unpack(val[0]);
  return hit & 1;
}

TEST(FlowValue, PacksAndUnpacks) {
  FlowValue v{0xabcdef, FlowState::TcpClosing, 0xfedcba98};
  FlowValue u = FlowValue::unpack(v.pack());
  EXPECT_EQ(u.backend_id, 0xabcdefu);
  EXPECT_EQ(u.state, FlowState::TcpClosing);
  EXPECT_EQ(u.last_seen_ms, 0xfedcba98u);
}

TEST(FlowState, TcpTransitions) {
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, kTcpSyn), FlowState::TcpSyn);
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpEstablished, true, kTcpAck | kTcpFin), FlowState::TcpClosing);
  EXPECT_EQ(nextState(FlowState::TcpEstablished, true, kTcpRst), FlowState::TcpClosing);
  EXPECT_EQ(nextState(FlowState::TcpClosing, true, kTcpAck), FlowState::TcpClosing);
  EXPECT_EQ(nextState(FlowState::TcpEstablished, true, kTcpSyn), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpSyn, false, 0), FlowState::Udp);
}

TEST(FlowTimeouts, PerStateAndWrapSafe) {
  FlowTimeouts t{100, 1000, 50, 300};
  EXPECT_FALSE(isExpired({1, FlowState::TcpSyn, 0}, 100, t));
  EXPECT_TRUE(isExpired({1, FlowState::TcpSyn, 0}, 101, t));
  EXPECT_FALSE(isExpired({1, FlowState::TcpEstablished, 0}, 1000, t));
  EXPECT_TRUE(isExpired({1, FlowState::TcpEstablished, 0}, 1001, t));
  EXPECT_TRUE(isExpired({1, FlowState::TcpClosing, 0}, 51, t));
  EXPECT_FALSE(isExpired({1, FlowState::Udp, 0}, 300, t));
  // The millisecond clock wraps every 49 days: 0xffffff00 -> 0x10 is 272 ms later.
  EXPECT_FALSE(isExpired({1, FlowState::Udp, 0xffffff00u}, 0x10, t));
  EXPECT_TRUE(isExpired({1, FlowState::TcpSyn, 0xffffff00u}, 0x10, t));
}

TEST(FlowTable, InsertLookupOverwrite) {
  auto t = make(1024);
  FlowKey4 k = key(1);
  FlowValue v;
  EXPECT_FALSE(lookup(*t, k, v));
  ASSERT_TRUE(t->upsert(&k, FlowTable::hashKey(&k, sizeof(k)), {7, FlowState::TcpSyn, 5}));
  ASSERT_TRUE(lookup(*t, k, v));
  EXPECT_EQ(v.backend_id, 7u);
  ASSERT_TRUE(t->upsert(&k, FlowTable::hashKey(&k, sizeof(k)), {9, FlowState::TcpEstablished, 6}));
  ASSERT_TRUE(lookup(*t, k, v));
  EXPECT_EQ(v.backend_id, 9u);
  EXPECT_EQ(v.state, FlowState::TcpEstablished);
  EXPECT_EQ(t->size(), 1u);
  FlowKey4 other = key(2);
  EXPECT_FALSE(lookup(*t, other, v));
}

TEST(FlowTable, CapacityIsExactAndFullInsertFails) {
  auto t = make(1024);
  uint32_t ok = 0;
  for (uint32_t i = 0; i < 2000; i++) {
    FlowKey4 k = key(i);
    if (t->upsert(&k, FlowTable::hashKey(&k, sizeof(k)), {1, FlowState::Udp, 0})) ok++;
  }
  EXPECT_EQ(ok, 1024u);  // extendable buckets: every configured entry usable, none more
  EXPECT_EQ(t->size(), 1024u);
  // Existing keys can still be updated when full.
  FlowKey4 k0 = key(0);
  EXPECT_TRUE(t->upsert(&k0, FlowTable::hashKey(&k0, sizeof(k0)), {2, FlowState::Udp, 0}));
}

TEST(FlowTable, SweepRemovesOnlyExpiredWithinBudget) {
  auto t = make(4096);
  FlowTimeouts to{100, 1000, 100, 100};
  for (uint32_t i = 0; i < 1000; i++) {
    FlowKey4 k = key(i);
    // Even: established at t=0 (lives to 1000); odd: UDP at t=0 (expires after 100).
    FlowValue v{1, i % 2 ? FlowState::Udp : FlowState::TcpEstablished, 0};
    ASSERT_TRUE(t->upsert(&k, FlowTable::hashKey(&k, sizeof(k)), v));
  }
  uint32_t removed = t->sweep(500, to, 64);
  EXPECT_LE(removed, 64u);
  EXPECT_EQ(t->sweepCursor(), 64u);  // exactly `budget` positions visited
  uint32_t total = removed;
  for (int i = 0; i < 200; i++) total += t->sweep(500, to, 64);
  EXPECT_EQ(t->sweepCursor(), (201u * 64u) % t->capacity());  // wraps at capacity
  EXPECT_EQ(total, 500u);
  EXPECT_EQ(t->size(), 500u);
  FlowValue v;
  FlowKey4 even = key(10), odd = key(11);
  EXPECT_TRUE(lookup(*t, even, v));
  EXPECT_FALSE(lookup(*t, odd, v));
}

TEST(FlowTable, SweepWorkIsBoundedOnAnEmptyTable) {
  // The cursor moves by exactly the budget on an empty table too: no hidden full scan.
  auto t = make(1u << 16);
  FlowTimeouts to{100, 1000, 100, 100};
  for (int i = 0; i < 10; i++) EXPECT_EQ(t->sweep(500, to, 16), 0u);
  EXPECT_EQ(t->sweepCursor(), 160u);
  FlowKey4 k = key(7);
  ASSERT_TRUE(t->upsert(&k, FlowTable::hashKey(&k, sizeof(k)), {1, FlowState::Udp, 0}));
  uint32_t removed = 0;
  for (uint32_t i = 0; i < t->capacity() / 16 + 1; i++) removed += t->sweep(500, to, 16);
  EXPECT_EQ(removed, 1u);  // one full pass finds it wherever it sits
  EXPECT_EQ(t->size(), 0u);
}

}  // namespace
}  // namespace l4lb::dataplane
