// Flow sync, the worker's side (src/dataplane/sync_rings.h): what a worker announces on its
// sync_out ring (new confirmed flows, the sweep's re-announcements), and how it applies peer
// records from sync_in (insert, refresh, replace, keep local, unknown, table full), through
// processBurst, drainSyncIn and sweepFlows as workerMain calls them.
#include "worker_fixture.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/lookup.h"
#include "dataplane/sync_rings.h"

namespace l4lb::dataplane {
namespace {

using namespace wtest;  // NOLINT(google-build-using-namespace): the shared fixture

// Addresses from 198.18.0.0/15 only: clients 198.18.0.x (wtest::clientAddr), backends on the
// lan segment 198.18.40.0/24, VIP 198.18.42.100 (the scale-out lab's plan).
const IpAddr kVip = ipAddr("198.18.42.100");
IpAddr syncBackend(int i) { return ipAddr("198.18.40." + std::to_string(21 + i)); }
constexpr uint16_t kVipPort = 80;
constexpr uint32_t kAnnounceMs = 2000;

// wan (clients through a gateway) + lan (backends 198.18.40.21 ..), VIP kVip:80/TCP DSR Maglev
// with `n` backends (MACs wtest::backendMac(i)); sync on (kAnnounceMs).
Config syncConfig(int n, uint16_t backend_port = 0) {
  Config c = test::topo::topology({.wan4 = "198.18.41.1/24", .wan6 = "2001:db8:41::1/64", .gw4 = "198.18.41.254",
                                    .gw6 = "2001:db8:41::fe", .lan4 = "198.18.40.1/24", .lan6 = "2001:db8:40::1/64"});
  VipConfig v;
  v.address = kVip;
  v.port = kVipPort;
  v.protocol = Proto::Tcp;
  v.scheduler = Scheduler::Maglev;
  for (int i = 0; i < n; i++) v.backends.push_back(makeBackend(syncBackend(i), backendMac(i), 1, backend_port));
  c.vips.push_back(v);
  return c;
}

std::unique_ptr<Snapshot> syncSnap(SnapshotBuilder& sb, const Config& c) {
  auto s = build(sb, c);
  if (s) s->sync_announce_ms = kAnnounceMs;
  return s;
}

std::unique_ptr<WorkerState> syncWorker(uint32_t ring = 256, uint32_t cap4 = 8192) {
  auto w = makeWorker(cap4);
  std::string err;
  EXPECT_TRUE(createSyncRings(*w, ring, err)) << err;
  return w;
}

Frame pkt(uint32_t client, uint16_t sport, uint8_t flags) { return tcpTo(clientAddr(client), sport, flags, kVipPort, kVip); }

// The backend index (syncConfig order) one packet went to, -1 if it was not sent to one.
int sendOne(WorkerState& w, const Snapshot& s, const Frame& f, uint32_t now) {
  auto out = run(w, s, {f}, now);
  if (out.size() != 1 || out[0].port != kLan) return -1;
  return backendOf(out[0]);
}

std::vector<SyncFlow> takeOut(WorkerState& w) {
  std::vector<SyncFlow> v;
  SyncFlow r;
  while (rte_ring_sc_dequeue_elem(w.sync_out, &r, sizeof(r)) == 0) v.push_back(r);
  return v;
}

// A peer's record of client `client`:`sport` -> kVip:80 on backend `b` (syncConfig index).
SyncFlow record(uint32_t client, uint16_t sport, int b, uint32_t idle_ms = 0,
                FlowState st = FlowState::TcpEstablished, const IpAddr& vip = kVip, uint16_t backend_port = 0) {
  SyncFlow r;
  r.proto = kProtoTcp;
  r.state = uint8_t(st);
  r.sport_be = rte_cpu_to_be_16(sport);
  r.dport_be = rte_cpu_to_be_16(kVipPort);
  std::memcpy(r.src, clientAddr(client).bytes.data(), 4);
  std::memcpy(r.dst, vip.bytes.data(), 4);
  std::memcpy(r.backend, syncBackend(b).bytes.data(), 4);
  r.backend_port_be = rte_cpu_to_be_16(backend_port);
  r.idle_ms = idle_ms;
  r.generation = 7;
  return r;
}

void putIn(WorkerState& w, SyncFlow r) { ASSERT_EQ(rte_ring_sp_enqueue_elem(w.sync_in, &r, sizeof(r)), 0); }

// The table's entry for the flow, if any: its value and flow sync's bits (flow.h).
struct Entry {
  uint32_t backend_id;
  FlowState state;
  uint32_t last_seen_ms;
  bool from_peer, announced;
};
std::optional<Entry> entry(WorkerState& w, uint32_t client, uint16_t sport) {
  FlowKey4 k;
  hash_sig_t idx;
  makeFlowKey(k, clientAddr(client).bytes.data(), kVip.bytes.data(), rte_cpu_to_be_16(sport),
              rte_cpu_to_be_16(kVipPort), kProtoTcp, &idx);
  uint64_t raw;
  if (!w.flows4->lookupFamily<false>(&k, idx, raw)) return std::nullopt;
  const FlowValue v = FlowValue::unpack(raw);
  return Entry{v.backend_id, v.state, v.last_seen_ms, (raw & kFlowPeerBit) != 0, (raw & kFlowAnnouncedBit) != 0};
}

// One full sweep pass as workerMain runs it: sweepFlows every ms for sync_announce_ms.
void sweepPass(WorkerState& w, const Snapshot& s, uint32_t from) {
  for (uint32_t t = from; t <= from + kAnnounceMs; t++) sweepFlows(w, t, s);
}

TEST(SyncRings, CreateChecksSizeAndOnce) {
  auto w = makeWorker();
  std::string err;
  EXPECT_FALSE(createSyncRings(*w, 0, err));
  EXPECT_NE(err.find("must be 1.."), std::string::npos) << err;
  EXPECT_EQ(w->sync_out, nullptr);
  ASSERT_TRUE(createSyncRings(*w, 5, err)) << err;
  ASSERT_NE(w->sync_out, nullptr);
  ASSERT_NE(w->sync_in, nullptr);
  EXPECT_EQ(rte_ring_get_capacity(w->sync_out), 5u);  // exactly the size asked for
  EXPECT_FALSE(createSyncRings(*w, 5, err));
  EXPECT_NE(err.find("exist already"), std::string::npos) << err;
}

TEST(SyncRings, NewConfirmedFlowAnnouncedWithItsIdentity) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker();
  // The SYN makes an embryonic entry: not announced.
  const int b = sendOne(*w, *s, pkt(1, 40001, kTcpSyn), 100);
  ASSERT_GE(b, 0);
  EXPECT_TRUE(takeOut(*w).empty());
  // The handshake's ACK confirms it: one record, with the flow's 5-tuple and backend identity.
  ASSERT_EQ(sendOne(*w, *s, pkt(1, 40001, kTcpAck), 150), b);
  auto out = takeOut(*w);
  ASSERT_EQ(out.size(), 1u);
  const SyncFlow& r = out[0];
  EXPECT_EQ(r.v6, 0);
  EXPECT_EQ(r.proto, kProtoTcp);
  EXPECT_EQ(r.state, uint8_t(FlowState::TcpEstablished));
  EXPECT_EQ(r.sport_be, rte_cpu_to_be_16(40001));
  EXPECT_EQ(r.dport_be, rte_cpu_to_be_16(kVipPort));
  EXPECT_EQ(std::memcmp(r.src, clientAddr(1).bytes.data(), 16), 0);
  EXPECT_EQ(std::memcmp(r.dst, kVip.bytes.data(), 16), 0);
  EXPECT_EQ(r.backend_v6, 0);
  EXPECT_EQ(std::memcmp(r.backend, syncBackend(b).bytes.data(), 16), 0);
  EXPECT_EQ(r.backend_port_be, 0);
  EXPECT_EQ(r.idle_ms, 0u);
  EXPECT_EQ(r.generation, s->generation);
  EXPECT_EQ(ctr(*w, Ctr::SyncAnnounced), 1u);
  EXPECT_TRUE(entry(*w, 1, 40001)->announced);
  // More packets of the flow: no more records from the hit path.
  run(*w, *s, {pkt(1, 40001, kTcpAck), pkt(1, 40001, kTcpAck)}, 1500);
  EXPECT_TRUE(takeOut(*w).empty());

  // A flow first seen mid-way (an ACK: confirmed at once) is announced by its miss.
  const int b2 = sendOne(*w, *s, pkt(2, 40002, kTcpAck), 200);
  ASSERT_GE(b2, 0);
  out = takeOut(*w);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::memcmp(out[0].backend, syncBackend(b2).bytes.data(), 4), 0);
  EXPECT_EQ(out[0].sport_be, rte_cpu_to_be_16(40002));

  // Sync off (no rings, or sync_announce_ms 0): nothing is announced.
  auto off = makeWorker();
  sendOne(*off, *s, pkt(3, 40003, kTcpAck), 200);
  EXPECT_EQ(ctr(*off, Ctr::SyncAnnounced), 0u);
  Snapshot s0 = *s;
  s0.sync_announce_ms = 0;
  sendOne(*w, s0, pkt(4, 40004, kTcpAck), 200);
  EXPECT_TRUE(takeOut(*w).empty());
}

// A client port whose flow Maglev sends to different backends in `a` and `b`.
uint16_t movedPort(const Snapshot& a, const Snapshot& b, uint32_t client, int& in_a, int& in_b) {
  for (uint16_t p = 41000; p < 42000; p++) {
    auto wa = makeWorker(64), wb = makeWorker(64);
    in_a = sendOne(*wa, a, pkt(client, p, kTcpAck), 0);
    in_b = sendOne(*wb, b, pkt(client, p, kTcpAck), 0);
    if (in_a >= 0 && in_b >= 0 && in_a != in_b) return p;
  }
  return 0;
}

TEST(SyncRings, PeerRecordKeepsTheFlowOnThePeersBackendAfterABackendChange) {
  // The peer chose with 3 backends; this balancer has 4 since (one added), so Maglev would move
  // the flow (Maglev NSDI'16 §3.3: why consistent hashing alone is not enough).
  SnapshotBuilder sb_peer, sb_here;
  auto peer = syncSnap(sb_peer, syncConfig(3));
  auto here = syncSnap(sb_here, syncConfig(4));
  ASSERT_TRUE(peer && here);
  int peer_b = -1, here_b = -1;
  const uint16_t sport = movedPort(*peer, *here, 9, peer_b, here_b);
  ASSERT_NE(sport, 0) << "no flow moved by the added backend";

  // Negative control: without the peer's record, this balancer sends the flow elsewhere.
  auto control = syncWorker();
  EXPECT_EQ(sendOne(*control, *here, pkt(9, sport, kTcpAck), 5000), here_b);
  EXPECT_NE(here_b, peer_b);

  // With it (drained from sync_in as workerMain does), the flow stays on the peer's backend.
  auto w = syncWorker();
  putIn(*w, record(9, sport, peer_b, 300));
  EXPECT_EQ(drainSyncIn(*w, *here, 5000), 1u);
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted), 1u);
  auto e = entry(*w, 9, sport);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->from_peer);
  EXPECT_EQ(e->state, FlowState::TcpEstablished);
  EXPECT_EQ(here->backends[e->backend_id].addr, syncBackend(peer_b));
  EXPECT_EQ(uint32_t(5000 - e->last_seen_ms), kFlowRefreshMs);  // idle 300 ms, aged to the refresh interval
  EXPECT_EQ(sendOne(*w, *here, pkt(9, sport, kTcpAck), 5100), peer_b);
  EXPECT_EQ(ctr(*w, Ctr::FlowPeerHit), 1u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 0u);
  // The local packet took the entry over: no longer a peer's, no second peer hit.
  e = entry(*w, 9, sport);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->from_peer);
  EXPECT_EQ(sendOne(*w, *here, pkt(9, sport, kTcpAck), 5200), peer_b);
  EXPECT_EQ(ctr(*w, Ctr::FlowPeerHit), 1u);
  EXPECT_EQ(ctr(*w, Ctr::FlowHit), 2u);
}

TEST(SyncRings, PeerRecordNeverOverridesALocalEntry) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker();
  const int local = sendOne(*w, *s, pkt(5, 40005, kTcpAck), 1000);
  ASSERT_GE(local, 0);
  const int other = (local + 1) % 3;
  putIn(*w, record(5, 40005, other, 0));  // newer than the local entry, still not applied
  EXPECT_EQ(drainSyncIn(*w, *s, 3000), 1u);
  EXPECT_EQ(ctr(*w, Ctr::SyncInKeptLocal), 1u);
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted) + ctr(*w, Ctr::SyncInReplaced), 0u);
  EXPECT_EQ(sendOne(*w, *s, pkt(5, 40005, kTcpAck), 3100), local);
  EXPECT_EQ(ctr(*w, Ctr::FlowPeerHit), 0u);

  // Once the local entry has expired, a record does take its place.
  const uint32_t later = 3100 + s->timeouts.tcp_established_ms + 1;
  putIn(*w, record(5, 40005, other, 0));
  drainSyncIn(*w, *s, later);
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted), 1u);
  EXPECT_EQ(sendOne(*w, *s, pkt(5, 40005, kTcpAck), later + 10), other);
}

TEST(SyncRings, PeerEntryRefreshedReplacedOnlyByNewerRecords) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker();
  putIn(*w, record(6, 40006, 0, 0));
  drainSyncIn(*w, *s, 10'000);  // last seen 9000 (aged to the refresh interval)
  putIn(*w, record(6, 40006, 0, 0));
  drainSyncIn(*w, *s, 12'000);  // same backend, newer: 11000
  EXPECT_EQ(ctr(*w, Ctr::SyncInRefreshed), 1u);
  EXPECT_EQ(entry(*w, 6, 40006)->last_seen_ms, 11'000u);
  putIn(*w, record(6, 40006, 1, 5000));
  drainSyncIn(*w, *s, 12'000);  // another backend, seen at 7000: older, ignored
  EXPECT_EQ(ctr(*w, Ctr::SyncInStale), 1u);
  EXPECT_EQ(s->backends[entry(*w, 6, 40006)->backend_id].addr, syncBackend(0));
  putIn(*w, record(6, 40006, 1, 0));
  drainSyncIn(*w, *s, 13'000);  // another backend, newer: replaced
  EXPECT_EQ(ctr(*w, Ctr::SyncInReplaced), 1u);
  EXPECT_EQ(sendOne(*w, *s, pkt(6, 40006, kTcpAck), 13'100), 1);
  // A record already idle past its state's timeout is a dead flow.
  putIn(*w, record(7, 40007, 0, s->timeouts.tcp_established_ms + 1));
  drainSyncIn(*w, *s, 13'000);
  EXPECT_EQ(ctr(*w, Ctr::SyncInStale), 2u);
  EXPECT_FALSE(entry(*w, 7, 40007));
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted), 1u);
}

TEST(SyncRings, UnknownVipOrBackendCounted) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3, 8080));
  ASSERT_TRUE(s);
  auto w = syncWorker();
  putIn(*w, record(8, 40008, 0, 0, FlowState::TcpEstablished, ipAddr("198.18.42.200"), 8080));  // no such VIP
  putIn(*w, record(8, 40008, 7, 0, FlowState::TcpEstablished, kVip, 8080));  // no such backend
  putIn(*w, record(8, 40008, 0, 0, FlowState::TcpEstablished, kVip, 8081));  // right address, wrong port
  SyncFlow bad = record(8, 40008, 0, 0, FlowState::TcpEstablished, kVip, 8080);
  bad.state = 6;  // no such FlowState
  putIn(*w, bad);
  EXPECT_EQ(drainSyncIn(*w, *s, 1000), 4u);
  EXPECT_EQ(ctr(*w, Ctr::SyncInUnknown), 4u);
  EXPECT_EQ(w->flows4->size(), 0u);
  // The same record with the right port is known (positive control).
  putIn(*w, record(8, 40008, 0, 0, FlowState::TcpEstablished, kVip, 8080));
  drainSyncIn(*w, *s, 1000);
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted), 1u);
  EXPECT_EQ(w->flows4->size(), 1u);
  // A backend that is down here is not one a flow may be kept on.
  Snapshot down = test::withBackendOut(*s, 0, s->vips[0].backends[1], s->vips[0].backends[0], BackendState::Unhealthy);
  putIn(*w, record(8, 40009, 1, 0, FlowState::TcpEstablished, kVip, 8080));
  drainSyncIn(*w, down, 1000);
  EXPECT_EQ(ctr(*w, Ctr::SyncInUnknown), 5u);
}

TEST(SyncRings, DrainIsBoundedPerCall) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker(256);
  for (uint16_t i = 0; i < kSyncDrainBurst + 5; i++) putIn(*w, record(10, uint16_t(30000 + i), 0));
  EXPECT_EQ(drainSyncIn(*w, *s, 1000), kSyncDrainBurst);
  EXPECT_EQ(drainSyncIn(*w, *s, 1000), 5u);
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted), kSyncDrainBurst + 5);
}

TEST(SyncRings, PeerRecordOnAFullTableCounted) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker(256, 4);
  for (uint16_t i = 0; i < 4; i++) ASSERT_GE(sendOne(*w, *s, pkt(11, uint16_t(40100 + i), kTcpAck), 1000), 0);
  ASSERT_EQ(w->flows4->size(), 4u);
  putIn(*w, record(12, 40200, 0));
  drainSyncIn(*w, *s, 1000);
  EXPECT_EQ(ctr(*w, Ctr::SyncInTableFull), 1u);
  EXPECT_FALSE(entry(*w, 12, 40200));
  // Room again (the local entries expired): the record is inserted.
  const uint32_t later = 1000 + s->timeouts.tcp_established_ms + 1;
  putIn(*w, record(12, 40200, 0));
  drainSyncIn(*w, *s, later);
  EXPECT_EQ(ctr(*w, Ctr::SyncInInserted), 1u);
  EXPECT_TRUE(entry(*w, 12, 40200));
}

TEST(SyncRings, FullOutRingCountedNeverBlocks) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker(2);
  std::vector<Frame> f;
  for (uint16_t i = 0; i < 5; i++) f.push_back(pkt(13, uint16_t(40300 + i), kTcpAck));
  EXPECT_EQ(run(*w, *s, f, 1000).size(), 5u);  // all forwarded
  EXPECT_EQ(ctr(*w, Ctr::SyncAnnounced), 2u);
  EXPECT_EQ(ctr(*w, Ctr::SyncOutFull), 3u);
  EXPECT_EQ(rte_ring_count(w->sync_out), 2u);
  // The three not announced keep their announced bit clear: the sweep announces them once the
  // ring has room.
  takeOut(*w);
  sweepPass(*w, *s, 1001);
  EXPECT_EQ(takeOut(*w).size(), 2u);  // the ring holds 2 per pass
  sweepPass(*w, *s, 1001 + kAnnounceMs + 1);
  EXPECT_EQ(takeOut(*w).size(), 1u);
  sweepPass(*w, *s, 1001 + 2 * (kAnnounceMs + 1));
  EXPECT_TRUE(takeOut(*w).empty());
}

TEST(SyncRings, SweepReannouncesActiveLocalFlowsOnly) {
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  auto w = syncWorker();
  // Four flows announced at 100: "active" keeps sending, "quiet" sends nothing more, "closing"
  // sends a FIN, and one more from a peer that no local packet hits.
  const int active = sendOne(*w, *s, pkt(20, 40020, kTcpAck), 100);
  sendOne(*w, *s, pkt(21, 40021, kTcpAck), 100);
  sendOne(*w, *s, pkt(22, 40022, kTcpAck), 100);
  putIn(*w, record(23, 40023, 1));
  drainSyncIn(*w, *s, 100);
  ASSERT_EQ(takeOut(*w).size(), 3u);
  ASSERT_EQ(ctr(*w, Ctr::SyncInInserted), 1u);
  // A pass before any refresh: all announced already, nothing again.
  sweepPass(*w, *s, 200);
  EXPECT_TRUE(takeOut(*w).empty());
  // Local traffic at 1500 (past the refresh interval, so the entries are rewritten).
  run(*w, *s, {pkt(20, 40020, kTcpAck), pkt(22, 40022, kTcpFin | kTcpAck)}, 1500);
  EXPECT_EQ(entry(*w, 22, 40022)->state, FlowState::TcpClosing);
  EXPECT_FALSE(entry(*w, 20, 40020)->announced);
  sweepPass(*w, *s, 2300);
  auto out = takeOut(*w);
  ASSERT_EQ(out.size(), 1u);  // the active flow only: not the quiet, closing or peer one
  EXPECT_EQ(out[0].sport_be, rte_cpu_to_be_16(40020));
  EXPECT_EQ(std::memcmp(out[0].backend, syncBackend(active).bytes.data(), 4), 0);
  EXPECT_EQ(out[0].state, uint8_t(FlowState::TcpEstablished));
  EXPECT_GE(out[0].idle_ms, 800u);  // last seen at 1500, announced during the pass from 2300
  EXPECT_LE(out[0].idle_ms, 800u + kAnnounceMs);
  // Without more traffic, the next pass announces nothing.
  sweepPass(*w, *s, 4400);
  EXPECT_TRUE(takeOut(*w).empty());
  // Local traffic on the peer's entry makes it this balancer's flow: re-announced from then on
  // (the control that the sweep does reach it).
  sendOne(*w, *s, pkt(23, 40023, kTcpAck), 6500);
  EXPECT_EQ(ctr(*w, Ctr::FlowPeerHit), 1u);
  EXPECT_TRUE(takeOut(*w).empty());  // not by the hit: it was announced by its peer already
  sweepPass(*w, *s, 6600);
  out = takeOut(*w);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].sport_be, rte_cpu_to_be_16(40023));
  EXPECT_EQ(std::memcmp(out[0].backend, syncBackend(1).bytes.data(), 4), 0);
}

TEST(SyncRings, NoAnnouncementsWithoutSync) {
  // The sweep with a snapshot whose sync_announce_ms is 0 announces nothing, even with rings.
  SnapshotBuilder sb;
  auto s = syncSnap(sb, syncConfig(3));
  ASSERT_TRUE(s);
  Snapshot off = *s;
  off.sync_announce_ms = 0;
  auto w = syncWorker();
  sendOne(*w, off, pkt(30, 40030, kTcpAck), 100);
  run(*w, off, {pkt(30, 40030, kTcpAck)}, 1500);
  sweepPass(*w, off, 2000);
  EXPECT_TRUE(takeOut(*w).empty());
  EXPECT_EQ(ctr(*w, Ctr::SyncAnnounced), 0u);
  // Control: the same with sync on announces it.
  sweepPass(*w, *s, 4100);
  EXPECT_EQ(takeOut(*w).size(), 1u);
}

}  // namespace
}  // namespace l4lb::dataplane
