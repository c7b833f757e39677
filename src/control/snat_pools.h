// Full NAT's source addresses as the workers see them: one ordered list over every fullnat VIP
// of the config (an address listed by several VIPs appears once), each with its port range and
// quiet time. The snapshot builder fills Snapshot::snat_addrs and the VIPs' snat4/snat6 from it;
// the workers size their session tables by it at start, so a reload must leave it unchanged.
#pragma once

#include <string>
#include <vector>

#include "control/config.h"
#include "control/sync/sync_owner.h"
#include "dataplane/fullnat/snat_rss.h"
#include "l4lb/snapshot.h"

namespace l4lb::control {

struct SnatPools {
  std::vector<SnapSnatAddr> addrs;
  // Per config VIP: its addresses' indexes, by backend family.
  std::vector<std::vector<uint32_t>> v4, v6;
  // Conflicts: one address with two port ranges or quiet times, a source address that is also a
  // VIP or a backend of any VIP.
  std::vector<std::string> errors;
};

SnatPools snatPools(const Config& cfg);

// How worker `worker` of `workers` steers full NAT's replies (dataplane/fullnat/snat_rss.h), from
// what the ports (configured order: Snapshot::ports indexes) report of their RSS. A port is
// steered when it has several RX queues, RSS read whole (Toeplitz key, hash types, a power-of-two
// RETA of at most kMaxSnatBuckets entries) and the key of the first such port (the buckets are
// one per key); `mine` lists the RETA entries, repeated up to the largest steered RETA, whose
// queue q this worker polls (q mod workers = worker, daemon.cc). One worker: no steering.
dataplane::SnatRss snatRss(const std::vector<sync::PortRss>& ports, unsigned worker, unsigned workers);

}  // namespace l4lb::control
