// Lookups shared by the worker's fast path and its slow path (slow_path.cc): VIP and NAT-reply
// services in the snapshot, flow keys and their hash, the schedulers' stateless choice. Inline:
// the fast path calls them per packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/flow_table.h"
#include "l4lb/hash.h"
#include "l4lb/maglev.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// A service question as the three 8-byte words of a ServiceKey on port `port_be`.
struct ServiceWords {
  uint64_t a0, a1, w2;
};

inline ServiceWords serviceWords(const uint8_t* addr, Family f, uint16_t port_be, uint8_t proto) {
  static_assert(offsetof(ServiceKey, port_be) == 16 && offsetof(ServiceKey, proto) == 18 &&
                offsetof(ServiceKey, family) == 19 && offsetof(ServiceKey, pad) == 20);
  uint64_t a0, a1 = 0;
  if (f == Family::V4) {
    uint32_t a;
    std::memcpy(&a, addr, 4);
    a0 = a;
  } else {
    std::memcpy(&a0, addr, 8);
    std::memcpy(&a1, addr + 8, 8);
  }
  return {a0, a1, uint64_t(proto) << 16 | uint64_t(uint8_t(f)) << 24 | port_be};
}

// Exact (address, port, protocol) first, then the same address on port 0 ("all ports" for a
// VIP, "keeps the client's port" for a NAT backend).
// The key is written as three whole 8-byte words, the size FlatMap's hash reads it back in: a
// load spanning several narrower stores still in flight cannot be forwarded from them and
// waits for them to retire (the profile showed ~15 % of processBurst's cycles on that load).
template <typename V>
inline const V* findService(const FlatMap<ServiceKey, V>& map, const ServiceWords& q) {
  ServiceKey k;
  auto* kb = reinterpret_cast<uint8_t*>(&k);
  std::memcpy(kb, &q.a0, 8);
  std::memcpy(kb + 8, &q.a1, 8);
  std::memcpy(kb + 16, &q.w2, 8);
  const V* v = map.find(k);
  if (v == nullptr) {
    const uint64_t any_port = q.w2 & ~uint64_t(0xffff);
    std::memcpy(kb + 16, &any_port, 8);
    v = map.find(k);
  }
  return v;
}

template <typename V>
inline const V* findService(const FlatMap<ServiceKey, V>& map, const uint8_t* addr, Family f, uint16_t port_be,
                            uint8_t proto) {
  return findService(map, serviceWords(addr, f, port_be, proto));
}

// The last findVip question of a burst and its answer: a burst's packets mostly go to one VIP,
// and three word compares cost less than hashing the key and probing vip_by_key again. Lives
// for one burst (one snapshot), so it never answers from an older table. w2 starts at 0, which
// no question has (its protocol byte is TCP or UDP).
struct VipMemo {
  ServiceWords q{0, 0, 0};
  const SnapVip* vip = nullptr;
  uint32_t index = 0;
};

inline const SnapVip* findVip(const Snapshot& s, const uint8_t* daddr, Family f, uint16_t dport_be, uint8_t proto,
                              uint32_t& index, VipMemo& memo) {
  const ServiceWords q = serviceWords(daddr, f, dport_be, proto);
  if (((q.a0 ^ memo.q.a0) | (q.a1 ^ memo.q.a1) | (q.w2 ^ memo.q.w2)) == 0) {
    index = memo.index;
    return memo.vip;
  }
  const uint32_t* i = findService(s.vip_by_key, q);
  memo.q = q;
  memo.vip = i ? &s.vips[*i] : nullptr;
  memo.index = i ? *i : 0;
  index = memo.index;
  return memo.vip;
}

// One question, no memo (the slow path, l4lbctl explain). `index` is set only on a match.
inline const SnapVip* findVip(const Snapshot& s, const uint8_t* daddr, Family f, uint16_t dport_be, uint8_t proto,
                              uint32_t& index) {
  VipMemo memo;
  const SnapVip* v = findVip(s, daddr, f, dport_be, proto, memo.index, memo);
  if (v != nullptr) index = memo.index;
  return v;
}

inline const SnapVip* findNatReply(const Snapshot& s, const uint8_t* saddr, Family f, uint16_t sport_be,
                                   uint8_t proto, uint32_t& index) {
  if (s.nat_reverse.size() == 0) return nullptr;
  const NatReverse* r = findService(s.nat_reverse, saddr, f, sport_be, proto);
  if (r == nullptr) return nullptr;
  index = r->vip_index;
  return &s.vips[r->vip_index];
}

// Is `addr` one of full NAT's source addresses? Its Snapshot::snat_addrs index in `index`.
inline bool findSnatAddr(const Snapshot& s, const uint8_t* addr, Family f, uint32_t& index) {
  AddrKey k;
  std::memcpy(k.addr.data(), addr, f == Family::V4 ? 4 : 16);
  k.family = uint32_t(f);
  const uint32_t* i = s.snat_by_addr.find(k);
  if (i == nullptr) return false;
  index = *i;
  return true;
}

// Is `addr` one of the VIP addresses (any port, any protocol)?
inline bool isVipAddr(const Snapshot& s, const uint8_t* addr, Family f) {
  AddrKey k;
  std::memcpy(k.addr.data(), addr, f == Family::V4 ? 4 : 16);
  k.family = uint32_t(f);
  return s.vip_addrs.find(k) != nullptr;
}

// Fills a flow key (FlowKey4 or FlowKey6) and returns its CRC32-C (seed FlowTable::kHashSeed),
// the hash every instance computes alike: the Maglev slot and the tunnels' entropy fields. With
// `bucket_hash`, also the flow table's keyed bucket index (FlowTable::indexHash, flow_index.h), from the
// same registers. The key is built and hashed as 8-byte words in registers and stored whole (the
// flow table reads it back): no reload of narrow just-written fields (see findService).
inline hash_sig_t makeFlowKey(FlowKey4& k, const uint8_t* saddr, const uint8_t* daddr, uint16_t sport_be,
                              uint16_t dport_be, uint8_t proto, hash_sig_t* bucket_hash = nullptr) {
  static_assert(offsetof(FlowKey4, daddr) == 4 && offsetof(FlowKey4, sport) == 8 && offsetof(FlowKey4, proto) == 12);
  uint32_t s, d;
  std::memcpy(&s, saddr, 4);
  std::memcpy(&d, daddr, 4);
  const uint64_t w0 = s | uint64_t(d) << 32;
  const uint64_t w1 = sport_be | uint64_t(dport_be) << 16 | uint64_t(proto) << 32;
  auto* kb = reinterpret_cast<uint8_t*>(&k);
  std::memcpy(kb, &w0, 8);
  std::memcpy(kb + 8, &w1, 8);
  if (bucket_hash != nullptr) *bucket_hash = flowIndexHash4(w0, w1);
  return crcWord(w1, crcWord(w0, FlowTable::kHashSeed));
}

inline hash_sig_t makeFlowKey(FlowKey6& k, const uint8_t* saddr, const uint8_t* daddr, uint16_t sport_be,
                              uint16_t dport_be, uint8_t proto, hash_sig_t* bucket_hash = nullptr) {
  static_assert(offsetof(FlowKey6, daddr) == 16 && offsetof(FlowKey6, sport) == 32 && offsetof(FlowKey6, proto) == 36);
  uint64_t w[5];
  std::memcpy(&w[0], saddr, 8);
  std::memcpy(&w[1], saddr + 8, 8);
  std::memcpy(&w[2], daddr, 8);
  std::memcpy(&w[3], daddr + 8, 8);
  w[4] = sport_be | uint64_t(dport_be) << 16 | uint64_t(proto) << 32;
  uint32_t h = FlowTable::kHashSeed;
  for (uint64_t x : w) h = crcWord(x, h);
  std::memcpy(&k, w, sizeof(w));
  if (bucket_hash != nullptr) *bucket_hash = flowIndexHash6(w);
  return h;
}

// The backend Maglev or source hashing gives a new flow: a pure function of the snapshot and
// the flow, so every worker agrees. kNoBackend for the round-robin schedulers (their choice
// depends on the worker's cursor) and when the table has no usable backend.
// The Maglev-table slot behind it (Maglev and source hash only; the table must not be empty).
inline uint32_t statelessSlot(const SnapVip& v, hash_sig_t sig, const uint8_t* saddr, Family f) {
  const uint32_t h = v.scheduler == Scheduler::SourceHash ? crcHash(saddr, f == Family::V4 ? 4 : 16, 0x5eed) : sig;
  return maglevSlot(h, v.maglev.size());
}

inline uint32_t statelessBackend(const SnapVip& v, hash_sig_t sig, const uint8_t* saddr, Family f) {
  if (v.maglev.empty()) return kNoBackend;
  switch (v.scheduler) {
    case Scheduler::Maglev:
    case Scheduler::SourceHash:
      return v.maglev[statelessSlot(v, sig, saddr, f)];
    case Scheduler::RoundRobin:
    case Scheduler::WeightedRoundRobin:
      break;
  }
  return kNoBackend;
}

// The schedulers whose choice depends on the worker's cursor, not on the flow alone.
inline bool isRoundRobin(const SnapVip& v) {
  return v.scheduler == Scheduler::RoundRobin || v.scheduler == Scheduler::WeightedRoundRobin;
}

inline bool usableForExisting(const SnapBackend* b, uint32_t vip_index) {
  return b != nullptr && b->vip_index == vip_index && b->state != BackendState::Unhealthy;
}

}  // namespace l4lb::dataplane
