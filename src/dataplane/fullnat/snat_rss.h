// Full NAT's replies and RSS: which source port makes a backend's reply land on the RX queue of
// the worker that holds the flow's session.
//
// The reply is backend:backend_port -> snat:snat_port, received on the backend's port, whose
// NIC puts it on queue RETA[hash mod RETA size] (worker w polls queue q when q mod workers = w,
// daemon.cc). The Toeplitz hash is linear over GF(2) in its input bits (each set bit XORs one
// 32-bit window of the key), so
//   hash(reply) = hash(reply with snat_port 0) XOR hash(only snat_port)
// and the second term depends on the port alone. A worker sorts its free ports of each address
// into buckets by the low bits of that term (FullNatState), and for a new flow computes the
// first term once and takes a port from a bucket b with (first ^ b) mod RETA size landing on one
// of its own RETA entries.
//
// What it promises: when the port's RSS is what DPDK reported (Toeplitz, the key and RETA read
// at start), every steered pair's replies reach the allocating worker. What it does not: a port
// whose RSS could not be read, a single-queue port, hash types that leave the ports out, or a
// bucket walk that finds nothing free give an unsteered pair; its replies may reach another
// worker, which hands them to the owner's ring (fullnat_handoff.h).
#pragma once

#include <cstdint>
#include <vector>

namespace l4lb::dataplane {

// The most buckets an address's free pairs are sorted into: the largest RETA steered (ice's 2048
// entries); a larger RETA is not steered. Each bucket costs 16 bytes per address and worker.
inline constexpr uint32_t kMaxSnatBuckets = 2048;

// One port (Snapshot::ports index) as one worker steers replies on it.
struct SnatRssPort {
  uint64_t hash_types = 0;      // RTE_ETH_RSS_* the port hashes
  std::vector<uint16_t> mine;   // bucket indexes (0 .. buckets - 1) whose RETA queue is this worker's; empty: not steered
};

// What a worker needs, built by the control thread at start (control/snat_pools.h, snatRss).
struct SnatRss {
  std::vector<uint8_t> key;     // the Toeplitz key of the steered ports (one key for all); empty: no steering
  uint32_t buckets = 1;         // a power of two: the RETA index bits used (the largest steered RETA)
  std::vector<SnatRssPort> ports;
};

// Whether a port's `hash_types` hash the ports of a reply of this family and protocol.
bool rssHashesPorts(uint64_t hash_types, bool v6, uint8_t proto);

// The term of the snat port: the Toeplitz hash of a reply tuple whose only non-zero field is the
// destination port `port` (host order).
uint32_t rssPortTerm(const uint8_t* key, bool v6, uint16_t port);

// The hash of the reply backend:backend_port -> snat:0 (addresses in network order, 4 or 16
// bytes; backend_port_be in network order).
uint32_t rssFixedTerm(const uint8_t* key, bool v6, const uint8_t* backend, uint16_t backend_port_be, const uint8_t* snat);

}  // namespace l4lb::dataplane
