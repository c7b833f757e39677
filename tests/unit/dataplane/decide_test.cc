// The flow decision (src/dataplane/decide.h) through the worker's burst: established flows keep
// their backend across table changes, removed or failed backends are re-hashed, draining ones
// keep their flows, idle entries expire per state, a full table falls back to stateless Maglev,
// and a flow's second packet in the same burst finds the entry its first one stored.
#include "dataplane/decide.h"

#include <cstring>

#include "worker_fixture.h"

namespace l4lb::dataplane {
namespace {

using namespace wtest;  // NOLINT(google-build-using-namespace): the shared fixture

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
  auto [s1, s2] = maglevThenBackend1Removed(sb);
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
  const Snapshot draining = test::withBackendOut(*s1, 0, id1, id0, BackendState::Draining);
  const Snapshot unhealthy = test::withBackendOut(*s1, 0, id1, id0, BackendState::Unhealthy);
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

// The table-full fallback as it was before flood admission (admission off: every SYN may take
// a free slot). With admission on, SYNs stop at the embryonic quota: FloodAdmission tests below.
TEST(FlowTableFull, AllForwardedAndRoundRobinFallbackConsistent) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::RoundRobin, {1, 1, 1}));
  ASSERT_TRUE(s);
  s->admission.enabled = false;
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
  s2->admission.enabled = false;
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
// decideFlow itself, one test per named outcome, on a snapshot from the real builder.

struct DecideFixture : ::testing::Test {
  void SetUp() override {
    cfg = schedConfig(Scheduler::Maglev, {1, 1, 1});
    s = build(sb, cfg);
    ASSERT_TRUE(s);
    vip = &s->vips[0];
  }
  FlowFacts facts(uint32_t client, uint8_t flags, const SnapVip* v = nullptr) {
    key_addr = clientAddr(client);
    FlowKey4 k;
    const uint16_t sport = rte_cpu_to_be_16(uint16_t(1000 + client)), dport = rte_cpu_to_be_16(80);
    const hash_sig_t sig = makeFlowKey(k, key_addr.bytes.data(), kVip4.bytes.data(), sport, dport, kProtoTcp);
    return FlowFacts{v ? v : vip, 0, sig, Family::V4, true, flags};
  }
  auto src() {
    return [this] { return key_addr.bytes.data(); };
  }
  static uint64_t entry(uint32_t backend, FlowState st, uint32_t last_seen) {
    return FlowValue{backend, st, last_seen}.pack();
  }
  Config cfg;
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  const SnapVip* vip = nullptr;
  IpAddr key_addr;
  uint32_t cursor = 0;
};

auto room(bool r) {
  return [r](bool) { return r ? StoreResult::Stored : StoreResult::TableFull; };
}

TEST_F(DecideFixture, NewFlowTakesTheMaglevChoiceAndStoresASynEntry) {
  const FlowFacts p = facts(1, kTcpSyn);
  const FlowDecision d = decideFlow(*s, p, false, 0, 5000, {&cursor, nullptr}, room(true), src());
  EXPECT_EQ(d.outcome, FlowOutcome::New);
  EXPECT_EQ(d.entry, EntryVerdict::None);
  EXPECT_EQ(d.backend, statelessBackend(*vip, p.slot_hash, key_addr.bytes.data(), Family::V4));
  EXPECT_NE(d.backend, kNoBackend);
  EXPECT_EQ(d.old_backend, kNoBackend);
  EXPECT_TRUE(d.store);
  EXPECT_EQ(d.value.backend_id, d.backend);
  EXPECT_EQ(d.value.state, FlowState::TcpSyn);
  EXPECT_EQ(d.value.last_seen_ms, 5000u);
}

TEST_F(DecideFixture, LiveEntryIsAHitAndRewritesOnlyOnStateChangeOrRefresh) {
  const FlowFacts ack = facts(2, kTcpAck);
  // Some backend other than the Maglev choice: a hit must keep the entry's, not re-pick.
  const uint32_t maglev = statelessBackend(*vip, ack.slot_hash, key_addr.bytes.data(), Family::V4);
  uint32_t other = kNoBackend;
  for (uint32_t id : vip->backends)
    if (id != maglev) other = id;
  ASSERT_NE(other, kNoBackend);
  FlowDecision d = decideFlow(*s, ack, true, entry(other, FlowState::TcpEstablished, 1000), 1500, {&cursor, nullptr}, room(false), src());
  EXPECT_EQ(d.outcome, FlowOutcome::Hit);
  EXPECT_EQ(d.backend, other);
  EXPECT_FALSE(d.store) << "same state, refreshed 500 ms ago";
  d = decideFlow(*s, ack, true, entry(other, FlowState::TcpEstablished, 1000), 1000 + kFlowRefreshMs, {&cursor, nullptr}, room(false), src());
  EXPECT_TRUE(d.store) << "refresh due";
  EXPECT_EQ(d.value.last_seen_ms, 1000 + kFlowRefreshMs);
  d = decideFlow(*s, ack, true, entry(other, FlowState::TcpSyn, 1000), 1100, {&cursor, nullptr}, room(false), src());
  EXPECT_TRUE(d.store) << "SYN -> established";
  EXPECT_EQ(d.value.state, FlowState::TcpEstablished);
  EXPECT_EQ(cursor, 0u);
}

TEST_F(DecideFixture, ExpiredEntryIsReplacedByANewChoice) {
  const FlowFacts p = facts(3, kTcpAck);
  const uint32_t old = vip->backends[0];
  const uint32_t idle = s->timeouts.tcp_established_ms + 1;
  // The table answers Stored for a key it holds (FlowTable::canStore): overwriting needs no room.
  const FlowDecision d = decideFlow(*s, p, true, entry(old, FlowState::TcpEstablished, 0), idle, {&cursor, nullptr}, room(true), src());
  EXPECT_EQ(d.outcome, FlowOutcome::Expired);
  EXPECT_EQ(d.entry, EntryVerdict::Expired);
  EXPECT_EQ(d.old_backend, old);
  EXPECT_EQ(d.backend, statelessBackend(*vip, p.slot_hash, key_addr.bytes.data(), Family::V4));
  EXPECT_TRUE(d.store) << "the key is in the table: overwriting needs no room";
  EXPECT_EQ(d.value.state, FlowState::TcpEstablished);
}

TEST_F(DecideFixture, EntryOnARemovedOrForeignBackendIsRehashed) {
  const FlowFacts p = facts(4, kTcpAck);
  for (uint32_t gone : {uint32_t(999), uint32_t(kNoBackend)}) {
    // As above: the key is held, so the table answers Stored.
    const FlowDecision d = decideFlow(*s, p, true, entry(gone, FlowState::TcpEstablished, 0), 10, {&cursor, nullptr}, room(true), src());
    EXPECT_EQ(d.outcome, FlowOutcome::Rehash) << gone;
    EXPECT_EQ(d.entry, EntryVerdict::Unusable);
    EXPECT_EQ(d.backend, statelessBackend(*vip, p.slot_hash, key_addr.bytes.data(), Family::V4));
    EXPECT_TRUE(d.store);
  }
}

TEST_F(DecideFixture, FullTableLeavesTheFlowUntrackedOnMaglev) {
  const FlowFacts p = facts(5, kTcpSyn);
  const FlowDecision d = decideFlow(*s, p, false, 0, 10, {&cursor, nullptr}, room(false), src());
  EXPECT_EQ(d.outcome, FlowOutcome::Untracked);
  EXPECT_FALSE(d.store);
  EXPECT_EQ(d.backend, statelessBackend(*vip, p.slot_hash, key_addr.bytes.data(), Family::V4));
}

TEST_F(DecideFixture, RoundRobinFullTableFallsBackToTheMaglevSlotAndWithoutCursorNamesNone) {
  cfg = schedConfig(Scheduler::RoundRobin, {1, 1, 1});
  s = build(sb, cfg);
  vip = &s->vips[0];
  const FlowFacts p = facts(6, kTcpSyn);
  FlowDecision d = decideFlow(*s, p, false, 0, 10, {&cursor, nullptr}, room(true), src());
  EXPECT_EQ(d.outcome, FlowOutcome::New);
  EXPECT_EQ(d.backend, vip->rr[0]);
  EXPECT_EQ(cursor, 1u);
  d = decideFlow(*s, p, false, 0, 10, {&cursor, nullptr}, room(false), src());
  EXPECT_EQ(d.outcome, FlowOutcome::Untracked);
  EXPECT_EQ(d.backend, vip->maglev[maglevSlot(p.slot_hash, vip->maglev.size())]);
  // explain asks without the worker's cursor: the round-robin choice has no name.
  d = decideFlow(*s, p, false, 0, 10, {}, room(true), src());
  EXPECT_EQ(d.outcome, FlowOutcome::New);
  EXPECT_EQ(d.backend, kNoBackend);
}

TEST_F(DecideFixture, NoUsableBackendIsNoBackendAndNothingStored) {
  Config c = cfg;
  c.vips[0].backends.clear();
  auto empty = build(sb, c);
  ASSERT_TRUE(empty);
  const FlowFacts p = facts(7, kTcpSyn, &empty->vips[0]);
  for (bool hit : {false, true}) {
    const FlowDecision d = decideFlow(*empty, p, hit, entry(999, FlowState::TcpEstablished, 0), 10, {&cursor, nullptr}, room(true), src());
    EXPECT_EQ(d.outcome, FlowOutcome::NoBackend);
    EXPECT_FALSE(d.store);
    EXPECT_EQ(d.backend, kNoBackend);
    EXPECT_EQ(d.entry, hit ? EntryVerdict::Unusable : EntryVerdict::None);
  }
}

// ---------------------------------------------------------------------------------------------
// Flood admission through the worker's burst (processBurst -> decideFlow -> FlowTable::store).

FlowValue entryOf(const WorkerState& w, const Frame& f) {
  // The frame's flow key, as the worker builds it (Ethernet 14 + IPv4 20: ports at 34).
  FlowKey4 k;
  const uint8_t* ip = f.data() + 14;
  uint16_t sport, dport;
  std::memcpy(&sport, ip + 20, 2);
  std::memcpy(&dport, ip + 22, 2);
  makeFlowKey(k, ip + 12, ip + 16, sport, dport, ip[9]);
  uint64_t raw = 0;
  if (!w.flows4->lookupFamily<false>(&k, FlowTable::indexHash(k), raw)) return FlowValue{kNoBackend, FlowState::Udp, 0};
  return FlowValue::unpack(raw);
}

// Spoofed SYNs from many sources at established and new traffic. With admission, embryonic
// entries stop at the quota, every established flow keeps its entry and backend, and a new
// legitimate flow's ACK finds room. Negative control: with admission off (the test-only
// switch) the same flood fills the table and the new flows go untracked.
TEST(FloodAdmission, SynFloodLeavesEstablishedAndNewFlowsTracked) {
  for (bool enabled : {true, false}) {
    SCOPED_TRACE(enabled ? "admission on" : "admission off");
    SnapshotBuilder sb;
    auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
    ASSERT_TRUE(s);
    s->admission.enabled = enabled;
    auto w = makeWorker(1024);
    // 300 established flows: SYN, then ACK.
    const auto est_syn = flows(300, kTcpSyn), est_ack = flows(300, kTcpAck);
    const auto b_est = backendsFor(*w, *s, est_syn, 0);
    EXPECT_EQ(backendsFor(*w, *s, est_ack, 10), b_est);
    EXPECT_EQ(w->flows4->confirmed(), 300u);
    // 20'000 spoofed SYNs (another /16 of sources), in 10 ms steps.
    std::vector<Frame> flood;
    for (uint32_t i = 0; i < 20'000; i++) flood.push_back(tcpTo(clientAddr(0x10000 + i), uint16_t(2000 + i % 60000)));
    for (size_t off = 0; off < flood.size(); off += 1000) {
      std::vector<Frame> part(flood.begin() + off, flood.begin() + off + 1000);
      EXPECT_EQ(run(*w, *s, part, uint32_t(20 + off / 100)).size(), part.size()) << "every SYN is forwarded";
      if (enabled) {
        EXPECT_LE(w->flows4->embryonic(), 256u);
      }
    }
    // The established flows: all hits, same backends.
    const uint64_t hits = ctr(*w, Ctr::FlowHit);
    EXPECT_EQ(backendsFor(*w, *s, est_ack, 300), b_est);
    EXPECT_EQ(ctr(*w, Ctr::FlowHit) - hits, 300u);
    // New legitimate flows during the flood: SYN (maybe stateless), then ACK.
    const auto new_syn = flows(100, kTcpSyn, 1000), new_ack = flows(100, kTcpAck, 1000);
    const auto b_new = backendsFor(*w, *s, new_syn, 400);
    EXPECT_EQ(backendsFor(*w, *s, new_ack, 401), b_new) << "Maglev: the same backend, tracked or not";
    uint32_t tracked = 0;
    for (const Frame& f : new_ack) tracked += entryOf(*w, f).backend_id != kNoBackend;
    if (enabled) {
      // The quota, less the new flows' SYN entries their ACKs promoted.
      EXPECT_LE(w->flows4->embryonic(), 256u);
      EXPECT_GT(w->flows4->embryonic(), 100u);
      EXPECT_EQ(w->flows4->confirmed(), 400u);
      EXPECT_EQ(tracked, 100u) << "every new flow's ACK is admitted as confirmed";
      EXPECT_GT(ctr(*w, Ctr::FlowEmbryonicFull), 0u);
      EXPECT_GT(ctr(*w, Ctr::FlowEmbryonicDisplaced), 0u);
      EXPECT_EQ(ctr(*w, Ctr::FlowTableFull), 0u);
    } else {
      EXPECT_EQ(w->flows4->size(), 1024u);
      EXPECT_EQ(tracked, 0u) << "negative control: the flood holds every free slot";
      EXPECT_GT(ctr(*w, Ctr::FlowTableFull), 0u);
      EXPECT_EQ(ctr(*w, Ctr::FlowEmbryonicFull), 0u);
    }
    EXPECT_EQ(w->counters.totalDrops(), 0u);
  }
}

// Round robin needs its entries: a SYN entry holding a round-robin choice is pinned (never
// displaced), a flow picked up without SYN takes the Maglev slot (where its SYN went if that was
// forwarded statelessly), and UDP flows are confirmed from the first packet. So under a flood
// no round-robin flow is split across backends.
TEST(FloodAdmission, RoundRobinFlowsAreNotSplit) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::RoundRobin, {1, 1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker(1024);
  const auto legit_syn = flows(200, kTcpSyn), legit_ack = flows(200, kTcpAck);
  const auto b_legit = backendsFor(*w, *s, legit_syn, 0);
  EXPECT_TRUE(entryOf(*w, legit_syn[0]).pinned);
  // 5000 spoofed SYNs; their (would-be) ACKs afterwards.
  const auto flood_syn = flows(5000, kTcpSyn, 10'000), flood_ack = flows(5000, kTcpAck, 10'000);
  const auto b_flood = backendsFor(*w, *s, flood_syn, 10);
  EXPECT_LE(w->flows4->embryonic(), 256u);
  EXPECT_EQ(ctr(*w, Ctr::FlowEmbryonicDisplaced), 0u) << "every embryonic entry is pinned";
  EXPECT_GT(ctr(*w, Ctr::FlowEmbryonicFull), 0u);
  EXPECT_EQ(backendsFor(*w, *s, legit_ack, 20), b_legit);
  EXPECT_EQ(backendsFor(*w, *s, flood_ack, 30), b_flood);
  // UDP on a round-robin VIP: confirmed at once, the table's room decides (as before admission).
  Config c = schedConfig(Scheduler::RoundRobin, {1, 1, 1});
  c.vips[0].protocol = Proto::Udp;
  c.vips[0].port = 53;
  auto su = build(sb, c);
  ASSERT_TRUE(su);
  auto wu = makeWorker(1024);
  std::vector<Frame> udp;
  for (uint32_t i = 0; i < 2000; i++) udp.push_back(udpTo(clientAddr(i), uint16_t(3000 + i)));
  const auto first = backendsFor(*wu, *su, udp, 0);
  EXPECT_EQ(wu->flows4->confirmed(), 1024u);
  EXPECT_EQ(wu->flows4->embryonic(), 0u);
  EXPECT_EQ(backendsFor(*wu, *su, udp, 10), first);
}

// Repeated SYNs and SYN-ACK-looking packets from the client do not confirm an entry (ironcore
// dpservice #628); the first ACK does.
TEST(FloodAdmission, OnlyTheClientsAckPromotes) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker(1024);
  const Frame syn = tcpTo(kClient4, 5000, kTcpSyn);
  run(*w, *s, {syn, syn, tcpTo(kClient4, 5000, uint8_t(kTcpSyn | kTcpAck)), syn}, 0);
  EXPECT_EQ(entryOf(*w, syn).state, FlowState::TcpSyn);
  EXPECT_EQ(w->flows4->embryonic(), 1u);
  run(*w, *s, {tcpTo(kClient4, 5000, kTcpRst)}, 10);
  EXPECT_EQ(entryOf(*w, syn).state, FlowState::TcpSyn) << "an RST does not promote either";
  run(*w, *s, {tcpTo(kClient4, 5000, kTcpAck)}, 20);
  EXPECT_EQ(entryOf(*w, syn).state, FlowState::TcpEstablished);
  EXPECT_EQ(w->flows4->embryonic(), 0u);
  EXPECT_EQ(w->flows4->confirmed(), 1u);
}

// A spoofed RST (Jool #212): the entry keeps its backend and only gets the short reset timeout;
// the next data packet restores it to established, so the flow survives idling past that short
// timeout. Negative control: without admission the RST closes the entry, and after the
// closing timeout the flow's next packet starts a new flow.
TEST(FloodAdmission, SpoofedRstKeepsTheBackendAndALaterPacketRestores) {
  for (bool enabled : {true, false}) {
    SCOPED_TRACE(enabled ? "admission on" : "admission off");
    SnapshotBuilder sb;
    auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
    ASSERT_TRUE(s);
    s->admission.enabled = enabled;
    auto w = makeWorker(1024);
    const Frame syn = tcpTo(kClient4, 6000, kTcpSyn), ack = tcpTo(kClient4, 6000, kTcpAck);
    const auto b = backendsFor(*w, *s, {syn}, 0);
    backendsFor(*w, *s, {ack}, 10);
    EXPECT_EQ(backendsFor(*w, *s, {tcpTo(kClient4, 6000, kTcpRst)}, 20), b);
    EXPECT_EQ(entryOf(*w, syn).state, enabled ? FlowState::TcpReset : FlowState::TcpClosing);
    EXPECT_EQ(entryOf(*w, syn).backend_id, entryOf(*w, ack).backend_id);
    EXPECT_EQ(backendsFor(*w, *s, {ack}, 30), b);
    EXPECT_EQ(entryOf(*w, syn).state, enabled ? FlowState::TcpEstablished : FlowState::TcpClosing);
    // Idle past the closing/reset timeout (10 s), well within the established one (300 s).
    const uint64_t fresh = ctr(*w, Ctr::FlowNew);
    backendsFor(*w, *s, {ack}, 30 + s->timeouts.tcp_fin_ms + 1000);
    EXPECT_EQ(ctr(*w, Ctr::FlowNew) - fresh, enabled ? 0u : 1u);
  }
}

// UDP: the first packet makes an embryonic entry (udp_new timeout), the second confirms it.
TEST(FloodAdmission, UdpFirstPacketEmbryonicSecondConfirmed) {
  SnapshotBuilder sb;
  Config c = schedConfig(Scheduler::Maglev, {1, 1, 1});
  c.vips[0].protocol = Proto::Udp;
  c.vips[0].port = 53;
  c.flow_table.udp_new_timeout_ms = 2000;
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->timeouts.udp_new_ms, 2000u);
  auto w = makeWorker(1024);
  const Frame u = udpTo(kClient4, 7000);
  run(*w, *s, {u}, 0);
  EXPECT_EQ(entryOf(*w, u).state, FlowState::UdpNew);
  EXPECT_EQ(w->flows4->embryonic(), 1u);
  run(*w, *s, {u}, 100);
  EXPECT_EQ(entryOf(*w, u).state, FlowState::Udp);
  EXPECT_EQ(w->flows4->embryonic(), 0u);
  EXPECT_EQ(w->flows4->confirmed(), 1u);
  // A one-packet UDP flow expires on udp_new_timeout.
  const Frame one = udpTo(kClient4, 7001);
  run(*w, *s, {one}, 1000);
  const uint64_t fresh = ctr(*w, Ctr::FlowNew);
  run(*w, *s, {one}, 1000 + 2001);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew) - fresh, 1u) << "idle past udp_new_timeout: a new flow";
}

// The per-VIP new-flow rate: a burst of new flows beyond the bucket goes stateless (or is
// dropped), the bucket refills at the rate from the worker's clock, and hits never take tokens.
TEST(FloodAdmission, NewFlowRateStatelessOrDrop) {
  for (bool drop : {false, true}) {
    SCOPED_TRACE(drop ? "drop" : "stateless");
    SnapshotBuilder sb;
    Config c = schedConfig(Scheduler::Maglev, {1, 1, 1});
    c.vips[0].new_flow_rate = 100;  // per second; one worker (schedConfig)
    c.vips[0].new_flow_burst = 10;
    c.vips[0].over_rate_drop = drop;
    auto s = build(sb, c);
    ASSERT_TRUE(s);
    c.eal.worker_cores = {1};  // one worker: the whole rate
    s = build(sb, c);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->vips[0].new_flow.per_ms, 100'000u);  // 0.1 flow per ms
    EXPECT_EQ(s->vips[0].new_flow.burst, 10 * kTokensPerFlow);
    auto w = makeWorker(1024);
    // 30 new flows at t=1000: the burst (10) passes, 20 are over the rate.
    auto out = run(*w, *s, flows(30, kTcpAck), 1000);
    EXPECT_EQ(ctr(*w, Ctr::FlowNew), 10u);
    EXPECT_EQ(out.size(), drop ? 10u : 30u);
    EXPECT_EQ(ctr(*w, Ctr::FlowRateStateless), drop ? 0u : 20u);
    EXPECT_EQ(w->counters.get(Drop::RateLimited), drop ? 20u : 0u);
    // The tracked ten are hits: no token needed.
    run(*w, *s, flows(10, kTcpAck), 1001);
    EXPECT_EQ(ctr(*w, Ctr::FlowHit), 10u);
    // 50 ms later: 5 more tokens.
    run(*w, *s, flows(20, kTcpAck, 100), 1050);
    EXPECT_EQ(ctr(*w, Ctr::FlowNew), 15u);
    // Stateless flows still go to their Maglev backend.
    if (!drop) {
      auto probe = makeWorker(1024);
      s->vips[0].new_flow = {};  // unlimited
      EXPECT_EQ(backendsFor(*probe, *s, flows(30, kTcpAck, 200), 2000), backendsFor(*w, *s, flows(30, kTcpAck, 200), 2000));
    }
  }
}

TEST(TokenBucket, RateAndBurst) {
  // 500 flows/s on one worker: per_ms = 500'000 (half a flow per ms), burst 3.
  const NewFlowLimit lim{500'000, 3 * kTokensPerFlow, false};
  TokenBucket b;
  int passed = 0;
  for (int i = 0; i < 10; i++) passed += takeNewFlowToken(b, lim, 100);
  EXPECT_EQ(passed, 3) << "a full bucket at first use, nothing more in the same ms";
  passed = 0;
  for (uint32_t t = 101; t <= 200; t++) passed += takeNewFlowToken(b, lim, t);
  EXPECT_EQ(passed, 50) << "half a flow per ms";
  // Idle for an hour: the bucket holds the burst, not more.
  passed = 0;
  for (int i = 0; i < 10; i++) passed += takeNewFlowToken(b, lim, 200 + 3'600'000);
  EXPECT_EQ(passed, 3);
  // Unlimited: always passes, the bucket untouched.
  TokenBucket u;
  for (int i = 0; i < 1000; i++) EXPECT_TRUE(takeNewFlowToken(u, NewFlowLimit{}, 5));
  EXPECT_FALSE(u.primed);
  // The clock wraps (uint32 ms): still refills by the difference.
  TokenBucket wb;
  for (int i = 0; i < 3; i++) EXPECT_TRUE(takeNewFlowToken(wb, lim, 0xffffffffu - 1));
  EXPECT_FALSE(takeNewFlowToken(wb, lim, 0xffffffffu - 1));
  EXPECT_TRUE(takeNewFlowToken(wb, lim, 2));  // 4 ms later: two flows' worth
  EXPECT_TRUE(takeNewFlowToken(wb, lim, 2));
  EXPECT_FALSE(takeNewFlowToken(wb, lim, 2));
}

// The snapshot builder splits the rate and the burst over the workers.
TEST(TokenBucket, SplitOverWorkers) {
  SnapshotBuilder sb;
  Config c = schedConfig(Scheduler::Maglev, {1});
  c.eal.worker_cores = {1, 2, 3, 4};
  c.vips[0].new_flow_rate = 1000;
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->vips[0].new_flow.per_ms, 250'000u);           // 250 flows/s per worker
  EXPECT_EQ(s->vips[0].new_flow.burst, 250 * kTokensPerFlow);  // burst = rate by default, split
  EXPECT_FALSE(s->vips[0].new_flow.drop);
  c.vips[0].new_flow_rate = 0;
  auto u = build(sb, c);
  EXPECT_EQ(u->vips[0].new_flow.per_ms, 0u);
}

}  // namespace
}  // namespace l4lb::dataplane
