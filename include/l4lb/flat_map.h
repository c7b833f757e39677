// An immutable-after-build open-addressing hash map for snapshot lookups (VIPs, NAT reverse,
// neighbours). Built by the control plane, only read by workers: no locks, no allocation on
// lookup, linear probing over a power-of-two array at most half full.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "l4lb/hash.h"

namespace l4lb {

// Keys are trivially copyable structs with no padding holes (compared and hashed bytewise).
template <typename Key, typename Value>
class FlatMap {
 public:
  FlatMap() = default;

  // Builds the map; the last value wins for duplicate keys (callers validate before).
  explicit FlatMap(const std::vector<std::pair<Key, Value>>& items) {
    size_t cap = 8;
    while (cap < items.size() * 2) cap <<= 1;
    slots_.resize(cap);
    mask_ = cap - 1;
    for (const auto& [k, v] : items) {
      size_t i = hashOf(k) & mask_;
      while (slots_[i].used && std::memcmp(&slots_[i].key, &k, sizeof(Key)) != 0) i = (i + 1) & mask_;
      if (!slots_[i].used) size_++;
      slots_[i] = Slot{k, v, true};
    }
  }

  const Value* find(const Key& k) const {
    if (slots_.empty()) return nullptr;
    size_t i = hashOf(k) & mask_;
    while (slots_[i].used) {
      if (std::memcmp(&slots_[i].key, &k, sizeof(Key)) == 0) return &slots_[i].value;
      i = (i + 1) & mask_;
    }
    return nullptr;
  }

  size_t size() const { return size_; }

  template <typename F>
  void forEach(F&& f) const {
    for (const auto& s : slots_)
      if (s.used) f(s.key, s.value);
  }

  static uint32_t hashOf(const Key& k) { return crcHash(&k, sizeof(Key), 0x9e3779b9); }

 private:
  struct Slot {
    Key key{};
    Value value{};
    bool used = false;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace l4lb
