#include "dataplane/flow_table.h"

#include <rte_common.h>
#include <rte_malloc.h>

namespace l4lb::dataplane {

using flow_table_detail::Layout4;
using flow_table_detail::Layout6;
using flow_table_detail::load64;
using flow_table_detail::Needle;
using flow_table_detail::store64;

std::unique_ptr<FlowTable> FlowTable::create(const std::string& name, uint32_t capacity, uint32_t key_len,
                                             int socket, std::string& err) {
  const std::string what = "flow table " + name + ": ";
  if (key_len != Layout4::kKeyLen && key_len != Layout6::kKeyLen) {
    err = what + "key length " + std::to_string(key_len) + " is neither FlowKey4's (16) nor FlowKey6's (40)";
    return nullptr;
  }
  if (capacity == 0 || capacity > kMaxCapacity) {
    err = what + "capacity " + std::to_string(capacity) + " must be 1.." + std::to_string(kMaxCapacity);
    return nullptr;
  }
  const bool v6 = key_len == Layout6::kKeyLen;
  const uint64_t bytes = bytesFor(capacity, v6);
  const uint64_t buckets = bytes / (v6 ? Layout6::kBytes : Layout4::kBytes);
  // Zeroed: every slot free (proto 0), every overflow count 0.
  auto* mem = static_cast<uint8_t*>(rte_zmalloc_socket(name.c_str(), bytes, RTE_CACHE_LINE_SIZE, socket));
  if (mem == nullptr) {
    err = what + "rte_zmalloc_socket(" + std::to_string(bytes) + " bytes for " + std::to_string(capacity) +
          " entries, socket " + std::to_string(socket) + "): out of memory";
    return nullptr;
  }
  return std::unique_ptr<FlowTable>(new FlowTable(mem, capacity, uint32_t(buckets - 1), v6));
}

FlowTable::FlowTable(uint8_t* mem, uint32_t capacity, uint32_t mask, bool v6)
    : mem_(mem),
      mask_(mask),
      bucket_bytes_(v6 ? Layout6::kBytes : Layout4::kBytes),
      slots_per_bucket_(v6 ? Layout6::kSlots : Layout4::kSlots),
      v6_(v6),
      capacity_(capacity),
      sparse_max_(uint32_t((uint64_t(mask) + 1) / 4)) {}

FlowTable::~FlowTable() { rte_free(mem_); }

template <class L>
void FlowTable::overwrite(uint8_t* b, unsigned slot, uint64_t value) {
  const bool was = isEmbryonicRaw(load64(L::value(b, slot)));
  const bool is = isEmbryonicRaw(value);
  store64(L::value(b, slot), value);
  if (unlikely(was != is)) embryonic_.store(embryonic() + (is ? 1u : 0u) - (was ? 1u : 0u), std::memory_order_relaxed);
}

template <class L>
void FlowTable::insertNew(const Needle<L>& k, hash_sig_t sig, uint64_t value) {
  // First free slot from the home bucket on; every full bucket passed counts one more entry
  // beyond it. There is one: size() < capacity_ <= slots() (the caller checked).
  uint32_t bi = sig & mask_;
  for (;;) {
    uint8_t* b = bucketAt<L>(bi);
    for (unsigned i = 0; i < L::kSlots; i++) {
      if (L::used(b, i)) continue;
      std::memcpy(b + 5 * i, &k.tail, 5);  // little-endian: sport, dport, proto
      for (unsigned w = 0; w < L::kAddrWords; w++) store64(L::addr(b, i) + 8 * w, k.a[w]);
      store64(L::value(b, i), value);
      size_.store(size() + 1, std::memory_order_relaxed);
      if (isEmbryonicRaw(value)) embryonic_.store(embryonic() + 1, std::memory_order_relaxed);
      return;
    }
    uint8_t& over = b[L::kOverflowOff];
    if (over != flow_table_detail::kOverflowSticky) over++;
    bi = (bi + 1) & mask_;
  }
}

template <class L>
bool FlowTable::upsertIn(const void* key, hash_sig_t sig, uint64_t value) {
  const Needle<L> k(key);
  if (!k.validProto()) return false;
  unsigned slot;
  if (uint8_t* b = find<L>(k, sig, slot)) {
    overwrite<L>(b, slot, value);
    return true;
  }
  if (size() >= capacity_) return false;
  insertNew<L>(k, sig, value);
  return true;
}

template <class L>
bool FlowTable::insertAbsentIn(const void* key, hash_sig_t sig, uint64_t value) {
  const Needle<L> k(key);
  if (!k.validProto() || size() >= capacity_) return false;
#ifdef RTE_ENABLE_ASSERT
  unsigned present_slot;
  RTE_ASSERT(find<L>(k, sig, present_slot) == nullptr);
#endif
  insertNew<L>(k, sig, value);
  return true;
}

template <class L>
uint32_t FlowTable::homeOf(const uint8_t* b, unsigned i) const {
  // The key's bytes are exactly these words, padding zero.
  uint64_t words[L::kAddrWords + 1];
  for (unsigned w = 0; w < L::kAddrWords; w++) words[w] = load64(L::addr(b, i) + 8 * w);
  words[L::kAddrWords] = L::tail(b, i);
  return indexHash(words, L::kKeyLen) & mask_;
}

template <class L>
bool FlowTable::findVictim(uint32_t home, bool embryonic_ok, bool embryonic_only, const AdmitParams& a,
                           const uint8_t* keep, unsigned keep_slot, Plan& p) const {
  uint32_t oldest_age = 0;
  bool found = false;
  uint32_t bi = home;
  for (uint32_t n = 0; n < kDisplaceBuckets && n <= mask_; n++, bi = (bi + 1) & mask_) {
    uint8_t* b = bucketAt<L>(bi);
    for (unsigned i = 0; i < L::kSlots; i++) {
      if (!L::used(b, i) || (b == keep && i == keep_slot)) continue;
      const FlowValue v = FlowValue::unpack(load64(L::value(b, i)));
      if (embryonic_only && !isEmbryonic(v.state)) continue;
      if (isExpired(v, a.now_ms, *a.timeouts)) {  // dead already: the best victim
        p.victim = b;
        p.victim_slot = i;
        return true;
      }
      // A pinned entry (round robin) would lose its backend for good: never displaced live.
      if (!embryonic_ok || !isEmbryonic(v.state) || v.pinned) continue;
      const uint32_t age = a.now_ms - v.last_seen_ms;
      if (!found || age > oldest_age) {
        found = true;
        oldest_age = age;
        p.victim = b;
        p.victim_slot = i;
      }
    }
  }
  return found;
}

template <class L>
FlowTable::Plan FlowTable::planIn(const void* key, hash_sig_t sig, bool emb, const AdmitParams& a) const {
  Plan p;
  const Needle<L> k(key);
  if (!k.validProto()) {
    p.result = StoreResult::TableFull;
    return p;
  }
  p.found = find<L>(k, sig, p.found_slot);
  const uint32_t home = sig & mask_;
  if (!a.enabled) {
    p.result = p.found != nullptr || size() < capacity_ ? StoreResult::Stored : StoreResult::TableFull;
    return p;
  }
  const bool quota_room = this->embryonic() < a.embryonic_limit;
  if (p.found != nullptr) {
    // Overwriting (a re-choice over an expired or unusable entry): only a confirmed entry
    // turning embryonic adds to the class.
    if (!emb || isEmbryonicRaw(load64(L::value(p.found, p.found_slot))) || quota_room) {
      p.result = StoreResult::Stored;
      return p;
    }
    p.result = findVictim<L>(home, true, true, a, p.found, p.found_slot, p) ? StoreResult::Displaced
                                                                           : StoreResult::EmbryonicFull;
    return p;
  }
  if (size() < capacity_ && (!emb || quota_room)) {
    p.result = StoreResult::Stored;
    return p;
  }
  // Over the quota an embryonic key may only replace an embryonic entry (the class count stays);
  // a confirmed key, or an embryonic one on a full table below the quota, any expired entry.
  if (findVictim<L>(home, emb, emb && !quota_room, a, nullptr, 0, p)) {
    p.result = StoreResult::Displaced;
    return p;
  }
  p.result = emb && !quota_room ? StoreResult::EmbryonicFull : StoreResult::TableFull;
  return p;
}

template <class L>
void FlowTable::removeAt(uint8_t* b, uint32_t bi, unsigned slot, uint32_t home) {
  if (isEmbryonicRaw(load64(L::value(b, slot)))) embryonic_.store(embryonic() - 1, std::memory_order_relaxed);
  std::memset(b + 5 * slot, 0, 5);  // proto 0: free
  for (uint32_t x = home; x != bi; x = (x + 1) & mask_) {
    uint8_t& over = bucketAt<L>(x)[L::kOverflowOff];
    if (over != flow_table_detail::kOverflowSticky) over--;
  }
  size_.store(size() - 1, std::memory_order_relaxed);
}

template <class L>
StoreResult FlowTable::storeIn(const void* key, hash_sig_t sig, uint64_t value, const AdmitParams& a,
                               FlowValue* victim) {
  const Plan p = planIn<L>(key, sig, isEmbryonicRaw(value), a);
  switch (p.result) {
    case StoreResult::TableFull:
    case StoreResult::EmbryonicFull: return p.result;
    case StoreResult::Stored:
    case StoreResult::Displaced: break;
  }
  if (p.result == StoreResult::Displaced) {
    *victim = FlowValue::unpack(load64(L::value(p.victim, p.victim_slot)));
    removeAt<L>(p.victim, uint32_t((p.victim - mem_) / L::kBytes), p.victim_slot, homeOf<L>(p.victim, p.victim_slot));
  }
  if (p.found != nullptr) {
    overwrite<L>(p.found, p.found_slot, value);  // removeAt touched only the victim's slot
  } else {
    insertNew<L>(Needle<L>(key), sig, value);
  }
  return p.result;
}

template <class L>
bool FlowTable::eraseIn(const void* key, hash_sig_t idx) {
  const Needle<L> k(key);
  if (!k.validProto()) return false;
  unsigned slot;
  uint8_t* b = find<L>(k, idx, slot);
  if (b == nullptr) return false;
  removeAt<L>(b, uint32_t((b - mem_) / L::kBytes), slot, idx & mask_);
  return true;
}

template <class L>
uint32_t FlowTable::sweepIn(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended,
                           const LiveVisit* visit) {
  const uint64_t slots = this->slots();
  uint32_t removed = 0;
  for (uint32_t visited = 0; visited < budget; visited++) {
    const uint64_t pos = sweep_next_;
    if (++sweep_next_ >= capacity_) sweep_next_ = 0;
    const uint64_t end = (pos + 1) * slots / capacity_;
    for (uint64_t s = pos * slots / capacity_; s < end; s++) {
      const auto bi = uint32_t(s / L::kSlots);
      const auto i = unsigned(s % L::kSlots);
      uint8_t* b = bucketAt<L>(bi);
      if (!L::used(b, i)) continue;
      const uint64_t raw = load64(L::value(b, i));
      const FlowValue v = FlowValue::unpack(raw);
      if (!isExpired(v, now_ms, t)) {
        if (visit != nullptr && (raw & visit->skip) == 0) {
          uint64_t key[L::kAddrWords + 1];  // the key's bytes (FlowKey4/6), as homeOf reads them
          for (unsigned w = 0; w < L::kAddrWords; w++) key[w] = load64(L::addr(b, i) + 8 * w);
          key[L::kAddrWords] = L::tail(b, i);
          const uint64_t nv = visit->fn(visit->ctx, key, raw);
          if (nv != raw) overwrite<L>(b, i, nv);
        }
        continue;
      }
      // The home bucket, for the overflow counts.
      removeAt<L>(b, bi, i, homeOf<L>(b, i));
      removed++;
      if (ended != nullptr && v.backend_id < kMaxCountedBackends && v.backend_id != kNoBackend)
        ended[v.backend_id].flows_ended++;
    }
  }
  return removed;
}

uint32_t FlowTable::sweep(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended,
                          const LiveVisit* visit) {
  return v6_ ? sweepIn<Layout6>(now_ms, t, budget, ended, visit) : sweepIn<Layout4>(now_ms, t, budget, ended, visit);
}

uint64_t FlowTable::overflowSum() const {
  const uint32_t off = v6_ ? Layout6::kOverflowOff : Layout4::kOverflowOff;
  uint64_t sum = 0;
  for (uint64_t bi = 0; bi <= mask_; bi++) sum += mem_[bi * bucket_bytes_ + off];
  return sum;
}

template bool FlowTable::upsertIn<Layout4>(const void*, hash_sig_t, uint64_t);
template bool FlowTable::upsertIn<Layout6>(const void*, hash_sig_t, uint64_t);
template bool FlowTable::insertAbsentIn<Layout4>(const void*, hash_sig_t, uint64_t);
template bool FlowTable::insertAbsentIn<Layout6>(const void*, hash_sig_t, uint64_t);
template StoreResult FlowTable::storeIn<Layout4>(const void*, hash_sig_t, uint64_t, const AdmitParams&, FlowValue*);
template StoreResult FlowTable::storeIn<Layout6>(const void*, hash_sig_t, uint64_t, const AdmitParams&, FlowValue*);
template FlowTable::Plan FlowTable::planIn<Layout4>(const void*, hash_sig_t, bool, const AdmitParams&) const;
template FlowTable::Plan FlowTable::planIn<Layout6>(const void*, hash_sig_t, bool, const AdmitParams&) const;
template bool FlowTable::eraseIn<Layout4>(const void*, hash_sig_t);
template bool FlowTable::eraseIn<Layout6>(const void*, hash_sig_t);

}  // namespace l4lb::dataplane
