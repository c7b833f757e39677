// DPDK ports on rte_rings (the net_ring PMD, rte_eth_from_rings) for the benchmarks that run the
// real worker loop on real ports: each RX and TX queue of a port is one SP/SC ring, and
// rte_eth_rx_burst / rte_eth_tx_burst go through the PMD's burst functions (ethdev's fast-path
// ops, the driver's queue counters) exactly as they do for a NIC, minus the descriptor rings.
// A ring may be one port's TX queue and another's RX queue: a wire between them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

namespace l4lb::perf {

// An SP/SC ring of exactly `size` slots (RING_F_EXACT_SZ); exits on failure.
rte_ring* makeRing(const std::string& name, uint32_t size);

struct RingPort {
  uint16_t port_id = 0;
  std::vector<rte_ring*> rx, tx;  // queue q's rings (not owned: the caller frees them)
};

// Creates and starts a port with rx.size() RX and tx.size() TX queues on these rings; RX
// queues take mbufs from `pool` (net_ring never allocates; ethdev requires one). Exits on failure.
RingPort makeRingPort(const std::string& name, std::vector<rte_ring*> rx, std::vector<rte_ring*> tx,
                      rte_mempool* pool);
void closeRingPort(const RingPort& p);

}  // namespace l4lb::perf
