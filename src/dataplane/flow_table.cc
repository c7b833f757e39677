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
  const uint64_t per_bucket = v6 ? Layout6::kSlots : Layout4::kSlots;
  const uint64_t bucket_bytes = v6 ? Layout6::kBytes : Layout4::kBytes;
  const uint64_t min_slots = (uint64_t(capacity) * 100 + kMaxLoadPercent - 1) / kMaxLoadPercent;
  uint64_t buckets = 1;
  while (buckets * per_bucket < min_slots) buckets <<= 1;
  const uint64_t bytes = buckets * bucket_bytes;
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
      capacity_(capacity) {}

FlowTable::~FlowTable() { rte_free(mem_); }

template <class L>
bool FlowTable::upsertIn(const void* key, hash_sig_t idx, uint64_t value) {
  const Needle<L> k(key);
  if (!k.validProto()) return false;
  unsigned slot;
  if (uint8_t* b = find<L>(k, idx, slot)) {
    store64(L::value(b, slot), value);
    return true;
  }
  if (size() >= capacity_) return false;
  // First free slot from the home bucket on; every full bucket passed counts one more entry
  // beyond it. There is one: size() < capacity_ <= slots().
  uint32_t bi = idx & mask_;
  for (;;) {
    uint8_t* b = bucketAt<L>(bi);
    for (unsigned i = 0; i < L::kSlots; i++) {
      if (L::used(b, i)) continue;
      std::memcpy(b + 5 * i, &k.tail, 5);  // little-endian: sport, dport, proto
      for (unsigned w = 0; w < L::kAddrWords; w++) store64(L::addr(b, i) + 8 * w, k.a[w]);
      store64(L::value(b, i), value);
      size_.store(size() + 1, std::memory_order_relaxed);
      return true;
    }
    uint8_t& over = b[L::kOverflowOff];
    if (over != flow_table_detail::kOverflowSticky) over++;
    bi = (bi + 1) & mask_;
  }
}

template <class L>
void FlowTable::removeAt(uint8_t* b, uint32_t bi, unsigned slot, uint32_t home) {
  std::memset(b + 5 * slot, 0, 5);  // proto 0: free
  for (uint32_t x = home; x != bi; x = (x + 1) & mask_) {
    uint8_t& over = bucketAt<L>(x)[L::kOverflowOff];
    if (over != flow_table_detail::kOverflowSticky) over--;
  }
  size_.store(size() - 1, std::memory_order_relaxed);
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
uint32_t FlowTable::sweepIn(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended) {
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
      const FlowValue v = FlowValue::unpack(load64(L::value(b, i)));
      if (!isExpired(v, now_ms, t)) continue;
      // The home bucket, for the overflow counts: the key's hash, from the stored words (the
      // key's bytes are exactly these words, padding zero).
      uint64_t words[L::kAddrWords + 1];
      for (unsigned w = 0; w < L::kAddrWords; w++) words[w] = load64(L::addr(b, i) + 8 * w);
      words[L::kAddrWords] = L::tail(b, i);
      removeAt<L>(b, bi, i, indexHash(words, L::kKeyLen) & mask_);
      removed++;
      if (ended != nullptr && v.backend_id < kMaxCountedBackends && v.backend_id != kNoBackend)
        ended[v.backend_id].flows_ended++;
    }
  }
  return removed;
}

uint32_t FlowTable::sweep(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended) {
  return v6_ ? sweepIn<Layout6>(now_ms, t, budget, ended) : sweepIn<Layout4>(now_ms, t, budget, ended);
}

uint64_t FlowTable::overflowSum() const {
  const uint32_t off = v6_ ? Layout6::kOverflowOff : Layout4::kOverflowOff;
  uint64_t sum = 0;
  for (uint64_t bi = 0; bi <= mask_; bi++) sum += mem_[bi * bucket_bytes_ + off];
  return sum;
}

template bool FlowTable::upsertIn<Layout4>(const void*, hash_sig_t, uint64_t);
template bool FlowTable::upsertIn<Layout6>(const void*, hash_sig_t, uint64_t);
template bool FlowTable::eraseIn<Layout4>(const void*, hash_sig_t);
template bool FlowTable::eraseIn<Layout6>(const void*, hash_sig_t);

}  // namespace l4lb::dataplane
