// Lookups shared by the worker's fast path and its slow path (slow_path.cc): VIP and NAT-reply
// services in the snapshot, flow keys and their hash, the schedulers' stateless choice. Inline:
// the fast path calls them per packet.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/flow_table.h"
#include "l4lb/hash.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// Exact (address, port, protocol) first, then the same address on port 0 ("all ports" for a
// VIP, "keeps the client's port" for a NAT backend).
template <typename V>
inline const V* findService(const FlatMap<ServiceKey, V>& map, const uint8_t* addr, Family f, uint16_t port_be,
                            uint8_t proto) {
  ServiceKey k;
  std::memcpy(k.addr.data(), addr, f == Family::V4 ? 4 : 16);
  k.port_be = port_be;
  k.proto = proto;
  k.family = uint8_t(f);
  const V* v = map.find(k);
  if (v == nullptr) {
    k.port_be = 0;
    v = map.find(k);
  }
  return v;
}

inline const SnapVip* findVip(const Snapshot& s, const uint8_t* daddr, Family f, uint16_t dport_be, uint8_t proto,
                              uint32_t& index) {
  const uint32_t* i = findService(s.vip_by_key, daddr, f, dport_be, proto);
  if (i == nullptr) return nullptr;
  index = *i;
  return &s.vips[*i];
}

inline const SnapVip* findNatReply(const Snapshot& s, const uint8_t* saddr, Family f, uint16_t sport_be,
                                   uint8_t proto, uint32_t& index) {
  if (s.nat_reverse.size() == 0) return nullptr;
  const NatReverse* r = findService(s.nat_reverse, saddr, f, sport_be, proto);
  if (r == nullptr) return nullptr;
  index = r->vip_index;
  return &s.vips[r->vip_index];
}

// Is `addr` one of the VIP addresses (any port, any protocol)?
inline bool isVipAddr(const Snapshot& s, const uint8_t* addr, Family f) {
  AddrKey k;
  std::memcpy(k.addr.data(), addr, f == Family::V4 ? 4 : 16);
  k.family = uint32_t(f);
  return s.vip_addrs.find(k) != nullptr;
}

// Fills a flow key (FlowKey4 or FlowKey6: the address size follows the key type) and returns
// its hash, used for the flow table, Maglev and the tunnels' entropy fields.
template <typename Key>
inline hash_sig_t makeFlowKey(Key& k, const uint8_t* saddr, const uint8_t* daddr, uint16_t sport_be,
                              uint16_t dport_be, uint8_t proto) {
  std::memcpy(&k.saddr, saddr, sizeof(k.saddr));
  std::memcpy(&k.daddr, daddr, sizeof(k.daddr));
  k.sport = sport_be;
  k.dport = dport_be;
  k.proto = proto;
  return FlowTable::hashKey(&k, sizeof(k));
}

// The backend Maglev or source hashing gives a new flow: a pure function of the snapshot and
// the flow, so every worker agrees. kNoBackend for the round-robin schedulers (their choice
// depends on the worker's cursor) and when the table has no usable backend.
inline uint32_t statelessBackend(const SnapVip& v, hash_sig_t sig, const uint8_t* saddr, Family f) {
  if (v.maglev.empty()) return kNoBackend;
  switch (v.scheduler) {
    case Scheduler::Maglev:
      return v.maglev[sig % v.maglev.size()];
    case Scheduler::SourceHash:
      return v.maglev[crcHash(saddr, f == Family::V4 ? 4 : 16, 0x5eed) % v.maglev.size()];
    case Scheduler::RoundRobin:
    case Scheduler::WeightedRoundRobin:
      break;
  }
  return kNoBackend;
}

inline bool usableForExisting(const SnapBackend* b, uint32_t vip_index) {
  return b != nullptr && b->vip_index == vip_index && b->state != BackendState::Unhealthy;
}

}  // namespace l4lb::dataplane
