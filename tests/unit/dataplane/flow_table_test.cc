#include "dataplane/flow_table.h"
#include "dataplane/flow_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

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
  uint64_t val = 0;
  const bool hit = t.lookup(&k, FlowTable::indexHash(&k, sizeof(k)), val);
  if (hit) v = FlowValue::unpack(val);
  return hit;
}

constexpr uint8_t kPsh = 0x08;

TEST(FlowValue, PacksAndUnpacksEveryState) {
  for (FlowState st : {FlowState::TcpSyn, FlowState::TcpEstablished, FlowState::TcpClosing, FlowState::Udp,
                       FlowState::UdpNew, FlowState::TcpReset}) {
    for (bool pinned : {false, true}) {
      const FlowValue v{kMaxBackendId, st, 0xffffffffu, pinned};
      const uint64_t raw = v.pack();
      EXPECT_EQ(FlowValue::unpack(raw).state, st);
      EXPECT_EQ(FlowValue::unpack(raw).backend_id, kMaxBackendId);
      EXPECT_EQ(FlowValue::unpack(raw).last_seen_ms, 0xffffffffu);
      EXPECT_EQ(FlowValue::unpack(raw).pinned, pinned);
      EXPECT_EQ(isEmbryonicRaw(raw), isEmbryonic(st));
      EXPECT_EQ((raw >> 28) & 0xf, 0u) << "bits 28..31 stay zero";
    }
  }
}

TEST(FlowValue, PacksAndUnpacks) {
  FlowValue v{0xabcdef, FlowState::TcpClosing, 0xfedcba98};
  FlowValue u = FlowValue::unpack(v.pack());
  EXPECT_EQ(u.backend_id, 0xabcdefu);
  EXPECT_EQ(u.state, FlowState::TcpClosing);
  EXPECT_EQ(u.last_seen_ms, 0xfedcba98u);
}

// Admission off (the test-only switch): the original transitions, unchanged.
TEST(FlowState, TcpTransitionsWithoutAdmission) {
  auto next = [](FlowState s, bool tcp, uint8_t f) { return nextState(s, tcp, f, false); };
  EXPECT_EQ(next(FlowState::TcpSyn, true, kTcpSyn), FlowState::TcpSyn);
  EXPECT_EQ(next(FlowState::TcpSyn, true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(next(FlowState::TcpEstablished, true, kTcpAck | kTcpFin), FlowState::TcpClosing);
  EXPECT_EQ(next(FlowState::TcpEstablished, true, kTcpRst), FlowState::TcpClosing);
  EXPECT_EQ(next(FlowState::TcpClosing, true, kTcpAck), FlowState::TcpClosing);
  EXPECT_EQ(next(FlowState::TcpEstablished, true, kTcpSyn), FlowState::TcpEstablished);
  EXPECT_EQ(next(FlowState::TcpSyn, false, 0), FlowState::Udp);
  // The 5-tuple of a closed connection reused for a new one: a new handshake, then established.
  EXPECT_EQ(next(FlowState::TcpClosing, true, kTcpSyn), FlowState::TcpSyn);
  EXPECT_EQ(next(next(FlowState::TcpClosing, true, kTcpSyn), true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(next(FlowState::TcpClosing, true, kTcpSyn | kTcpAck), FlowState::TcpClosing);
}

// Admission on. Same as above except two rules (flow.h): RST never closes (reset state, Jool
// #212), and a bare SYN on a closing entry goes to TcpReset (confirmed, short timeout) instead
// of TcpSyn, so that a hit never turns a confirmed entry embryonic (the quota holds).
TEST(FlowState, TcpTransitions) {
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, kTcpSyn), FlowState::TcpSyn);
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpEstablished, true, kTcpAck | kTcpFin), FlowState::TcpClosing);
  EXPECT_EQ(nextState(FlowState::TcpEstablished, true, kTcpRst), FlowState::TcpReset);
  EXPECT_EQ(nextState(FlowState::TcpClosing, true, kTcpAck), FlowState::TcpClosing);
  EXPECT_EQ(nextState(FlowState::TcpEstablished, true, kTcpSyn), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpSyn, false, 0), FlowState::Udp);
  // The 5-tuple of a closed connection reused for a new one: short-lived, then established.
  EXPECT_EQ(nextState(FlowState::TcpClosing, true, kTcpSyn), FlowState::TcpReset);
  EXPECT_EQ(nextState(nextState(FlowState::TcpClosing, true, kTcpSyn), true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpClosing, true, kTcpSyn | kTcpAck), FlowState::TcpClosing);
}

// Promotion (ironcore dpservice #628): only a packet without SYN (and without RST) confirms an
// embryonic TCP entry; the second UDP packet confirms a UDP one.
TEST(FlowState, OnlyANonSynPacketPromotes) {
  for (uint8_t f : {kTcpSyn, uint8_t(kTcpSyn | kTcpAck), uint8_t(kTcpSyn | kTcpFin), kTcpRst, uint8_t(kTcpRst | kTcpAck),
                    uint8_t(kTcpSyn | kTcpRst)}) {
    EXPECT_EQ(nextState(FlowState::TcpSyn, true, f), FlowState::TcpSyn) << int(f);
    EXPECT_TRUE(isEmbryonic(nextState(FlowState::TcpSyn, true, f))) << int(f);
  }
  // Negative control: the rules without admission let SYN+RST / RST move a SYN entry to the
  // (confirmed) closing state: a spoofed pair would escape the quota there.
  EXPECT_FALSE(isEmbryonic(nextState(FlowState::TcpSyn, true, kTcpRst, false)));
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, uint8_t(kTcpAck | kPsh)), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(FlowState::TcpSyn, true, uint8_t(kTcpAck | kTcpFin)), FlowState::TcpClosing);
  EXPECT_EQ(nextState(FlowState::UdpNew, false, 0), FlowState::Udp);
  EXPECT_EQ(nextState(FlowState::Udp, false, 0), FlowState::Udp);
  EXPECT_TRUE(isEmbryonic(FlowState::UdpNew));
  EXPECT_FALSE(isEmbryonic(FlowState::Udp));
  EXPECT_FALSE(isEmbryonic(FlowState::TcpReset));
  // New entries: a SYN (or SYN-ACK-looking packet) starts embryonic, an ACK confirmed, UDP
  // embryonic; without admission UDP starts confirmed (Udp).
  EXPECT_EQ(initialState(true, kTcpSyn, true), FlowState::TcpSyn);
  EXPECT_EQ(initialState(true, uint8_t(kTcpSyn | kTcpAck), true), FlowState::TcpSyn);
  EXPECT_EQ(initialState(true, kTcpAck, true), FlowState::TcpEstablished);
  EXPECT_EQ(initialState(false, 0, true), FlowState::UdpNew);
  EXPECT_EQ(initialState(false, 0, false), FlowState::Udp);
}

// A spoofed RST (Jool #212): the established entry only gets the short reset timeout; the next
// packet of the flow without SYN/RST/FIN restores it, and a FIN still closes.
TEST(FlowState, RstShortensAndALaterPacketRestores) {
  const FlowTimeouts t{};
  const FlowState r = nextState(FlowState::TcpEstablished, true, kTcpRst);
  ASSERT_EQ(r, FlowState::TcpReset);
  EXPECT_LT(timeoutMs(r, t), timeoutMs(FlowState::TcpEstablished, t));
  EXPECT_EQ(timeoutMs(r, t), t.tcp_fin_ms);
  EXPECT_EQ(nextState(r, true, kTcpRst), FlowState::TcpReset);  // more RSTs: still reset
  EXPECT_EQ(nextState(r, true, kTcpSyn), FlowState::TcpReset);  // a SYN does not restore
  EXPECT_EQ(nextState(r, true, kTcpAck), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(r, true, uint8_t(kTcpAck | kPsh)), FlowState::TcpEstablished);
  EXPECT_EQ(nextState(r, true, uint8_t(kTcpAck | kTcpFin)), FlowState::TcpClosing);
  // Negative control: without admission an RST closes, and a later ACK does not restore.
  EXPECT_EQ(nextState(nextState(FlowState::TcpEstablished, true, kTcpRst, false), true, kTcpAck, false),
            FlowState::TcpClosing);
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
  ASSERT_TRUE(t->upsert(&k, FlowTable::indexHash(&k, sizeof(k)), {7, FlowState::TcpSyn, 5}));
  ASSERT_TRUE(lookup(*t, k, v));
  EXPECT_EQ(v.backend_id, 7u);
  ASSERT_TRUE(t->upsert(&k, FlowTable::indexHash(&k, sizeof(k)), {9, FlowState::TcpEstablished, 6}));
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
    if (t->upsert(&k, FlowTable::indexHash(&k, sizeof(k)), {1, FlowState::Udp, 0})) ok++;
  }
  EXPECT_EQ(ok, 1024u);  // extendable buckets: every configured entry usable, none more
  EXPECT_EQ(t->size(), 1024u);
  // Existing keys can still be updated when full.
  FlowKey4 k0 = key(0);
  EXPECT_TRUE(t->upsert(&k0, FlowTable::indexHash(&k0, sizeof(k0)), {2, FlowState::Udp, 0}));
}

TEST(FlowTable, SweepRemovesOnlyExpiredWithinBudget) {
  auto t = make(4096);
  FlowTimeouts to{100, 1000, 100, 100};
  for (uint32_t i = 0; i < 1000; i++) {
    FlowKey4 k = key(i);
    // Even: established at t=0 (lives to 1000); odd: UDP at t=0 (expires after 100).
    FlowValue v{1, i % 2 ? FlowState::Udp : FlowState::TcpEstablished, 0};
    ASSERT_TRUE(t->upsert(&k, FlowTable::indexHash(&k, sizeof(k)), v));
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
  ASSERT_TRUE(t->upsert(&k, FlowTable::indexHash(&k, sizeof(k)), {1, FlowState::Udp, 0}));
  uint32_t removed = 0;
  for (uint32_t i = 0; i < t->capacity() / 16 + 1; i++) removed += t->sweep(500, to, 16);
  EXPECT_EQ(removed, 1u);  // one full pass finds it wherever it sits
  EXPECT_EQ(t->size(), 0u);
}


// ---------------------------------------------------------------------------------------------
// The table against std::unordered_map, IPv4 and IPv6 keys.

FlowKey4 key4(uint32_t i) { return key(i); }

FlowKey6 key6(uint32_t i) {
  FlowKey6 k;
  k.saddr[0] = 0x20, k.saddr[1] = 0x01, k.saddr[2] = 0x0d, k.saddr[3] = 0xb8;  // 2001:db8::/32
  k.saddr[12] = uint8_t(i >> 24), k.saddr[13] = uint8_t(i >> 16), k.saddr[14] = uint8_t(i >> 8);
  k.saddr[15] = uint8_t(i);
  k.daddr[0] = 0x20, k.daddr[1] = 0x01, k.daddr[2] = 0x0d, k.daddr[3] = 0xb8, k.daddr[15] = 1;
  k.sport = rte_cpu_to_be_16(uint16_t(1024 + i % 7));
  k.dport = rte_cpu_to_be_16(443);
  k.proto = i % 3 ? 6 : 17;
  return k;
}

template <typename Key>
struct KeyOps;
template <>
struct KeyOps<FlowKey4> {
  static FlowKey4 make(uint32_t i) { return key4(i); }
  static const char* name() { return "v4"; }
};
template <>
struct KeyOps<FlowKey6> {
  static FlowKey6 make(uint32_t i) { return key6(i); }
  static const char* name() { return "v6"; }
};

template <typename Key>
std::unique_ptr<FlowTable> makeTable(uint32_t cap) {
  static int n = 0;
  std::string err;
  auto t = FlowTable::create(std::string("ftd_") + KeyOps<Key>::name() + std::to_string(n++), cap, sizeof(Key),
                             SOCKET_ID_ANY, err);
  EXPECT_TRUE(t) << err;
  return t;
}

template <typename Key>
hash_sig_t sigOf(const Key& k) {
  return FlowTable::indexHash(&k, sizeof(k));
}

// Random upserts, lookups, erases and full sweeps over a key universe larger than the table, so
// the table is full part of the time; every result is checked against the model.
template <typename Key>
void differential(uint32_t cap, uint32_t universe, uint32_t ops, uint32_t seed) {
  auto t = makeTable<Key>(cap);
  ASSERT_TRUE(t);
  std::unordered_map<uint32_t, uint64_t> model;
  std::mt19937 rng(seed);  // 32-bit results
  const FlowTimeouts to{100, 100, 100, 100};
  uint32_t now = 1000;
  uint64_t full_refusals = 0, sweeps_removed = 0;
  for (uint32_t op = 0; op < ops; op++) {
    const uint32_t i = rng() % universe;
    const Key k = KeyOps<Key>::make(i);
    const hash_sig_t sig = sigOf(k);
    const uint32_t r = rng() % 1000;
    if (r < 450) {
      // Recent or stale last-seen times, so a sweep has something to remove.
      const FlowValue v{uint32_t(1 + rng() % 1000), FlowState(rng() % 4), uint32_t(now - rng() % 120)};
      const bool exists = model.count(i) != 0;
      // An absent key: half the time through insertAbsent (the worker's new flow), which must
      // do what upsert does.
      const bool ok = !exists && (r & 1) ? t->insertAbsent(&k, sig, v.pack()) : t->upsert(&k, sig, v);
      ASSERT_EQ(ok, exists || model.size() < cap) << "op " << op;
      if (ok) model[i] = v.pack();
      else full_refusals++;
    } else if (r < 750) {
      uint64_t got = 0;
      const bool hit = t->lookup(&k, sig, got);
      const auto it = model.find(i);
      ASSERT_EQ(hit, it != model.end()) << "op " << op;
      if (hit) {
        ASSERT_EQ(got, it->second) << "op " << op;
      }
    } else if (r < 999) {
      ASSERT_EQ(t->erase(&k, sig), model.erase(i) == 1) << "op " << op;
    } else {
      now += 2;
      // One full pass: removes exactly the expired entries.
      uint32_t expired = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (isExpired(FlowValue::unpack(it->second), now, to)) {
          it = model.erase(it);
          expired++;
        } else {
          ++it;
        }
      }
      const uint32_t removed = t->sweep(now, to, t->capacity());
      ASSERT_EQ(removed, expired) << "op " << op;
      sweeps_removed += removed;
    }
    ASSERT_EQ(t->size(), model.size()) << "op " << op;
  }
  EXPECT_GT(full_refusals, 0u);  // the table was full at times
  EXPECT_GT(sweeps_removed, 0u);
  // Every key of the universe, looked up through lookup() and through the worker's typed
  // lookupFamily(): both give the model's answers.
  constexpr bool kV6 = sizeof(Key) == sizeof(FlowKey6);
  for (uint32_t i = 0; i < universe; i++) {
    const Key k = KeyOps<Key>::make(i);
    const hash_sig_t sig = sigOf(k);
    const auto it = model.find(i);
    uint64_t one = 0, typed = 0;
    ASSERT_EQ(t->lookup(&k, sig, one), it != model.end()) << i;
    ASSERT_EQ(t->template lookupFamily<kV6>(&k, sig, typed), it != model.end()) << i;
    if (it != model.end()) {
      ASSERT_EQ(one, it->second);
      ASSERT_EQ(typed, it->second);
    }
  }
  // Everything erased: empty, and every overflow count back to 0.
  for (const auto& [i, v] : model) {
    const Key k = KeyOps<Key>::make(i);
    ASSERT_TRUE(t->erase(&k, sigOf(k)));
  }
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(t->overflowSum(), 0u);
}

TEST(FlowTableModel, RandomOpsMatchUnorderedMapV4) { differential<FlowKey4>(4096, 9000, 200'000, 1); }
TEST(FlowTableModel, RandomOpsMatchUnorderedMapV6) { differential<FlowKey6>(2048, 4500, 120'000, 2); }
TEST(FlowTableModel, RandomOpsMatchUnorderedMapTiny) { differential<FlowKey4>(5, 12, 20'000, 3); }

// Fills to exactly `capacity`, one more new key fails, an existing one still updates; erasing
// and re-adding keeps it exact. Capacities around the bucket-rounding boundaries.
TEST(FlowTable, CapacityExactThenOneMoreFails) {
  for (uint32_t cap : {1u, 2u, 3u, 4u, 7u, 100u, 1000u, 3277u, 4096u}) {
    SCOPED_TRACE(cap);
    auto t = makeTable<FlowKey4>(cap);
    ASSERT_TRUE(t);
    EXPECT_GE(t->slots() * FlowTable::kMaxLoadPercent, uint64_t(cap) * 100);
    for (uint32_t i = 0; i < cap; i++) {
      const FlowKey4 k = key4(i);
      ASSERT_TRUE(t->upsert(&k, sigOf(k), {i, FlowState::Udp, 0})) << i;
    }
    EXPECT_EQ(t->size(), cap);
    const FlowKey4 extra = key4(cap);
    EXPECT_FALSE(t->upsert(&extra, sigOf(extra), {1, FlowState::Udp, 0}));
    const FlowKey4 k0 = key4(0);
    EXPECT_TRUE(t->upsert(&k0, sigOf(k0), {77, FlowState::Udp, 0}));
    uint64_t raw = 0;
    ASSERT_TRUE(t->lookup(&k0, sigOf(k0), raw));
    EXPECT_EQ(FlowValue::unpack(raw).backend_id, 77u);
    EXPECT_EQ(t->size(), cap);
    ASSERT_TRUE(t->erase(&k0, sigOf(k0)));
    EXPECT_TRUE(t->upsert(&extra, sigOf(extra), {1, FlowState::Udp, 0}));
    EXPECT_FALSE(t->upsert(&k0, sigOf(k0), {1, FlowState::Udp, 0}));
    EXPECT_EQ(t->size(), cap);
  }
}

// The caller's signature decides the home bucket: forcing every key into bucket 0 or 1 makes
// long displacement chains. Erasing displaced entries (from the middle of a chain) must keep
// the others findable; overflow counts return to 0.
TEST(FlowTable, EraseOfDisplacedEntryKeepsOthersFindable) {
  auto t = makeTable<FlowKey4>(64);
  ASSERT_TRUE(t);
  const uint32_t n = 40;
  auto sig = [](uint32_t i) { return hash_sig_t(i % 2); };
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey4 k = key4(i);
    ASSERT_TRUE(t->upsert(&k, sig(i), {i + 1, FlowState::Udp, 0}));
  }
  EXPECT_GT(t->overflowSum(), 0u);
  // Remove every third (displaced ones included), then check all the others.
  for (uint32_t i = 0; i < n; i += 3) {
    const FlowKey4 k = key4(i);
    ASSERT_TRUE(t->erase(&k, sig(i)));
    EXPECT_FALSE(t->erase(&k, sig(i)));
  }
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey4 k = key4(i);
    uint64_t raw = 0;
    const bool hit = t->lookup(&k, sig(i), raw);
    ASSERT_EQ(hit, i % 3 != 0) << i;
    if (hit) {
      EXPECT_EQ(FlowValue::unpack(raw).backend_id, i + 1);
    }
  }
  // Freed slots near home are reused: re-adding keeps every key findable.
  for (uint32_t i = 0; i < n; i += 3) {
    const FlowKey4 k = key4(i);
    ASSERT_TRUE(t->upsert(&k, sig(i), {i + 1, FlowState::Udp, 0}));
  }
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey4 k = key4(i);
    uint64_t raw = 0;
    ASSERT_TRUE(t->lookup(&k, sig(i), raw)) << i;
    EXPECT_EQ(FlowValue::unpack(raw).backend_id, i + 1);
  }
  EXPECT_EQ(t->size(), n);
  for (uint32_t i = n; i-- > 0;) {
    const FlowKey4 k = key4(i);
    ASSERT_TRUE(t->erase(&k, sig(i)));
  }
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(t->overflowSum(), 0u);
}

// More than 255 entries probing past one bucket: its count sticks at 255 (never wraps to a
// value that would end lookups early); every key stays findable.
TEST(FlowTable, OverflowCountSaturatesAndStaysCorrect) {
  auto t = makeTable<FlowKey4>(1024);
  ASSERT_TRUE(t);
  const uint32_t n = 1024;
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey4 k = key4(i);
    ASSERT_TRUE(t->upsert(&k, 0, {i + 1, FlowState::Udp, 0}));
  }
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey4 k = key4(i);
    uint64_t raw = 0;
    ASSERT_TRUE(t->lookup(&k, 0, raw)) << i;
    EXPECT_EQ(FlowValue::unpack(raw).backend_id, i + 1);
  }
  const FlowKey4 absent = key4(n);
  uint64_t raw = 0;
  EXPECT_FALSE(t->lookup(&absent, 0, raw));  // walks the chain to its first count of 0
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey4 k = key4(i);
    ASSERT_TRUE(t->erase(&k, 0)) << i;
  }
  EXPECT_EQ(t->size(), 0u);
  // Buckets 0..k-1 were passed by more than 255 entries each and stay at 255; the rest are 0.
  EXPECT_EQ(t->overflowSum() % 255, 0u);
  EXPECT_GT(t->overflowSum(), 0u);
  const FlowKey4 k = key4(5);
  EXPECT_FALSE(t->lookup(&k, 0, raw));
  ASSERT_TRUE(t->upsert(&k, 0, {9, FlowState::Udp, 0}));
  ASSERT_TRUE(t->lookup(&k, 0, raw));
  EXPECT_EQ(FlowValue::unpack(raw).backend_id, 9u);
}

TEST(FlowTable, KeyWithProtocolZeroIsRejected) {
  auto t = makeTable<FlowKey4>(16);
  ASSERT_TRUE(t);
  FlowKey4 k;  // all zero: the same bytes as a free slot
  EXPECT_FALSE(t->upsert(&k, sigOf(k), {1, FlowState::Udp, 0}));
  EXPECT_FALSE(t->insertAbsent(&k, sigOf(k), FlowValue{1, FlowState::Udp, 0}.pack()));
  uint64_t raw = 0;
  EXPECT_FALSE(t->lookup(&k, sigOf(k), raw));
  EXPECT_FALSE(t->erase(&k, sigOf(k)));
  EXPECT_EQ(t->size(), 0u);
}

TEST(FlowTable, CreateRejectsBadParameters) {
  std::string err;
  EXPECT_FALSE(FlowTable::create("ft_bad1", 1024, 12, SOCKET_ID_ANY, err));
  EXPECT_EQ(err, "flow table ft_bad1: key length 12 is neither FlowKey4's (16) nor FlowKey6's (40)");
  EXPECT_FALSE(FlowTable::create("ft_bad2", 0, 16, SOCKET_ID_ANY, err));
  EXPECT_EQ(err, "flow table ft_bad2: capacity 0 must be 1..268435456");
  EXPECT_FALSE(FlowTable::create("ft_bad3", FlowTable::kMaxCapacity + 1, 16, SOCKET_ID_ANY, err));
}

// Bucket sizing: IPv4 3 slots per 64-byte line, IPv6 4 per 192 bytes, power-of-two buckets.
TEST(FlowTable, SizedForTheLoadFactor) {
  auto t4 = makeTable<FlowKey4>(1u << 20);
  ASSERT_TRUE(t4);
  EXPECT_EQ(t4->slots(), 3u * (1u << 19));  // 1.31M slots >= 1M / 0.8
  EXPECT_EQ(t4->memoryBytes(), 64u * (1u << 19));
  auto t6 = makeTable<FlowKey6>(1000);
  ASSERT_TRUE(t6);
  EXPECT_EQ(t6->slots(), 4u * 512);  // 1250 slots needed: 313 buckets -> 512
  EXPECT_EQ(t6->memoryBytes(), 192u * 512);
}


// ---------------------------------------------------------------------------------------------
// Flood admission (FlowTable::store): classes, quota, displacement. Values carry their key's
// index in the backend id (index + 1), so a displaced victim names its key.

namespace admission {

uint32_t indexOf(const FlowValue& v) { return v.backend_id - 1; }

uint32_t countEmbryonic(const std::unordered_map<uint32_t, uint64_t>& model) {
  uint32_t n = 0;
  for (const auto& [i, v] : model) n += isEmbryonicRaw(v);
  return n;
}

// Random admitted stores, plain upserts (mix_upserts), lookups, erases and sweeps against a
// model; after every operation the table's size and embryonic count equal a recount of the
// model, canStore predicted store's result, a victim was embryonic or expired (never a live
// confirmed entry), and (without plain upserts, which bypass admission) the embryonic count
// stays within the quota. At the end every key of the universe is looked up (a brute-force
// recount of the table itself).
template <typename Key>
void admissionModel(uint32_t cap, uint32_t universe, uint32_t ops, uint32_t seed, bool mix_upserts) {
  auto t = makeTable<Key>(cap);
  ASSERT_TRUE(t);
  std::unordered_map<uint32_t, uint64_t> model;
  std::mt19937 rng(seed);
  FlowTimeouts to{};
  to.tcp_syn_ms = to.tcp_established_ms = to.tcp_fin_ms = to.udp_ms = to.udp_new_ms = 100;
  uint32_t now = 1000;
  const uint32_t limit = FlowAdmission{}.embryonicLimit(cap);
  uint64_t results[4] = {};
  for (uint32_t op = 0; op < ops; op++) {
    const uint32_t i = rng() % universe;
    const Key k = KeyOps<Key>::make(i);
    const hash_sig_t sig = sigOf(k);
    const uint32_t r = rng() % 1000;
    const AdmitParams ap{true, limit, now, &to};
    const FlowValue v{i + 1, FlowState(rng() % 6), uint32_t(now - rng() % 120)};
    if (r < 450) {
      const uint32_t emb_before = countEmbryonic(model);
      const bool exists = model.count(i) != 0;
      const StoreResult predicted = t->canStore(&k, sig, isEmbryonic(v.state), ap);
      FlowValue victim;
      const StoreResult got = t->store(&k, sig, v, ap, victim);
      ASSERT_EQ(got, predicted) << "op " << op;
      results[size_t(got)]++;
      switch (got) {
        case StoreResult::Stored:
          ASSERT_TRUE(exists || model.size() < cap) << "op " << op;
          ASSERT_TRUE(!isEmbryonic(v.state) || emb_before < limit || (exists && isEmbryonicRaw(model[i])))
              << "op " << op;
          model[i] = v.pack();
          break;
        case StoreResult::Displaced: {
          const uint32_t vi = indexOf(victim);
          ASSERT_NE(vi, i) << "op " << op;
          ASSERT_EQ(model.count(vi), 1u) << "op " << op;
          ASSERT_EQ(model[vi], victim.pack()) << "op " << op;
          ASSERT_TRUE(isEmbryonic(victim.state) || isExpired(victim, now, to)) << "a live confirmed victim, op " << op;
          model.erase(vi);
          model[i] = v.pack();
          break;
        }
        case StoreResult::TableFull:
          ASSERT_FALSE(exists) << "op " << op;
          ASSERT_GE(model.size(), cap) << "op " << op;
          break;
        case StoreResult::EmbryonicFull:
          ASSERT_TRUE(isEmbryonic(v.state)) << "op " << op;
          ASSERT_GE(emb_before, limit) << "op " << op;
          break;
      }
    } else if (mix_upserts && r < 550) {
      const bool exists = model.count(i) != 0;
      const bool ok = t->upsert(&k, sig, v);
      ASSERT_EQ(ok, exists || model.size() < cap) << "op " << op;
      if (ok) model[i] = v.pack();
    } else if (r < 750) {
      uint64_t got = 0;
      const auto it = model.find(i);
      ASSERT_EQ(t->lookup(&k, sig, got), it != model.end()) << "op " << op;
      if (it != model.end()) {
        ASSERT_EQ(got, it->second) << "op " << op;
      }
    } else if (r < 995) {
      ASSERT_EQ(t->erase(&k, sig), model.erase(i) == 1) << "op " << op;
    } else {
      now += 2;
      uint32_t expired = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (isExpired(FlowValue::unpack(it->second), now, to)) {
          it = model.erase(it);
          expired++;
        } else {
          ++it;
        }
      }
      ASSERT_EQ(t->sweep(now, to, t->capacity()), expired) << "op " << op;
    }
    ASSERT_EQ(t->size(), model.size()) << "op " << op;
    ASSERT_EQ(t->embryonic(), countEmbryonic(model)) << "op " << op;
    ASSERT_EQ(t->confirmed(), model.size() - countEmbryonic(model)) << "op " << op;
    if (!mix_upserts) {
      ASSERT_LE(t->embryonic(), limit) << "op " << op;
    }
  }
  // Every outcome happened.
  for (uint64_t n : results) EXPECT_GT(n, 0u);
  // A brute-force recount of the table: every key of the universe looked up.
  uint32_t found = 0, emb = 0;
  for (uint32_t i = 0; i < universe; i++) {
    const Key k = KeyOps<Key>::make(i);
    uint64_t got = 0;
    if (t->lookup(&k, sigOf(k), got)) found++, emb += isEmbryonicRaw(got);
  }
  EXPECT_EQ(found, t->size());
  EXPECT_EQ(emb, t->embryonic());
  for (const auto& [i, v] : model) {
    const Key k = KeyOps<Key>::make(i);
    ASSERT_TRUE(t->erase(&k, sigOf(k)));
  }
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(t->embryonic(), 0u);
  EXPECT_EQ(t->overflowSum(), 0u);
}

TEST(FlowTableAdmission, RandomOpsKeepClassCountsExactV4) { admissionModel<FlowKey4>(1024, 3000, 150'000, 11, false); }
TEST(FlowTableAdmission, RandomOpsKeepClassCountsExactV6) { admissionModel<FlowKey6>(512, 1500, 80'000, 12, false); }
TEST(FlowTableAdmission, RandomOpsWithPlainUpsertsV4) { admissionModel<FlowKey4>(1024, 3000, 150'000, 13, true); }

AdmitParams params(const FlowTable& t, uint32_t now, const FlowTimeouts& to, bool enabled = true) {
  return AdmitParams{enabled, FlowAdmission{}.embryonicLimit(t.capacity()), now, &to};
}

// A SYN flood against a table holding live confirmed entries: embryonic entries stop at the
// quota, displace only each other, and no confirmed entry is lost. Negative control: with
// admission off (the same stores) the flood takes every free slot.
TEST(FlowTableAdmission, SynFloodStopsAtQuotaAndNeverDisplacesConfirmed) {
  const FlowTimeouts to{};
  for (bool enabled : {true, false}) {
    auto t = make(1024);
    const AdmitParams ap = params(*t, 5000, to, enabled);
    ASSERT_EQ(ap.embryonic_limit, 256u);
    FlowValue victim;
    for (uint32_t i = 0; i < 600; i++) {
      const FlowKey4 k = key(i);
      ASSERT_EQ(t->store(&k, FlowTable::indexHash(&k, sizeof(k)), {i + 1, FlowState::TcpEstablished, 5000}, ap, victim),
                StoreResult::Stored);
    }
    uint64_t counts[4] = {};
    for (uint32_t i = 600; i < 20'000; i++) {
      const FlowKey4 k = key(i);
      const FlowValue v{i + 1, FlowState::TcpSyn, 5000 + i / 100};  // later SYNs are younger
      const StoreResult r = t->store(&k, FlowTable::indexHash(&k, sizeof(k)), v, ap, victim);
      counts[size_t(r)]++;
      if (r == StoreResult::Displaced) {
        ASSERT_EQ(victim.state, FlowState::TcpSyn);
        ASSERT_GE(indexOf(victim), 600u);
      }
    }
    uint32_t confirmed_left = 0;
    for (uint32_t i = 0; i < 600; i++) {
      FlowValue v;
      confirmed_left += lookup(*t, key(i), v) && v.backend_id == i + 1;
    }
    EXPECT_EQ(confirmed_left, 600u);
    if (enabled) {
      EXPECT_EQ(t->embryonic(), 256u);
      EXPECT_EQ(t->confirmed(), 600u);
      EXPECT_EQ(counts[size_t(StoreResult::Stored)], 256u);
      EXPECT_GT(counts[size_t(StoreResult::Displaced)], 1000u);
      EXPECT_GT(counts[size_t(StoreResult::EmbryonicFull)], 1000u);
      EXPECT_EQ(counts[size_t(StoreResult::TableFull)], 0u);
      // Room is left for confirmed entries (a client's ACK after its SYN went stateless).
      const FlowKey4 k = key(50'000);
      EXPECT_EQ(t->store(&k, FlowTable::indexHash(&k, sizeof(k)), {7, FlowState::TcpEstablished, 5000}, ap, victim),
                StoreResult::Stored);
    } else {
      EXPECT_EQ(t->embryonic(), 1024u - 600u) << "without admission the flood takes every free slot";
      EXPECT_EQ(counts[size_t(StoreResult::Displaced)], 0u);
      const FlowKey4 k = key(50'000);
      EXPECT_EQ(t->store(&k, FlowTable::indexHash(&k, sizeof(k)), {7, FlowState::TcpEstablished, 5000}, ap, victim),
                StoreResult::TableFull)
          << "a legitimate flow finds no room: the harm admission prevents";
    }
  }
}

// A displacement takes the least recently seen embryonic entry in reach, and an expired entry
// (of either class) before any live one.
TEST(FlowTableAdmission, DisplacesTheOldestEmbryonicOrAnExpiredEntry) {
  // A fixed flow index key: with the process's random one, the extra key's home bucket and the
  // next were now and then both empty in the full table below (1024 entries over more slots),
  // leaving nothing to displace (about 1 run in 25).
  const FlowIndexKey saved = g_flow_index_key;
  setFlowIndexKey(FlowIndexKey{{0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89,
                                0x452821e638d01377, 0xbe5466cf34e90c6c}});
  struct Restore {
    FlowIndexKey k;
    ~Restore() { setFlowIndexKey(k); }
  } restore{saved};
  const FlowTimeouts to{};  // SYN 10 s, established 300 s
  // Capacity 8: 4 buckets of 3 slots (mask 3), quota 2. Keys sharing one home bucket.
  auto t = make(8);
  AdmitParams ap = params(*t, 100'000, to);
  ASSERT_EQ(ap.embryonic_limit, 2u);
  std::vector<FlowKey4> same;
  for (uint32_t i = 0; same.size() < 5; i++) {
    const FlowKey4 k = key(i);
    if ((FlowTable::indexHash(&k, sizeof(k)) & 3) == 0) same.push_back(k);
  }
  auto sig = [](const FlowKey4& k) { return FlowTable::indexHash(&k, sizeof(k)); };
  FlowValue victim;
  ASSERT_EQ(t->store(&same[0], sig(same[0]), {1, FlowState::TcpEstablished, 99'000}, ap, victim), StoreResult::Stored);
  ASSERT_EQ(t->store(&same[1], sig(same[1]), {2, FlowState::TcpSyn, 99'500}, ap, victim), StoreResult::Stored);
  ASSERT_EQ(t->store(&same[2], sig(same[2]), {3, FlowState::TcpSyn, 99'100}, ap, victim), StoreResult::Stored);
  // Quota full: the next SYN takes the older SYN's place (same[2], 99'100), never the older
  // confirmed entry's (same[0], 99'000).
  ASSERT_EQ(t->store(&same[3], sig(same[3]), {4, FlowState::TcpSyn, 100'000}, ap, victim), StoreResult::Displaced);
  EXPECT_EQ(victim.backend_id, 3u);
  ASSERT_EQ(t->store(&same[4], sig(same[4]), {5, FlowState::TcpSyn, 100'000}, ap, victim), StoreResult::Displaced);
  EXPECT_EQ(victim.backend_id, 2u);
  FlowValue v;
  EXPECT_TRUE(lookup(*t, same[0], v));
  EXPECT_FALSE(lookup(*t, same[1], v));
  EXPECT_FALSE(lookup(*t, same[2], v));
  EXPECT_TRUE(lookup(*t, same[3], v));
  EXPECT_TRUE(lookup(*t, same[4], v));
  EXPECT_EQ(t->embryonic(), 2u);
  EXPECT_EQ(t->size(), 3u);
  // An expired confirmed entry goes before a live embryonic one, for a confirmed store on a full
  // table: fill the rest with confirmed entries, the first of them stale.
  auto full = make(1024);
  for (uint32_t n = 0; n < 1024; n++) {
    const FlowKey4 k = key(n);
    ASSERT_TRUE(full->upsert(&k, FlowTable::indexHash(&k, sizeof(k)), {n + 1, FlowState::TcpEstablished, 100'000}));
  }
  const FlowKey4 extra = key(70'000);
  const hash_sig_t xs = FlowTable::indexHash(&extra, sizeof(extra));
  EXPECT_EQ(full->store(&extra, xs, {9, FlowState::TcpEstablished, 100'000}, ap, victim), StoreResult::TableFull);
  EXPECT_EQ(full->store(&extra, xs, {9, FlowState::TcpSyn, 100'000}, ap, victim), StoreResult::TableFull)
      << "a SYN may not displace a live confirmed entry";
  // Ten minutes later every entry has expired: the same stores displace one.
  ap.now_ms = 100'000 + 600'000;
  EXPECT_EQ(full->store(&extra, xs, {9, FlowState::TcpEstablished, ap.now_ms}, ap, victim), StoreResult::Displaced);
  EXPECT_TRUE(isExpired(victim, ap.now_ms, to));
  EXPECT_EQ(full->size(), 1024u);
}

// Overwrites keep the class count: a confirmed entry turning embryonic needs the quota too.
TEST(FlowTableAdmission, OverwritesMoveEntriesBetweenClasses) {
  const FlowTimeouts to{};
  auto t = make(1024);
  const AdmitParams ap = params(*t, 1000, to);
  FlowValue victim;
  const FlowKey4 k = key(1);
  const hash_sig_t sig = FlowTable::indexHash(&k, sizeof(k));
  ASSERT_EQ(t->store(&k, sig, {1, FlowState::TcpSyn, 1000}, ap, victim), StoreResult::Stored);
  EXPECT_EQ(t->embryonic(), 1u);
  ASSERT_TRUE(t->upsert(&k, sig, {1, FlowState::TcpEstablished, 1000}));  // promoted
  EXPECT_EQ(t->embryonic(), 0u);
  EXPECT_EQ(t->confirmed(), 1u);
  ASSERT_TRUE(t->upsert(&k, sig, {1, FlowState::UdpNew, 1000}));
  EXPECT_EQ(t->embryonic(), 1u);
  ASSERT_TRUE(t->erase(&k, sig));
  EXPECT_EQ(t->embryonic(), 0u);
  EXPECT_EQ(t->size(), 0u);
}

}  // namespace admission

}  // namespace
}  // namespace l4lb::dataplane
