// The worker's per-backend and per-port counters (read by the control plane's metrics) and the
// paced flow-table sweep that ends flows.
#include "worker_fixture.h"

namespace l4lb::dataplane {
namespace {

using namespace wtest;  // NOLINT(google-build-using-namespace): the shared fixture

// Backend id of each configured backend (config order), found by its next-hop MAC.
std::vector<uint32_t> backendIds(const Snapshot& s, int n) {
  std::vector<uint32_t> ids(size_t(n), kNoBackend);
  for (uint32_t id : s.vips[0].backends)
    for (int i = 0; i < n; i++)
      if (s.backends[id].next_hop_mac == backendMac(i)) ids[size_t(i)] = id;
  return ids;
}

uint64_t countOf(const std::vector<int>& v, int i) { return uint64_t(std::count(v.begin(), v.end(), i)); }

TEST(BackendCounters, PacketsBytesNewAndSweptEnded) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1, 1}));
  ASSERT_TRUE(s);
  const auto ids = backendIds(*s, 3);
  auto w = makeWorker();
  const uint32_t n = 300;
  const uint64_t size = flows(1)[0].size();
  ASSERT_EQ(size, 14u + 20 + 20 + 16);
  auto first = backendsFor(*w, *s, flows(n));
  for (int i = 0; i < 3; i++) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    const uint64_t k = countOf(first, i);
    EXPECT_GT(k, 0u);
    EXPECT_EQ(b.packets, k) << i;
    EXPECT_EQ(b.bytes, k * size) << i;  // DSR: sent as received
    EXPECT_EQ(b.flows_new, k) << i;
    EXPECT_EQ(b.flows_ended, 0u) << i;
  }
  EXPECT_EQ(w->backend_ctrs[kNoBackend].packets, 0u);
  EXPECT_EQ(w->port_ctrs[kWan].rx_packets, n);
  EXPECT_EQ(w->port_ctrs[kWan].rx_bytes, n * size);
  EXPECT_EQ(w->port_ctrs[kLan].rx_packets, 0u);
  // TX per port is counted by workerMain after rte_eth_tx_burst, not by processBurst.
  EXPECT_EQ(w->port_ctrs[kLan].tx_packets, 0u);

  // Second packet of each flow: hits, counted as traffic, no new flow.
  EXPECT_EQ(backendsFor(*w, *s, flows(n, kTcpAck), 100), first);
  for (int i = 0; i < 3; i++) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    EXPECT_EQ(b.packets, 2 * countOf(first, i)) << i;
    EXPECT_EQ(b.bytes, 2 * countOf(first, i) * size) << i;
    EXPECT_EQ(b.flows_new, countOf(first, i)) << i;
  }
  EXPECT_EQ(w->port_ctrs[kWan].rx_packets, 2 * n);

  // A sweep before the (established) timeout removes nothing; after it, every entry, each
  // counted as ended on its backend.
  EXPECT_EQ(w->flows4->sweep(200'000, s->timeouts, w->flows4->capacity(), w->backend_ctrs.get()), 0u);
  EXPECT_EQ(w->flows4->sweep(100 + 300'001, s->timeouts, w->flows4->capacity(), w->backend_ctrs.get()), n);
  EXPECT_EQ(w->flows4->size(), 0u);
  for (int i = 0; i < 3; i++) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    EXPECT_EQ(b.flows_ended, countOf(first, i)) << i;
    EXPECT_EQ(b.flows_new, countOf(first, i)) << i;
  }
}

TEST(BackendCounters, RehashEndsOnOldBackendAndStartsOnNew) {
  SnapshotBuilder sb;
  auto [s1, s2] = maglevThenBackend1Removed(sb);
  ASSERT_TRUE(s1 && s2);
  const auto ids = backendIds(*s1, 3);
  ASSERT_EQ(backendIds(*s2, 3)[0], ids[0]);  // ids are stable across rebuilds
  ASSERT_EQ(backendIds(*s2, 3)[2], ids[2]);
  auto w = makeWorker();
  const uint32_t n = 300;
  auto before = backendsFor(*w, *s1, flows(n));
  auto after = backendsFor(*w, *s2, flows(n, kTcpAck));
  const uint64_t on1 = countOf(before, 1);
  ASSERT_GT(on1, 0u);
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), on1);
  const BackendCounters& b1 = w->backend_ctrs[ids[1]];
  EXPECT_EQ(b1.flows_new, on1);
  EXPECT_EQ(b1.flows_ended, on1);  // every flow moved away: none active
  EXPECT_EQ(b1.packets, on1);
  uint64_t moved = 0;
  for (int i : {0, 2}) {
    const BackendCounters& b = w->backend_ctrs[ids[size_t(i)]];
    uint64_t moved_here = 0;
    for (uint32_t f = 0; f < n; f++) moved_here += before[f] == 1 && after[f] == i;
    moved += moved_here;
    EXPECT_EQ(b.flows_new, countOf(before, i) + moved_here) << i;
    EXPECT_EQ(b.flows_ended, 0u) << i;
    EXPECT_EQ(b.packets, countOf(before, i) + countOf(after, i)) << i;
  }
  EXPECT_EQ(moved, on1);
  // Active flows summed over backends: still n.
  uint64_t active = 0;
  for (uint32_t id : ids) active += w->backend_ctrs[id].flows_new - w->backend_ctrs[id].flows_ended;
  EXPECT_EQ(active, n);
}

TEST(BackendCounters, ExpiredEntryReplacedEndsTheOldOne) {
  SnapshotBuilder sb;
  Config c = schedConfig(Scheduler::RoundRobin, {1, 1});
  c.vips[0].port = 53;
  c.vips[0].protocol = Proto::Udp;
  c.flow_table.udp_timeout_ms = 1000;
  c.flow_table.udp_new_timeout_ms = 1000;  // the flow's one packet makes an embryonic (UdpNew) entry
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  const auto ids = backendIds(*s, 2);
  auto w = makeWorker();
  const Frame u = udpTo(kClient4, 4000);
  auto b0 = backendsFor(*w, *s, {u}, 0);
  auto b1 = backendsFor(*w, *s, {u}, 2500);  // idle past the timeout, not swept: replaced
  ASSERT_EQ(b0.size(), 1u);
  ASSERT_EQ(b1.size(), 1u);
  ASSERT_NE(b0[0], b1[0]);  // round robin moved it
  const BackendCounters& old_b = w->backend_ctrs[ids[size_t(b0[0])]];
  const BackendCounters& new_b = w->backend_ctrs[ids[size_t(b1[0])]];
  EXPECT_EQ(old_b.flows_new, 1u);
  EXPECT_EQ(old_b.flows_ended, 1u);
  EXPECT_EQ(new_b.flows_new, 1u);
  EXPECT_EQ(new_b.flows_ended, 0u);
  EXPECT_EQ(old_b.packets, 1u);
  EXPECT_EQ(new_b.packets, 1u);
  EXPECT_EQ(new_b.bytes, u.size());
  EXPECT_EQ(w->flows4->size(), 1u);
}

TEST(SweepFlows, PacedByTimeAndCountsEnded) {
  SnapshotBuilder sb;
  auto s = build(sb, schedConfig(Scheduler::Maglev, {1, 1}));
  ASSERT_TRUE(s);
  auto w = makeWorker(8192, 1024);  // both below kSweepPassMs: kSweepMinPerMs positions per ms
  ASSERT_EQ(kSweepMinPerMs, 16u);
  ASSERT_EQ(kSweepChunk, 64u);
  const uint32_t n = 100;
  ASSERT_EQ(backendsFor(*w, *s, flows(n), 0).size(), n);
  // 5 ms accrue 80 positions per table, visited in chunks of at most 64 per call.
  EXPECT_EQ(sweepFlows(*w, 5, s->timeouts), 0u);
  EXPECT_EQ(w->flows4->sweepCursor(), 64u);
  EXPECT_EQ(w->flows6->sweepCursor(), 64u);
  sweepFlows(*w, 5, s->timeouts);
  EXPECT_EQ(w->flows4->sweepCursor(), 80u);
  sweepFlows(*w, 5, s->timeouts);  // same millisecond, nothing owed
  EXPECT_EQ(w->flows4->sweepCursor(), 80u);
  EXPECT_EQ(w->flows6->sweepCursor(), 80u);
  sweepFlows(*w, 1000, s->timeouts);  // a gap accrues at most 10 ms
  EXPECT_EQ(w->flows4->sweepCursor(), 144u);
  EXPECT_EQ(w->flows4->size(), n);
  EXPECT_EQ(ctr(*w, Ctr::FlowExpired), 0u);
  // Past the SYN timeout, one whole pass (8192 / 16 = 512 ms) removes every entry.
  uint32_t removed = 0;
  for (uint32_t now = 20'000; now <= 20'000 + 520; now++)
    for (int k = 0; k < 4; k++) removed += sweepFlows(*w, now, s->timeouts);
  EXPECT_EQ(removed, n);
  EXPECT_EQ(ctr(*w, Ctr::FlowExpired), n);
  EXPECT_EQ(w->flows4->size(), 0u);
  const auto ids = backendIds(*s, 2);
  EXPECT_EQ(w->backend_ctrs[ids[0]].flows_ended + w->backend_ctrs[ids[1]].flows_ended, n);
  EXPECT_EQ(w->backend_ctrs[ids[0]].flows_ended, w->backend_ctrs[ids[0]].flows_new);
}

}  // namespace
}  // namespace l4lb::dataplane
