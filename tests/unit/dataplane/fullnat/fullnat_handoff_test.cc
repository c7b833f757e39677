// Full NAT's replies between workers (fullnat_handoff.h): a backend's packet received by a worker
// that does not own its pair goes to the owner's hand-off ring, and the owner translates it back
// to the client when it drains the ring; a full ring (or none) is a counted drop.
#include "dataplane/fullnat/fullnat_handoff.h"

#include <gtest/gtest.h>

#include "dataplane/fullnat/fullnat_path.h"
#include "worker_fixture.h"

namespace l4lb::dataplane::wtest {
namespace {

const IpAddr kSnat = ipAddr("198.18.2.2");
constexpr uint16_t kLo = 40000, kHi = 40003;  // worker 0 owns 40000 and 40002, worker 1 the others

Config fullNatConfig() {
  Config c = topology();
  c.vips.push_back(fullNatVip({.vip = kVip4, .port = 80, .snat = {kSnat}, .lo = kLo, .hi = kHi, .quiet_ms = 5000,
                               .backend = kB4, .mac = kB4Mac, .bport = 8080}));
  return c;
}

// Two workers sharing the pool, each with its hand-off ring (`ring_size`: the ring's size, one
// less fits).
struct TwoWorkers {
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<WorkerState> w[2];
  rte_ring* rings[2] = {nullptr, nullptr};
  explicit TwoWorkers(bool with_rings, uint32_t ring_size = kHandOffRingSize) {
    static int n = 0;
    s = build(sb, fullNatConfig());
    EXPECT_TRUE(s);
    for (uint16_t i = 0; i < 2; i++) {
      w[i] = makeWorker();
      w[i]->index = i;
      std::string err;
      if (s) w[i]->fullnat = FullNatState::create(s->snat_addrs, i, 2, SOCKET_ID_ANY, err);
      EXPECT_TRUE(w[i]->fullnat) << err;
      if (with_rings) {
        const std::string name = "fnh_ring" + std::to_string(n++);
        rings[i] = rte_ring_create(name.c_str(), ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
        EXPECT_NE(rings[i], nullptr);
      }
    }
    if (with_rings)
      for (auto& x : w) x->handoff_rings = {rings[0], rings[1]};
  }
  ~TwoWorkers() {
    for (rte_ring* r : rings) {
      void* m;
      while (r != nullptr && rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
    }
  }
  // What worker `i` sends after draining its ring.
  std::vector<Out> drain(uint16_t i, uint32_t now = 0) {
    std::vector<Out> out;
    TxBatch tx;
    tx.clear();
    drainHandOffRing(*w[i], *s, now, tx);
    for (uint16_t p = 0; p < kMaxPorts; p++)
      for (uint16_t k = 0; k < tx.n[p]; k++) {
        rte_mbuf* m = tx.pkts[p][k];
        const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
        out.push_back({p, Frame(d, d + rte_pktmbuf_data_len(m))});
        rte_pktmbuf_free(m);
      }
    return out;
  }
};

Frame syn(uint16_t cport) {
  return PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).df().tcp(cport, 80, kTcpSyn).tcpSeq(100, 0).build();
}

Frame reply(uint16_t snat_port) {
  return PacketBuilder()
      .eth(kB4Mac, kLanMac)
      .ipv4(kB4, kSnat)
      .df()
      .tcp(8080, snat_port, kTcpSyn | kTcpAck)
      .tcpSeq(900, 101)
      .build();
}

uint16_t sportOf(const Frame& f) { return get16(f, 14 + 20); }

TEST(FullNatHandOff, AReplyAtTheOtherWorkerReachesTheOwnerAndGoesBack) {
  TwoWorkers tw(true);
  auto o = runOne(*tw.w[0], *tw.s, syn(1234));
  ASSERT_TRUE(o);
  const uint16_t sp = sportOf(o->bytes);
  EXPECT_EQ(tw.w[0]->fullnat->ownerOf(0, sp), 0);
  EXPECT_EQ(ctr(*tw.w[0], Ctr::FullNatUnsteered), 1u);  // no RSS known: not steered
  // RSS put the reply on worker 1's queue: nothing leaves worker 1, it is on worker 0's ring.
  EXPECT_TRUE(run(*tw.w[1], *tw.s, {reply(sp)}, 0, kLan).empty());
  EXPECT_EQ(ctr(*tw.w[1], Ctr::FullNatHandedOff), 1u);
  EXPECT_EQ(tw.w[1]->counters.totalDrops(), 0u);
  EXPECT_EQ(rte_ring_count(tw.rings[0]), 1u);
  EXPECT_TRUE(tw.drain(1).empty());  // worker 1's own ring is empty
  const auto out = tw.drain(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kWan);
  const Frame want = PacketBuilder()
                         .eth(kWanMac, kGwMac)
                         .ipv4(kVip4, kClient4)
                         .ttl(63)
                         .df()
                         .tcp(80, 1234, kTcpSyn | kTcpAck)
                         .tcpSeq(900, 101)
                         .build();
  expectFrame(out[0].bytes, want, "handed-off reply -> client");
  EXPECT_EQ(ctr(*tw.w[0], Ctr::FullNatReverse), 1u);
  EXPECT_EQ(tw.w[0]->counters.totalDrops(), 0u);
  // The owner's own reply needs no ring.
  auto direct = runOne(*tw.w[0], *tw.s, reply(sp), 0, kLan);
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->port, kWan);
  EXPECT_EQ(ctr(*tw.w[0], Ctr::FullNatHandedOff), 0u);
}

TEST(FullNatHandOff, AReplyForNoLiveSessionIsDroppedAtTheOwner) {
  TwoWorkers tw(true);
  // Port 40001 is worker 1's, and no flow uses it: worker 0 hands it over, worker 1 drops it.
  EXPECT_TRUE(run(*tw.w[0], *tw.s, {reply(40001)}, 0, kLan).empty());
  EXPECT_EQ(ctr(*tw.w[0], Ctr::FullNatHandedOff), 1u);
  EXPECT_TRUE(tw.drain(1).empty());
  expectOnlyDrop(*tw.w[1], Drop::FullNatNoSession);
}

TEST(FullNatHandOff, AFullRingOrNoRingIsACountedDrop) {
  TwoWorkers tw(true, 2);  // room for one
  auto o = runOne(*tw.w[0], *tw.s, syn(1234));
  ASSERT_TRUE(o);
  const uint16_t sp = sportOf(o->bytes);
  EXPECT_TRUE(run(*tw.w[1], *tw.s, {reply(sp), reply(sp)}, 0, kLan).empty());
  EXPECT_EQ(ctr(*tw.w[1], Ctr::FullNatHandedOff), 1u);
  expectOnlyDrop(*tw.w[1], Drop::FullNatRingFull);
  EXPECT_EQ(tw.drain(0).size(), 1u);

  TwoWorkers none(false);
  auto o2 = runOne(*none.w[0], *none.s, syn(1234));
  ASSERT_TRUE(o2);
  EXPECT_TRUE(run(*none.w[1], *none.s, {reply(sportOf(o2->bytes))}, 0, kLan).empty());
  expectOnlyDrop(*none.w[1], Drop::FullNatRingFull);
}

}  // namespace
}  // namespace l4lb::dataplane::wtest
