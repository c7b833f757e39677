// One worker's full-NAT state: its share of every source address's ports, and a session per
// (address, port) in use. A session is the whole translation of one flow: the client's side
// (client and VIP addresses and ports), the backend's side (backend and source pair), the TCP
// sequence offset and the PROXY v2 header's place.
//
// Ownership: the ports of a source address are split among the workers (port - port_lo taken
// modulo the number of workers), so any worker knows from a reply's destination port which
// worker's session it belongs to; a reply received by another worker is handed to the owner
// (fullnat_handoff.h). Allocation is a FIFO per bucket: a pair that is freed goes to the back of
// its bucket with its release time, and a front is taken only once its quiet time has passed
// (2 x MSL by default, as TIME-WAIT), so a pair is never reused while the backend may still
// hold the old connection. Without RSS steering an address has one bucket. With it (snat_rss.h)
// a port's bucket is its hash term's low bits, so a new flow can take a port whose reply comes
// back on this worker's RX queue: at most one look per RETA entry of this worker, then one per
// bucket for any free pair; release is O(1).
//
// Lookups: a client's packet finds its session through `index4`/`index6` (a FlowTable keyed by
// the client's 5-tuple whose value names the pair, in the client's family); a backend's packet
// finds it directly by its destination (address index, port), in the backend's family. The two
// families may differ (an IPv6 VIP in front of IPv4 backends, or the reverse): the pair is then of
// the backend's family, and each packet crosses families (family_xlate.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/flow.h"
#include "dataplane/flow_table.h"
#include "dataplane/fullnat/snat_rss.h"
#include "dataplane/fullnat/tcp_seq.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

struct FullNatSession {
  uint8_t client[16];  // the client's address, and the VIP's, as the client sent them
  uint8_t vip[16];
  uint8_t backend[16];
  uint8_t snat[16];  // the source pair's address, and its port below
  uint16_t client_port_be, vip_port_be, backend_port_be, snat_port_be;
  uint8_t proto;
  // The two sides' families: the client's (client, VIP; the index it is in) and the backend's
  // (backend, source pair). `xlate` when they differ: every packet has its IP header replaced
  // (family_xlate.h), the one flag the per-packet path tests for it.
  bool client_v6, backend_v6, xlate;
  bool used;
  // PROXY v2: the header's length; it occupies the backend's sequence numbers client_isn + 1 ..
  // client_isn + proxy_len, just before the client's first byte.
  uint8_t proxy_len;
  FlowState state;
  uint32_t last_seen_ms;
  uint32_t backend_id;
  uint32_t vip_index;
  uint32_t client_isn;
  fullnat::SeqDelta delta;
  // The checksum differences of the two rewrites (RFC 1624, folded; fixed per session): the L4
  // checksum's (addresses of the pseudo-header and ports) and IPv4's (addresses and the TTL's
  // decrement), toward the backend and back toward the client.
  uint16_t l4_to_backend, ip_to_backend, l4_to_client, ip_to_client;
  // Where replies go: the port the client's first packet came in on, and the MAC it came from
  // (the client, or the router in front of it).
  uint16_t client_port;
  uint8_t client_mac[6];
};

// A pair: a source address (Snapshot::snat_addrs index) and a port.
struct SnatPair {
  uint32_t addr = 0;
  uint16_t port = 0;  // host order
};

// A new flow's reply as RSS sees it: from the backend (address in network order, port) on
// Snapshot::ports[port]; `spread` (the flow's hash) picks where the walk over the RETA starts.
struct ReplyFrom {
  const uint8_t* backend;
  uint16_t backend_port_be;
  uint16_t port;
  uint8_t proto;
  uint32_t spread;
};

class FullNatState {
 public:
  // `addrs`: Snapshot::snat_addrs at start. Sessions and queues are sized for this worker's
  // share of every address; `rss` steers replies (snat_rss.h; default: not steered). Returns
  // nullptr with `err` when the index tables cannot be made.
  static std::unique_ptr<FullNatState> create(const std::vector<SnapSnatAddr>& addrs, uint16_t worker,
                                              uint16_t nworkers, int socket, std::string& err,
                                              const SnatRss& rss = {});

  // Sessions per worker (each worker owns (hi - lo) / nworkers + 1 slots of every address), and
  // the capacity create() gives each client index: the estimate of memory_estimate.cc uses both.
  static uint64_t slotsPerWorker(const std::vector<SnapSnatAddr>& addrs, uint16_t nworkers);
  static uint32_t indexCapacity(uint64_t slots);
  // The process memory (not the EAL's) that `slots` sessions and their free-pair queue take.
  static uint64_t sessionBytes(uint64_t slots);

  uint32_t naddrs() const { return uint32_t(addrs_.size()); }
  // Which worker owns (address, port): every worker computes the same.
  uint16_t ownerOf(uint32_t addr, uint16_t port) const {
    const Addr& a = addrs_[addr];
    return uint16_t((port - a.lo) % nworkers_);
  }
  bool inRange(uint32_t addr, uint16_t port) const {
    return addr < addrs_.size() && port >= addrs_[addr].lo && port <= addrs_[addr].hi;
  }
  // The session of an owned pair (inRange and ownerOf == this worker).
  FullNatSession& session(uint32_t addr, uint16_t port) { return addrs_[addr].sessions[(port - addrs_[addr].lo) / nworkers_]; }
  // The session a packed pair (the index's value) names.
  FullNatSession& sessionOf(uint32_t packed) {
    const uint32_t i = packed - 1;
    return addrs_[i >> 16].sessions[i & 0xffff];
  }
  // Takes a pair of `addr` whose quiet time has passed; false when none is left. allocFor
  // prefers one whose reply `r` lands on this worker's RX queue (`steered`: it does, or this is
  // the only worker); alloc takes any.
  bool allocFor(uint32_t addr, uint32_t now_ms, const ReplyFrom& r, SnatPair& out, bool& steered) {
    if (mask_ != 0) return allocSteered(addr, now_ms, r, out, steered);
    steered = nworkers_ == 1;  // one worker receives every reply
    return take(addrs_[addr], addr, 0, now_ms, out);  // one bucket: the address's FIFO
  }
  bool alloc(uint32_t addr, uint32_t now_ms, SnatPair& out);
  // The buckets an address's free pairs are sorted into (1: not steered).
  uint32_t buckets() const { return mask_ + 1; }
  // Returns a pair, to be reused after its address's quiet time.
  void release(SnatPair p, uint32_t now_ms);

  FlowTable& index(bool v6) { return v6 ? *index6_ : *index4_; }
  // A pair as the index stores it (FlowValue::backend_id, 24 bits, never 0): the address in the
  // high 8 bits (at most kMaxSnatAddrs, limits.h), the port's slot in the low 16, plus one.
  uint32_t packPair(SnatPair p) const { return (p.addr << 16 | uint32_t(p.port - addrs_[p.addr].lo) / nworkers_) + 1; }
  SnatPair unpackPair(uint32_t v) const {
    const uint32_t i = v - 1;
    return {i >> 16, uint16_t(addrs_[i >> 16].lo + (i & 0xffff) * nworkers_ + worker_)};
  }

  // Per address: pairs in use, and waiting (free or in their quiet time).
  struct Usage {
    uint32_t in_use = 0, waiting = 0, quiet = 0;
  };
  Usage usage(uint32_t addr, uint32_t now_ms) const;

  // The expiry sweep's cursor over every session (fullnat_path.cc).
  uint64_t sweep_next = 0;
  uint32_t sweep_last_ms = 0;
  uint64_t totalSlots() const { return total_slots_; }
  // The session at a position 0 .. totalSlots() - 1, with its pair.
  FullNatSession& slot(uint64_t i, SnatPair& p);

 private:
  struct Queued {
    uint16_t port;
    uint32_t since_ms;  // release time (start: long enough ago)
  };
  // One bucket's FIFO: ring[start .. start + size) of its address, `count` pairs from `head`.
  struct Fifo {
    uint32_t start = 0, size = 0, head = 0, count = 0;
  };
  struct Addr {
    uint16_t lo = 0, hi = 0;
    uint32_t quiet_ms = 0;
    bool v6 = false;
    uint8_t bytes[16] = {};                 // the address, network order
    std::vector<FullNatSession> sessions;  // one per owned port
    std::vector<Queued> ring;               // free pairs, bucket by bucket; capacity = owned ports
    std::vector<Fifo> fifo;                 // one per bucket
    std::vector<uint16_t> bucket_of;        // per owned port (sessions' order); empty with one bucket
    uint32_t free = 0;                      // pairs in the FIFOs
    uint32_t next = 0;                      // the bucket an unsteered allocation looks at first
    // The last releases' times, oldest first (capacity = owned ports): a pair is released at
    // most once per quiet time (it is not taken while quiet), so every pair in its quiet time is
    // here, and usage() counts them with one binary search whatever the buckets.
    std::vector<uint32_t> released;
    uint32_t rel_head = 0, rel_count = 0;
  };
  bool take(Addr& a, uint32_t addr, uint32_t bucket, uint32_t now_ms, SnatPair& out) {
    Fifo& f = a.fifo[bucket];
    if (f.count == 0) return false;
    const Queued& q = a.ring[f.start + f.head];
    // Never released (since 0 at start) or quiet long enough. A bucket is in release order, so
    // if its front is still quiet, every pair behind it is too.
    if (q.since_ms != 0 && uint32_t(now_ms - q.since_ms) < a.quiet_ms) return false;
    out = {addr, q.port};
    f.head = f.head + 1 == f.size ? 0 : f.head + 1;
    f.count--;
    a.free--;
    return true;
  }
  bool allocSteered(uint32_t addr, uint32_t now_ms, const ReplyFrom& r, SnatPair& out, bool& steered);
  bool takeAny(Addr& a, uint32_t addr, uint32_t now_ms, SnatPair& out);
  std::vector<Addr> addrs_;
  std::vector<uint32_t> pair_base_;  // each address's first position in the sweep's order
  uint64_t total_slots_ = 0;
  uint16_t worker_ = 0, nworkers_ = 1;
  uint32_t mask_ = 0;  // buckets - 1
  SnatRss rss_;
  std::unique_ptr<FlowTable> index4_, index6_;
};

}  // namespace l4lb::dataplane
