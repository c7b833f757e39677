#include "dataplane/frag_table.h"

#include <algorithm>

#include "l4lb/hash.h"

namespace l4lb::dataplane {

FragTable::FragTable(uint32_t capacity, uint32_t max_held, uint32_t max_held_per_datagram)
    : max_held_(max_held), max_per_dgram_(std::clamp<uint32_t>(max_held_per_datagram, 1, kMaxHeldPerDatagram)) {
  uint32_t buckets = 1;
  while (buckets * kWays < capacity) buckets <<= 1;
  nbuckets_ = buckets;
  mask_ = buckets - 1;
  entries_.reset(new Entry[size_t(buckets) * kWays]);
  slots_.reset(new Slot[std::max<uint32_t>(max_held, 1)]);
  // The free list threads every slot; with max_held 0 it is empty (nothing is ever held).
  for (uint32_t i = 0; i < max_held; i++) slots_[i].next = i + 1 < max_held ? i + 1 : kNil;
  free_slot_ = max_held > 0 ? 0 : kNil;
}

uint32_t FragTable::bucketOf(const FragKey& k) const {
  // The source address words, the destination's and the identification: a sender controls all
  // of them, so this only spreads honest traffic; a flood aimed at one bucket costs only that
  // bucket's held-only ways (decisions are never displaced).
  return crcHash(&k, sizeof(FragKey), 0xf4a6) & mask_;
}

FragTable::Entry* FragTable::find(const FragKey& k) {
  Entry* b = &entries_[size_t(bucketOf(k)) * kWays];
  for (uint32_t w = 0; w < kWays; w++) {
    Entry& e = b[w];
    if (e.used && e.key == k) return &e;
  }
  return nullptr;
}

const FragDecision* FragTable::lookup(const FragKey& k, uint32_t now_ms) const {
  const Entry* e = const_cast<FragTable*>(this)->find(k);
  return e != nullptr && e->decided && !expired(*e, now_ms) ? &e->d : nullptr;
}

}  // namespace l4lb::dataplane
