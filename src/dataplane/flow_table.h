// Per-worker flow table: 5-tuple -> backend, so established flows keep their backend when tables
// change. Built on DPDK's rte_hash (cuckoo hash, bulk lookups with internal prefetch), one table
// per address family so IPv4 keys stay 16 bytes. Owned by one worker: single writer, no locks.
//
// The value is packed into rte_hash's 64-bit data word, which lives next to the key in the key
// store, so a hit costs no extra cache miss:
//   bits  0..23  backend id (Snapshot::backends index; 0 = none)
//   bits 24..25  FlowState
//   bits 32..63  last-seen time, milliseconds (wraps after 49 days; compared by subtraction)
// The timestamp is refreshed at most once per kRefreshMs per flow, so a hit on an established
// flow is a pure lookup; timeouts are therefore exact to kRefreshMs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <rte_hash.h>

#include "dataplane/parser.h"
#include "l4lb/counters.h"
#include "l4lb/hash.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// Keys: addresses and ports in network byte order, padding zeroed (compared bytewise).
struct alignas(8) FlowKey4 {
  uint32_t saddr = 0, daddr = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};
};
static_assert(sizeof(FlowKey4) == 16);

struct alignas(8) FlowKey6 {
  uint8_t saddr[16] = {}, daddr[16] = {};
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};
};
static_assert(sizeof(FlowKey6) == 40);

enum class FlowState : uint8_t { TcpSyn = 0, TcpEstablished = 1, TcpClosing = 2, Udp = 3 };

struct FlowValue {
  uint32_t backend_id = kNoBackend;
  FlowState state = FlowState::Udp;
  uint32_t last_seen_ms = 0;

  uint64_t pack() const {
    return uint64_t(backend_id & kMaxBackendId) | (uint64_t(state) << 24) | (uint64_t(last_seen_ms) << 32);
  }
  static FlowValue unpack(uint64_t v) {
    return FlowValue{uint32_t(v & kMaxBackendId), FlowState((v >> 24) & 3), uint32_t(v >> 32)};
  }
};

inline uint32_t timeoutMs(FlowState s, const FlowTimeouts& t) {
  switch (s) {
    case FlowState::TcpSyn: return t.tcp_syn_ms;
    case FlowState::TcpEstablished: return t.tcp_established_ms;
    case FlowState::TcpClosing: return t.tcp_fin_ms;
    case FlowState::Udp: return t.udp_ms;
  }
  return 0;
}

inline bool isExpired(const FlowValue& v, uint32_t now_ms, const FlowTimeouts& t) {
  return uint32_t(now_ms - v.last_seen_ms) > timeoutMs(v.state, t);
}

// The state after seeing a packet with `tcp_flags` (TCP) in a flow in state `s`.
inline FlowState nextState(FlowState s, bool tcp, uint8_t tcp_flags) {
  if (!tcp) return FlowState::Udp;
  if (tcp_flags & (kTcpFin | kTcpRst)) return FlowState::TcpClosing;
  if (s == FlowState::TcpClosing) return s;
  if (tcp_flags & kTcpSyn) return s == FlowState::TcpEstablished ? s : FlowState::TcpSyn;  // SYN
  return FlowState::TcpEstablished;  // an ACK without SYN: handshake done (or flow picked up mid-way)
}

class FlowTable {
 public:
  static constexpr uint32_t kRefreshMs = 1000;
  static constexpr unsigned kMaxBulk = 64;  // RTE_HASH_LOOKUP_BULK_MAX
  // rte_hash is created with rte_hash_crc and this seed; crcHash() gives the same values.
  static constexpr uint32_t kHashSeed = 0xf10c4a5e;

  // Returns nullptr and sets `err` when rte_hash cannot be created (no memory).
  static std::unique_ptr<FlowTable> create(const std::string& name, uint32_t capacity, uint32_t key_len,
                                           int socket, std::string& err);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  static hash_sig_t hashKey(const void* key, uint32_t key_len) { return crcHash(key, key_len, kHashSeed); }

  // Looks up n <= kMaxBulk keys with precomputed signatures; bit i of the result is set on a hit
  // and values[i] filled.
  uint64_t lookupBulk(const void** keys, hash_sig_t* sigs, unsigned n, uint64_t* values) const {
    uint64_t hit_mask = 0;
    if (n == 0) return 0;
    rte_hash_lookup_with_hash_bulk_data(h_, keys, sigs, n, &hit_mask, reinterpret_cast<void**>(values));
    return hit_mask;
  }

  bool lookup(const void* key, hash_sig_t sig, uint64_t& value) const {
    void* d;
    if (rte_hash_lookup_with_hash_data(h_, key, sig, &d) < 0) return false;
    value = reinterpret_cast<uintptr_t>(d);
    return true;
  }

  // Inserts or overwrites. False when the table is full (the caller falls back to stateless).
  bool upsert(const void* key, hash_sig_t sig, const FlowValue& v) {
    return rte_hash_add_key_with_hash_data(h_, key, sig, reinterpret_cast<void*>(v.pack())) == 0;
  }

  bool erase(const void* key, hash_sig_t sig) { return rte_hash_del_key_with_hash(h_, key, sig) >= 0; }

  // Visits exactly `budget` table positions (occupied or free) from where the previous call
  // stopped, wrapping at capacity(), and removes the expired entries among them. Returns how
  // many were removed. Bounded work per call, whatever the table's fill. With `ended`, the
  // removed entries' backends get flows_ended counted (indexed by backend id).
  uint32_t sweep(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended = nullptr);
  uint32_t sweepCursor() const { return sweep_next_; }

  uint32_t size() const { return uint32_t(rte_hash_count(h_)); }
  uint32_t capacity() const { return capacity_; }

 private:
  FlowTable(rte_hash* h, uint32_t capacity, uint32_t key_len) : h_(h), capacity_(capacity), key_len_(key_len) {}
  rte_hash* h_;
  uint32_t capacity_;
  uint32_t key_len_;
  uint32_t sweep_next_ = 0;
};

}  // namespace l4lb::dataplane
