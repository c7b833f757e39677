// Which worker owns a flow: the one whose RX queue the NIC's RSS puts the flow's packets on
// (worker w polls queue q of every port when q mod workers = w, daemon.cc). A record from a
// peer goes to that worker's sync_in ring, so each flow table keeps its single writer and the
// entry sits where the flow's packets will look for it (docs/SCALE-OUT.md, "Flow sync",
// "Receiving worker").
//
//  - one worker: it;
//  - a port with one RX queue: worker 0 (queue 0);
//  - a port with several queues and RSS whose key, hash types and RETA we could read: the
//    Toeplitz hash of the client -> VIP packet (rte_softrss over the fields the port's hash
//    types cover: addresses and ports, or addresses only), RETA[hash mod size] -> queue -> worker;
//  - a port with several queues and no readable RSS: every worker (safe: an entry on a worker
//    that never sees the flow only costs memory until it ages out).
// With several ports, the union over the ports (the flow may arrive on any of them).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "l4lb/sync_record.h"

namespace l4lb::control::sync {

struct PortRss {
  uint16_t rx_queues = 1;
  bool rss = false;             // key, hash types and RETA below are the port's own
  std::vector<uint8_t> key;     // as the NIC takes it (40 or 52 bytes)
  uint64_t hash_types = 0;      // RTE_ETH_RSS_* the port hashes
  std::vector<uint16_t> reta;   // RETA entry -> RX queue
};

// What DPDK tells of a started port's RSS (ethdev: hash configuration and RETA queries);
// rss = false when the port has one queue or the driver answers neither.
PortRss queryPortRss(uint16_t port_id, uint16_t rx_queues);

class FlowOwner {
 public:
  FlowOwner(unsigned workers, std::vector<PortRss> ports);

  // The workers that get `f` as a bit mask (bit w: worker w); workers <= 64.
  uint64_t owners(const SyncFlow& f) const;
  unsigned workers() const { return workers_; }

  // The RSS hash the NIC computes for the client -> VIP packet of `f` under `p`'s key and hash
  // types, or nullopt when the hash types leave that packet unhashed (it goes to queue 0).
  static std::optional<uint32_t> rssHash(const PortRss& p, const SyncFlow& f);

 private:
  unsigned workers_;
  uint64_t all_;
  std::vector<PortRss> ports_;
};

}  // namespace l4lb::control::sync
