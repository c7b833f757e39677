// FragTable: decisions, out-of-order hold and release in order, timeouts, and every bound
// (table, worker-wide held pool, per datagram), with held-only entries evicted before any
// decision. Packets are fake pointers (integers); the test checks where each one ends up.
#include "dataplane/frag_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace l4lb::dataplane {
namespace {

void* pkt(uintptr_t i) { return reinterpret_cast<void*>(i); }

FragKey key(uint32_t id, uint8_t src_last = 1) {
  const uint8_t s[4] = {198, 18, 0, src_last};
  const uint8_t d[4] = {198, 18, 1, 10};
  return makeFragKey(s, d, Family::V4, id, 17);
}

struct Sink {
  std::vector<uintptr_t> got;
  auto fn() {
    return [this](void* p) { got.push_back(reinterpret_cast<uintptr_t>(p)); };
  }
};

constexpr uint32_t kTimeout = 2000;

TEST(FragTable, RecordThenLookup) {
  FragTable t(64, 16, 8);
  Sink rel, ev;
  EXPECT_EQ(t.lookup(key(1), 0), nullptr);
  ASSERT_TRUE(t.record(key(1), {3, 42, 0xabc, false}, 100, kTimeout, rel.fn(), ev.fn()));
  const FragDecision* d = t.lookup(key(1), 200);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->backend, 42u);
  EXPECT_EQ(d->vip_index, 3u);
  EXPECT_EQ(d->slot_hash, 0xabcu);
  EXPECT_EQ(t.lookup(key(2), 200), nullptr);  // another id
  EXPECT_EQ(t.lookup(key(1, 2), 200), nullptr);  // another source
  // IPv6 keys of the same leading bytes are another datagram.
  const uint8_t s6[16] = {198, 18, 0, 1}, d6[16] = {198, 18, 1, 10};
  EXPECT_EQ(t.lookup(makeFragKey(s6, d6, Family::V6, 1, 17), 200), nullptr);
  EXPECT_TRUE(rel.got.empty());
  EXPECT_TRUE(ev.got.empty());
  EXPECT_EQ(t.size(), 1u);
}

TEST(FragTable, EntryExpiresAfterTimeout) {
  FragTable t(64, 16, 8);
  Sink rel, ev;
  ASSERT_TRUE(t.record(key(1), {0, 7, 0, false}, 1000, kTimeout, rel.fn(), ev.fn()));
  EXPECT_NE(t.lookup(key(1), 1000 + kTimeout - 1), nullptr);
  EXPECT_EQ(t.lookup(key(1), 1000 + kTimeout), nullptr);
  // Wrapping clock.
  FragTable w(64, 16, 8);
  ASSERT_TRUE(w.record(key(1), {0, 7, 0, false}, UINT32_MAX - 10, kTimeout, rel.fn(), ev.fn()));
  EXPECT_NE(w.lookup(key(1), 5), nullptr);
  EXPECT_EQ(w.lookup(key(1), kTimeout), nullptr);
}

TEST(FragTable, HeldFragmentsReleasedInOrderWhenFirstArrives) {
  FragTable t(64, 16, 8);
  Sink rel, ev;
  EXPECT_EQ(t.hold(key(5), pkt(11), 0, kTimeout, ev.fn()), FragHold::Held);
  EXPECT_EQ(t.hold(key(5), pkt(12), 1, kTimeout, ev.fn()), FragHold::Held);
  EXPECT_EQ(t.hold(key(6), pkt(21), 1, kTimeout, ev.fn()), FragHold::Held);
  EXPECT_EQ(t.held(), 3u);
  EXPECT_EQ(t.lookup(key(5), 2), nullptr);  // held only: no decision yet
  ASSERT_TRUE(t.record(key(5), {0, 9, 0, false}, 2, kTimeout, rel.fn(), ev.fn()));
  EXPECT_EQ(rel.got, (std::vector<uintptr_t>{11, 12}));
  EXPECT_TRUE(ev.got.empty());
  EXPECT_EQ(t.held(), 1u);
  // Once decided, a later fragment is not held: the caller sends it.
  EXPECT_EQ(t.hold(key(5), pkt(13), 3, kTimeout, ev.fn()), FragHold::Decided);
  EXPECT_EQ(t.held(), 1u);
}

TEST(FragTable, SweepExpiresHeldFragments) {
  FragTable t(64, 16, 8);
  Sink ex;
  ASSERT_EQ(t.hold(key(5), pkt(11), 0, kTimeout, ex.fn()), FragHold::Held);
  ASSERT_EQ(t.hold(key(5), pkt(12), 0, kTimeout, ex.fn()), FragHold::Held);
  EXPECT_EQ(t.sweep(kTimeout - 1, t.capacity(), ex.fn()), 0u);
  EXPECT_TRUE(ex.got.empty());
  EXPECT_EQ(t.sweep(kTimeout, t.capacity(), ex.fn()), 1u);
  EXPECT_EQ(ex.got, (std::vector<uintptr_t>{11, 12}));
  EXPECT_EQ(t.held(), 0u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FragTable, SweepIsBoundedPerCall) {
  FragTable t(64, 16, 8);
  Sink ex, rel;
  for (uint32_t i = 0; i < 20; i++) ASSERT_TRUE(t.record(key(i), {0, 1, 0, false}, 0, kTimeout, rel.fn(), ex.fn()));
  uint32_t removed = 0, calls = 0;
  while (t.size() > 0) {
    const uint32_t r = t.sweep(kTimeout, 4, ex.fn());
    EXPECT_LE(r, 4u);
    removed += r;
    ASSERT_LT(++calls, 100u);
  }
  EXPECT_EQ(removed, 20u);
  EXPECT_LE(calls, t.capacity() / 4);  // one pass over the table at 4 ways per call
}

TEST(FragTable, ExpiredSameKeyIsReplacedNotDuplicated) {
  FragTable t(64, 16, 8);
  Sink rel, ev;
  ASSERT_EQ(t.hold(key(5), pkt(11), 0, kTimeout, ev.fn()), FragHold::Held);
  // The held fragment has expired (not swept yet): a new first fragment of the same key drops it.
  ASSERT_TRUE(t.record(key(5), {0, 9, 0, false}, kTimeout + 1, kTimeout, rel.fn(), ev.fn()));
  EXPECT_TRUE(rel.got.empty());
  EXPECT_EQ(ev.got, (std::vector<uintptr_t>{11}));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.held(), 0u);
}

TEST(FragTable, PerDatagramBound) {
  FragTable t(64, 16, 3);
  Sink ev;
  for (uintptr_t i = 1; i <= 3; i++) ASSERT_EQ(t.hold(key(5), pkt(i), 0, kTimeout, ev.fn()), FragHold::Held);
  EXPECT_EQ(t.hold(key(5), pkt(4), 0, kTimeout, ev.fn()), FragHold::DatagramFull);
  EXPECT_EQ(t.hold(key(6), pkt(5), 0, kTimeout, ev.fn()), FragHold::Held);  // another datagram still may
  EXPECT_EQ(t.held(), 4u);
}

TEST(FragTable, WorkerHeldPoolBound) {
  FragTable t(1024, 5, 8);
  Sink ev;
  for (uint32_t i = 0; i < 5; i++) ASSERT_EQ(t.hold(key(i), pkt(i + 1), 0, kTimeout, ev.fn()), FragHold::Held);
  EXPECT_EQ(t.hold(key(99), pkt(100), 0, kTimeout, ev.fn()), FragHold::HeldFull);
  EXPECT_EQ(t.held(), 5u);
  // Pool 0: nothing is ever held.
  FragTable z(64, 0, 8);
  EXPECT_EQ(z.hold(key(1), pkt(1), 0, kTimeout, ev.fn()), FragHold::HeldFull);
  EXPECT_TRUE(ev.got.empty());
}

// A flood of held-only datagrams (random later fragments) never displaces a decision: with
// one bucket (capacity 8), the held-only ways are evicted oldest first, decided ones stay.
TEST(FragTable, FloodEvictsHeldOnlyNeverDecisions) {
  FragTable t(8, 1000, 8);
  ASSERT_EQ(t.capacity(), 8u);
  Sink rel, ev;
  for (uint32_t i = 0; i < 4; i++) ASSERT_TRUE(t.record(key(i), {0, 100 + i, 0, false}, 0, kTimeout, rel.fn(), ev.fn()));
  for (uintptr_t i = 0; i < 200; i++)
    ASSERT_EQ(t.hold(key(1000 + uint32_t(i)), pkt(i + 1), uint32_t(i), kTimeout, ev.fn()), FragHold::Held);
  for (uint32_t i = 0; i < 4; i++) {
    const FragDecision* d = t.lookup(key(i), 300);
    ASSERT_NE(d, nullptr) << i;
    EXPECT_EQ(d->backend, 100 + i);
  }
  // 4 ways for held-only datagrams: all but the last 4 were evicted, oldest first.
  ASSERT_EQ(ev.got.size(), 196u);
  for (uintptr_t i = 0; i < 196; i++) EXPECT_EQ(ev.got[i], i + 1);
  EXPECT_EQ(t.held(), 4u);
  EXPECT_LE(t.size(), t.capacity());
  // Eight live decisions: a ninth key finds no way, a held-only one neither.
  for (uint32_t i = 4; i < 8; i++) ASSERT_TRUE(t.record(key(i), {0, 1, 0, false}, 300, kTimeout, rel.fn(), ev.fn()));
  EXPECT_FALSE(t.record(key(8), {0, 1, 0, false}, 300, kTimeout, rel.fn(), ev.fn()));
  EXPECT_EQ(t.hold(key(2000), pkt(9999), 300, kTimeout, ev.fn()), FragHold::TableFull);
}

// Negative control for the flood test: a table that gave held-only entries no preference
// would lose decisions; here a decided way is only reclaimed once it has expired.
TEST(FragTable, ExpiredDecisionIsReclaimedByNewKey) {
  FragTable t(8, 100, 8);
  Sink rel, ev;
  for (uint32_t i = 0; i < 8; i++) ASSERT_TRUE(t.record(key(i), {0, 1, 0, false}, 0, kTimeout, rel.fn(), ev.fn()));
  EXPECT_FALSE(t.record(key(8), {0, 1, 0, false}, kTimeout - 1, kTimeout, rel.fn(), ev.fn()));
  EXPECT_TRUE(t.record(key(8), {0, 1, 0, false}, kTimeout, kTimeout, rel.fn(), ev.fn()));
  EXPECT_EQ(t.size(), 8u);
}

}  // namespace
}  // namespace l4lb::dataplane
