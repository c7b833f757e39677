// What l4lb takes from the EAL's memory at start, computed from the config before the EAL runs:
// the flow tables (per worker and address family), the shared packet-buffer pool, the two
// outer-fragment pools and the hand-off rings. The sizes here are the ones the start-up code
// allocates (ports.cc sizes its pools with poolSizes(); FlowTable::bytesFor is create()'s own
// arithmetic), so the estimate cannot drift from them. Left out: the EAL's own bookkeeping, the
// drivers' descriptor rings, flow-sync rings and a few small objects (a few MiB in all).
#pragma once

#include <cstdint>
#include <string>

#include "control/config.h"

namespace l4lb::control {

// Descriptors per RX and TX queue, and the mbuf pools' per-lcore cache.
inline constexpr uint16_t kRxDesc = 1024;
inline constexpr uint16_t kTxDesc = 1024;
inline constexpr unsigned kPoolCache = 256;

struct PoolSizes {
  unsigned mbufs = 0;       // the shared packet pool (2^k - 1: the mempool's ring holds 2^k)
  uint16_t data_room = 0;   // bytes per packet mbuf after the headroom's start
  unsigned frag_mbufs = 0;  // each of the two outer-fragment pools (direct and indirect)
};
PoolSizes poolSizes(const Config& cfg, unsigned workers);

struct MemoryEstimate {
  unsigned workers = 0;
  uint64_t flows4 = 0;  // one worker's IPv4 flow table
  uint64_t flows6 = 0;  // one worker's IPv6 flow table
  uint64_t mbuf_pool = 0;
  uint64_t frag_pools = 0;  // both
  uint64_t rings = 0;       // hand-off rings between workers (fragments, full-NAT replies)
  // Full NAT, per worker: the client-side session index (both families; EAL memory) and the
  // sessions with their free-pair queues (process memory, outside the EAL's: not in total()).
  uint64_t fullnat_index = 0;
  uint64_t fullnat_sessions = 0;
  uint64_t flowTables() const { return (flows4 + flows6) * workers; }
  uint64_t total() const { return flowTables() + mbuf_pool + frag_pools + rings + fullnat_index * workers; }
};
// `page`: the page size the EAL's memory comes in (pageBytes).
MemoryEstimate estimateMemory(const Config& cfg, uint64_t page);

// The x86-64 default hugepage (2 MiB; a 1 GiB page wastes no more per pool) or, with
// eal.hugepages = false, the 4 KiB page --no-huge memory is made of.
inline constexpr uint64_t kHugePage = uint64_t{2} << 20;
inline constexpr uint64_t kSmallPage = 4096;
uint64_t pageBytes(const EalConfig& eal);

// The memory the EAL will have: eal.memory_mb, or the 64 MiB DPDK takes without hugepages when
// memory_mb is 0; 0 when unbounded (hugepages without memory_mb: the EAL takes hugepages as it
// needs them).
uint64_t ealMemoryBytes(const EalConfig& eal);

// "about 170 MiB: flow tables 128 MiB (1 worker x (IPv4 32 MiB + IPv6 96 MiB)), packet buffers
// 40 MiB, outer fragments 2 MiB, rings 0 MiB" (MiB rounded up), and with full NAT ", full-NAT
// index 12 MiB (1 worker x 12 MiB); full-NAT sessions 40 MiB of process memory besides".
std::string describe(const MemoryEstimate& m);

// The loader's check: the message when the estimate does not fit ealMemoryBytes, else empty.
std::string memoryRefusal(const Config& cfg);

}  // namespace l4lb::control
