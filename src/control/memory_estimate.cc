#include "control/memory_estimate.h"

#include <algorithm>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "control/snat_pools.h"
#include "dataplane/flow_table.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/worker.h"  // kHandOffRingSize

namespace l4lb::control {

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
// DPDK's MEMSIZE_IF_NO_HUGE_PAGE (eal_internal_cfg.h): what --no-huge without -m gives.
constexpr uint64_t kNoHugeDefault = 64 * kMiB;

unsigned pow2Minus1Above(unsigned n) {
  unsigned size = 1;
  while (size < n + 1) size <<= 1;
  return size - 1;
}

uint64_t ringBytes(unsigned count) {
  const ssize_t b = rte_ring_get_memsize(rte_align32pow2(count + 1));
  return b > 0 ? uint64_t(b) : 0;
}

// rte_pktmbuf_pool_create's memory: the objects (header, mbuf, data room, trailer), the
// mempool header with its per-lcore caches, and the ring of the default ops that holds them.
// An mbuf must not cross a page (it needs contiguous IOVA): as rte_mempool_op_calc_mem_size_helper
// counts, a page holds a whole number of objects, and an object larger than a page takes whole
// pages (a 9 KB jumbo mbuf takes 12 KB of 4 KB pages without hugepages).
uint64_t pktmbufPoolBytes(unsigned n, uint16_t data_room, uint64_t page) {
  rte_mempool_objsz sz{};
  rte_mempool_calc_obj_size(uint32_t(sizeof(rte_mbuf)) + data_room, 0, &sz);
  const uint64_t obj = sz.total_size;
  const uint64_t per_page = page / obj;
  const uint64_t objects = per_page == 0 ? (obj + page - 1) / page * page * n
                                         : n / per_page * page + n % per_page * obj;
  const uint64_t header = sizeof(rte_mempool) + uint64_t(RTE_MAX_LCORE) * sizeof(rte_mempool_cache) +
                          sizeof(rte_pktmbuf_pool_private);
  return objects + header + ringBytes(n);
}

uint64_t mib(uint64_t bytes) { return (bytes + kMiB - 1) / kMiB; }

}  // namespace

PoolSizes poolSizes(const Config& cfg, unsigned workers) {
  uint16_t max_mtu = 1500;
  unsigned queues_total = 0;
  for (const auto& p : cfg.ports) {
    max_mtu = std::max(max_mtu, p.mtu);
    const unsigned rxq = p.queues ? p.queues : workers;
    queues_total += rxq * kRxDesc + workers * kTxDesc;
    if (p.exception_path == ExceptionPath::Tap) queues_total += kRxDesc + workers * kTxDesc;
  }
  PoolSizes s;
  // Room for the largest frame plus an encapsulation header in front of it.
  s.data_room = uint16_t(std::max<unsigned>(RTE_MBUF_DEFAULT_BUF_SIZE, max_mtu + 18u + RTE_PKTMBUF_HEADROOM));
  // Plus what the fragment tables may hold ([fragments] max_held per worker) and the hand-off
  // rings between workers, so held or handed-off packets never take mbufs RX needs.
  s.mbufs = pow2Minus1Above(queues_total + (workers + 1) * (kPoolCache + 64) + 4096 +
                            workers * cfg.fragments.max_held +
                            (workers > 1 ? workers * dataplane::kHandOffRingSize : 0));
  // Outer fragments live until the driver has sent them: at most a TX ring's worth per worker
  // and port (each fragment is one direct mbuf, the headers, and one indirect, the reference),
  // plus the per-lcore caches and a burst's worth in flight.
  s.frag_mbufs = pow2Minus1Above(unsigned(cfg.ports.size()) * workers * kTxDesc + (workers + 1) * (kPoolCache + 64) + 1024);
  return s;
}

uint64_t pageBytes(const EalConfig& eal) { return eal.hugepages ? kHugePage : kSmallPage; }

MemoryEstimate estimateMemory(const Config& cfg, uint64_t page) {
  MemoryEstimate m;
  m.workers = unsigned(cfg.eal.worker_cores.size());
  m.flows4 = dataplane::FlowTable::bytesFor(cfg.flow_table.capacity, false);
  m.flows6 = dataplane::FlowTable::bytesFor(cfg.flow_table.capacity, true);
  const PoolSizes p = poolSizes(cfg, m.workers);
  m.mbuf_pool = pktmbufPoolBytes(p.mbufs, p.data_room, page);
  m.frag_pools = pktmbufPoolBytes(p.frag_mbufs, uint16_t(RTE_PKTMBUF_HEADROOM + 64), page) +
                 pktmbufPoolBytes(p.frag_mbufs, 0, page);
  m.rings = m.workers > 1 ? m.workers * ringBytes(dataplane::kHandOffRingSize - 1) : 0;
  if (const SnatPools pools = snatPools(cfg); !pools.addrs.empty()) {
    const uint64_t slots = dataplane::FullNatState::slotsPerWorker(pools.addrs, uint16_t(std::max(m.workers, 1u)));
    const uint32_t cap = dataplane::FullNatState::indexCapacity(slots);
    m.fullnat_index = dataplane::FlowTable::bytesFor(cap, false) + dataplane::FlowTable::bytesFor(cap, true);
    m.fullnat_sessions = dataplane::FullNatState::sessionBytes(slots) * std::max(m.workers, 1u);
  }
  return m;
}

uint64_t ealMemoryBytes(const EalConfig& eal) {
  if (eal.memory_mb != 0) return uint64_t(eal.memory_mb) * kMiB;
  return eal.hugepages ? 0 : kNoHugeDefault;
}

std::string describe(const MemoryEstimate& m) {
  return "about " + std::to_string(mib(m.total())) + " MiB: flow tables " + std::to_string(mib(m.flowTables())) +
         " MiB (" + std::to_string(m.workers) + (m.workers == 1 ? " worker" : " workers") + " x (IPv4 " +
         std::to_string(mib(m.flows4)) + " MiB + IPv6 " + std::to_string(mib(m.flows6)) + " MiB)), packet buffers " +
         std::to_string(mib(m.mbuf_pool)) + " MiB, outer fragments " + std::to_string(mib(m.frag_pools)) +
         " MiB, rings " + std::to_string(mib(m.rings)) + " MiB" +
         (m.fullnat_index == 0 ? ""
                               : ", full-NAT index " + std::to_string(mib(m.fullnat_index * m.workers)) + " MiB (" +
                                     std::to_string(m.workers) + (m.workers == 1 ? " worker" : " workers") + " x " +
                                     std::to_string(mib(m.fullnat_index)) + " MiB); full-NAT sessions " +
                                     std::to_string(mib(m.fullnat_sessions)) + " MiB of process memory besides");
}

std::string memoryRefusal(const Config& cfg) {
  const uint64_t have = ealMemoryBytes(cfg.eal);
  const MemoryEstimate m = estimateMemory(cfg, pageBytes(cfg.eal));
  if (have == 0 || m.total() <= have) return "";
  const std::string limit = cfg.eal.memory_mb != 0
                                ? "eal.memory_mb = " + std::to_string(cfg.eal.memory_mb)
                                : "the 64 MiB the EAL takes without hugepages (eal.hugepages = false, eal.memory_mb = 0)";
  return "the tables and pools need " + describe(m) + "; more than " + limit +
         " (lower flow_table.capacity or raise eal.memory_mb)";
}

}  // namespace l4lb::control
