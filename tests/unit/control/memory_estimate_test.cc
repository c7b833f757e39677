// The memory estimate (control/memory_estimate.h) against what the EAL's heap hands out when
// the same tables, pools and rings are created as the daemon creates them at start
// (daemon.cc: the flow tables and hand-off rings; ports.cc setupPorts: the three mbuf pools).
// The EAL's own bookkeeping and the drivers' descriptor rings are outside both figures.
#include "control/memory_estimate.h"

#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <memory>
#include <vector>

#include "control/snat_pools.h"
#include "dataplane/flow_table.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/worker.h"

namespace l4lb::control {
namespace {

uint64_t heapInUse() {
  rte_malloc_socket_stats s{};
  EXPECT_EQ(rte_malloc_get_socket_stats(int(rte_socket_id()), &s), 0);
  return s.heap_allocsz_bytes;
}

Config twoWorkers(uint32_t capacity) {
  Config c;
  c.eal.worker_cores = {1, 2};
  c.flow_table.capacity = capacity;
  PortConfig p;
  p.name = "wan";
  p.device = "net_null0";
  c.ports.push_back(p);
  p.name = "lan";
  p.mtu = 9000;
  c.ports.push_back(p);
  return c;
}

TEST(MemoryEstimate, FlowTableBytesFollowTheBucketArithmetic) {
  // 1024 entries at 80 %: 1280 slots; IPv4 buckets hold 3 (512 buckets of 64 bytes), IPv6 4
  // (512 of 192).
  EXPECT_EQ(dataplane::FlowTable::bytesFor(1024, false), 512u * 64);
  EXPECT_EQ(dataplane::FlowTable::bytesFor(1024, true), 512u * 192);
  // 2^27 entries: 2^26 buckets each.
  EXPECT_EQ(dataplane::FlowTable::bytesFor(1u << 27, false), (uint64_t{1} << 26) * 64);
  EXPECT_EQ(dataplane::FlowTable::bytesFor(1u << 27, true), (uint64_t{1} << 26) * 192);
}

TEST(MemoryEstimate, PoolSizesFromPortsAndWorkers) {
  const Config c = twoWorkers(4096);
  const PoolSizes p = poolSizes(c, 2);
  // Two ports of 2 RX and 2 TX queues (4 x 1024 descriptors each), 3 lcore caches of 256 + 64,
  // 4096 spare, the fragment tables' max_held per worker, two hand-off rings: rounded up to 2^k - 1.
  const unsigned n = 2 * 4 * 1024 + 3 * 320 + 4096 + 2 * c.fragments.max_held + 2 * dataplane::kHandOffRingSize;
  unsigned want = 1;
  while (want < n + 1) want <<= 1;
  EXPECT_EQ(p.mbufs, want - 1);
  EXPECT_EQ(p.data_room, 9000 + 18 + RTE_PKTMBUF_HEADROOM);  // the larger MTU and an encapsulation
  EXPECT_EQ(p.frag_mbufs, 8191u);  // 2 ports x 2 workers x 1024 + 960 + 1024 = 6080
}

TEST(MemoryEstimate, DescribeNamesEachPart) {
  MemoryEstimate m;
  m.workers = 2;
  m.flows4 = 2 << 20;
  m.flows6 = 6 << 20;
  m.mbuf_pool = (uint64_t{40} << 20) + 1;  // rounded up
  m.frag_pools = 3 << 20;
  m.rings = 1;
  EXPECT_EQ(describe(m), "about 60 MiB: flow tables 16 MiB (2 workers x (IPv4 2 MiB + IPv6 6 MiB)), packet "
                         "buffers 41 MiB, outer fragments 3 MiB, rings 1 MiB");
}

TEST(MemoryEstimate, EalMemory) {
  EalConfig e;
  EXPECT_EQ(ealMemoryBytes(e), 0u);  // hugepages as needed
  e.hugepages = false;
  EXPECT_EQ(ealMemoryBytes(e), uint64_t{64} << 20);
  e.memory_mb = 300;
  EXPECT_EQ(ealMemoryBytes(e), uint64_t{300} << 20);
}

// Within 10 % of what the EAL's heap gives the same objects.
TEST(MemoryEstimate, MatchesWhatTheEalAllocates) {
  const Config c = twoWorkers(65536);
  const MemoryEstimate m = estimateMemory(c, kSmallPage);  // the test EAL runs --no-huge
  const uint64_t before = heapInUse();
  std::vector<std::unique_ptr<dataplane::FlowTable>> tables;
  std::string err;
  for (unsigned w = 0; w < 2; w++) {
    tables.push_back(dataplane::FlowTable::create("me_f4_" + std::to_string(w), c.flow_table.capacity, 16, SOCKET_ID_ANY, err));
    tables.push_back(dataplane::FlowTable::create("me_f6_" + std::to_string(w), c.flow_table.capacity, 40, SOCKET_ID_ANY, err));
  }
  for (auto& t : tables) ASSERT_NE(t, nullptr) << err;
  const PoolSizes p = poolSizes(c, 2);
  const int socket = int(rte_socket_id());
  rte_mempool* pools[] = {
      rte_pktmbuf_pool_create("me_mbufs", p.mbufs, kPoolCache, 0, p.data_room, socket),
      rte_pktmbuf_pool_create("me_fdirect", p.frag_mbufs, kPoolCache, 0, uint16_t(RTE_PKTMBUF_HEADROOM + 64), socket),
      rte_pktmbuf_pool_create("me_findirect", p.frag_mbufs, kPoolCache, 0, 0, socket)};
  for (rte_mempool* mp : pools) ASSERT_NE(mp, nullptr);
  rte_ring* rings[] = {rte_ring_create("me_r0", dataplane::kHandOffRingSize, socket, RING_F_SC_DEQ),
                       rte_ring_create("me_r1", dataplane::kHandOffRingSize, socket, RING_F_SC_DEQ)};
  for (rte_ring* r : rings) ASSERT_NE(r, nullptr);
  const uint64_t used = heapInUse() - before;
  const double ratio = double(m.total()) / double(used);
  RecordProperty("estimate_bytes", std::to_string(m.total()));
  RecordProperty("allocated_bytes", std::to_string(used));
  std::printf("estimate %llu bytes, EAL heap %llu bytes (%.3f)\n", (unsigned long long)m.total(),
              (unsigned long long)used, ratio);
  EXPECT_GT(ratio, 0.9);
  EXPECT_LT(ratio, 1.1);
  for (rte_ring* r : rings) rte_ring_free(r);
  for (rte_mempool* mp : pools) rte_mempool_free(mp);
}

// Full NAT: each worker's session index is EAL memory (in total()), its sessions are not; both
// as FullNatState::create makes them for a pool of two addresses.
TEST(MemoryEstimate, FullNatIndexMatchesWhatCreateAllocates) {
  Config c = twoWorkers(1024);
  VipConfig v;
  v.address = IpAddr::v4(htobe32(0xc6120001u));
  v.port = 80;
  v.forwarding = FwdMode::FullNat;
  v.snat_addresses = {IpAddr::v4(htobe32(0xc6130101u)), IpAddr::v4(htobe32(0xc6130102u))};
  v.snat_port_lo = 10000;
  v.snat_port_hi = 29999;
  c.vips.push_back(v);
  const Config plain = twoWorkers(1024);
  const MemoryEstimate m = estimateMemory(c, kSmallPage);
  EXPECT_EQ(m.total() - estimateMemory(plain, kSmallPage).total(), 2 * m.fullnat_index);
  // 2 addresses x 20000 ports over 2 workers: 20000 sessions each.
  EXPECT_EQ(m.fullnat_sessions, 2 * dataplane::FullNatState::sessionBytes(20000));
  EXPECT_NE(describe(m).find("full-NAT index"), std::string::npos) << describe(m);
  EXPECT_EQ(describe(estimateMemory(plain, kSmallPage)).find("full-NAT"), std::string::npos);

  const SnatPools pools = snatPools(c);
  ASSERT_TRUE(pools.errors.empty());
  const uint64_t before = heapInUse();
  std::string err;
  auto st = dataplane::FullNatState::create(pools.addrs, 0, 2, SOCKET_ID_ANY, err);
  ASSERT_NE(st, nullptr) << err;
  EXPECT_EQ(st->totalSlots(), 20000u);
  const double ratio = double(m.fullnat_index) / double(heapInUse() - before);
  EXPECT_GT(ratio, 0.9);
  EXPECT_LT(ratio, 1.1);
}

}  // namespace
}  // namespace l4lb::control
