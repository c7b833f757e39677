// The worker's fragment path (worker.cc handleFragment) on mbufs: first fragments scheduled as
// their 5-tuple, later ones following (also out of order), the per-VIP drop policy, and the hand-
// off between two workers over their rings: fragments of one datagram received by different
// workers still leave toward the flow's backend. Negative control: without the rings, the
// same split datagrams do not come out.
#include <rte_ring.h>

#include "worker_fixture.h"

namespace l4lb::dataplane {
namespace {

using namespace wtest;  // NOLINT(google-build-using-namespace): the shared fixture

Frame first(const IpAddr& client, uint16_t sport, uint16_t id) {
  return PacketBuilder().eth(kClientMac, kWanMac).ipv4(client, kVip4).tcp(sport, 80, kTcpAck).payload(32).mf().ipId(id).build();
}

Frame later(const IpAddr& client, uint16_t id, uint16_t off_units, bool more) {
  // The bytes after the IP header are payload for the parser (offset != 0): any content does.
  return PacketBuilder().eth(kClientMac, kWanMac).ipv4(client, kVip4).tcp(1, 2, 0).payload(24).mf(more).fragOffset(off_units).ipId(id).build();
}

void addFrags(WorkerState& w) { w.frags = std::make_unique<FragTable>(256, 64, 8); }

uint64_t drops(const WorkerState& w, Drop d) { return w.counters.get(d); }

std::vector<Out> drain(WorkerState& w, const Snapshot& s) {
  std::vector<Out> out;
  TxBatch tx;
  tx.clear();
  drainHandOffRing(w, s, 0, tx);
  for (uint16_t p = 0; p < kMaxPorts; p++)
    for (uint16_t k = 0; k < tx.n[p]; k++) {
      rte_mbuf* m = tx.pkts[p][k];
      const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.push_back({p, Frame(d, d + rte_pktmbuf_data_len(m))});
      rte_pktmbuf_free(m);
    }
  return out;
}

TEST(FragPath, LaterFragmentsFollowTheFirstInAnyOrder) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  addFrags(*w);
  for (uint32_t i = 0; i < 40; i++) {
    const IpAddr c = clientAddr(i);
    const uint16_t sport = uint16_t(30000 + i), id = uint16_t(100 + i);
    // The flow's backend, from an unfragmented packet.
    auto ref = runOne(*w, *s, tcpTo(c, sport, kTcpAck));
    ASSERT_TRUE(ref);
    const int want = backendOf(*ref);
    ASSERT_GE(want, 0);
    // Even i: in order. Odd i: the later fragments first (held), then the first.
    std::vector<Frame> frames = {first(c, sport, id), later(c, id, 5, true), later(c, id, 10, false)};
    if (i % 2) std::rotate(frames.begin(), frames.begin() + 1, frames.end());
    auto out = run(*w, *s, frames);
    ASSERT_EQ(out.size(), 3u) << i;
    for (const auto& o : out) EXPECT_EQ(backendOf(o), want) << i;
  }
  EXPECT_EQ(w->counters.get(Ctr::FragFirst), 40u);
  EXPECT_EQ(w->counters.get(Ctr::FragHeld), 40u);
  EXPECT_EQ(w->counters.get(Ctr::FragTracked), 40u);
  EXPECT_EQ(w->counters.get(Ctr::FragForwarded), 120u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST(FragPath, HeldFragmentsTimeOutCounted) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  addFrags(*w);
  EXPECT_TRUE(run(*w, *s, {later(clientAddr(1), 7, 5, true), later(clientAddr(1), 7, 9, false)}, 1000).empty());
  EXPECT_EQ(w->frags->held(), 2u);
  uint32_t removed = 0;
  for (int k = 0; k < 64; k++) removed += sweepFrags(*w, 1000 + s->frag_timeout_ms);
  EXPECT_EQ(removed, 1u);
  EXPECT_EQ(drops(*w, Drop::FragTimeout), 2u);
  EXPECT_EQ(w->frags->held(), 0u);
}

TEST(FragPath, DropPolicyDropsEveryFragment) {
  SnapshotBuilder sb;
  Config c = schedConfig(Scheduler::Maglev, {1, 1});
  c.vips[0].fragments = FragPolicy::Drop;
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  auto w = makeWorker();
  addFrags(*w);
  const IpAddr cl = clientAddr(3);
  auto out = run(*w, *s, {later(cl, 9, 5, true), first(cl, 1234, 9), later(cl, 9, 10, false), tcpTo(cl, 1234, kTcpAck)});
  ASSERT_EQ(out.size(), 1u);  // only the unfragmented packet
  EXPECT_EQ(drops(*w, Drop::Fragment), 3u);
}

// Two workers, each datagram's first fragment received by one and its later fragment by the
// other (as RSS by 4-tuple for whole packets and 2-tuple for fragments would do).
struct TwoWorkers {
  std::unique_ptr<WorkerState> w[2];
  rte_ring* rings[2] = {nullptr, nullptr};
  explicit TwoWorkers(bool with_rings) {
    static int n = 0;
    for (int i = 0; i < 2; i++) {
      w[i] = makeWorker();
      w[i]->index = uint16_t(i);
      addFrags(*w[i]);
      if (with_rings) {
        const std::string name = "fp_ring" + std::to_string(n++);
        rings[i] = rte_ring_create(name.c_str(), kHandOffRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
        EXPECT_NE(rings[i], nullptr);
      }
    }
    if (with_rings)
      for (auto& x : w) x->handoff_rings = {rings[0], rings[1]};
  }
  ~TwoWorkers() {
    for (rte_ring* r : rings) rte_ring_free(r);
  }
};

// Returns how many of `n` split datagrams came out whole at the flow's backend.
int splitDatagrams(TwoWorkers& tw, const Snapshot& s, uint32_t n) {
  int whole = 0;
  for (uint32_t i = 0; i < n; i++) {
    const IpAddr c = clientAddr(100 + i);
    const uint16_t sport = uint16_t(31000 + i), id = uint16_t(500 + i);
    auto ref = runOne(*tw.w[0], s, tcpTo(c, sport, kTcpAck));
    if (!ref) continue;
    const int want = backendOf(*ref);
    const int a = int(i % 2);
    // Later fragment first on one worker, the first on the other: each may hand off.
    auto out = run(*tw.w[1 - a], s, {later(c, id, 5, false)});
    auto o2 = run(*tw.w[a], s, {first(c, sport, id)});
    out.insert(out.end(), o2.begin(), o2.end());
    for (int k = 0; k < 2; k++) {
      auto d = drain(*tw.w[k], s);
      out.insert(out.end(), d.begin(), d.end());
    }
    int good = 0;
    for (const auto& o : out) good += backendOf(o) == want;
    whole += out.size() == 2 && good == 2;
  }
  return whole;
}

TEST(FragPath, FragmentsOfOneDatagramOnTwoWorkersMeetAtTheOwner) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1, 1}));
  ASSERT_TRUE(s);
  TwoWorkers tw(true);
  EXPECT_EQ(splitDatagrams(tw, *s, 40), 40);
  // Both workers handed fragments over (each owns about half the address pairs).
  EXPECT_GT(tw.w[0]->counters.get(Ctr::FragHandedOff), 0u);
  EXPECT_GT(tw.w[1]->counters.get(Ctr::FragHandedOff), 0u);
  EXPECT_EQ(tw.w[0]->counters.totalDrops() + tw.w[1]->counters.totalDrops(), 0u);
}

TEST(FragPath, NegativeControlWithoutRingsSplitDatagramsAreLost) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1, 1}));
  ASSERT_TRUE(s);
  TwoWorkers tw(false);
  // Each worker sees only half a datagram: the later fragment waits in a table the first never
  // reaches.
  EXPECT_EQ(splitDatagrams(tw, *s, 40), 0);
  EXPECT_EQ(tw.w[0]->counters.get(Ctr::FragHeld) + tw.w[1]->counters.get(Ctr::FragHeld), 40u);
}

// Regression (fuzz_burst, crash-e0fcfe00): a first fragment's decision names its VIP by index.
// After a reload that gives that index and the backend's id to another VIP at another address,
// a later fragment must not take that VIP's NAT rewrite (its checksum difference is for the
// other address: the IPv4 header checksum came out wrong). Dropped as no_backend.
// Negative control: without the reload the same later fragment is forwarded, checksum correct.
TEST(FragPath, StaleDecisionForAnotherVipAddressIsDropped) {
  auto natConfig = [](const IpAddr& vip) {
    Config c = schedConfig(Scheduler::Maglev, {1});
    c.vips[0].address = vip;
    c.vips[0].forwarding = FwdMode::Nat;
    return c;
  };
  SnapshotBuilder ba, bb;  // separate builders: the same backend id and VIP index in both
  auto a = build(ba, natConfig(kVip4));
  auto b = build(bb, natConfig(ipAddr("192.0.2.9")));
  ASSERT_TRUE(a && b);
  auto w = makeWorker();
  addFrags(*w);
  const IpAddr c = clientAddr(3);
  ASSERT_EQ(run(*w, *a, {first(c, 31000, 77)}).size(), 1u);
  auto out = run(*w, *a, {later(c, 77, 5, true)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(out[0].bytes, 14));
  EXPECT_TRUE(run(*w, *b, {later(c, 77, 10, false)}).empty());
  EXPECT_EQ(drops(*w, Drop::NoBackend), 1u);
}

}  // namespace
}  // namespace l4lb::dataplane
