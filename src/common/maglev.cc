#include "l4lb/maglev.h"

#include <algorithm>

#include "l4lb/addr.h"

namespace l4lb {

namespace {
constexpr uint64_t kOffsetSeed = 0x4d61676c65764f66ULL;  // independent seeds for offset and skip
constexpr uint64_t kSkipSeed = 0x4d61676c6576536bULL;
}  // namespace

std::vector<uint32_t> buildMaglevTable(std::span<const MaglevEndpoint> endpoints, uint32_t size) {
  std::vector<uint32_t> table(size, 0);
  struct Perm {
    uint32_t id;
    uint64_t key;
    uint32_t weight;
    uint64_t offset, skip, next, credit;
  };
  std::vector<Perm> perms;
  uint32_t max_weight = 0;
  for (const auto& e : endpoints) {
    if (e.weight == 0) continue;
    uint64_t k = e.key;
    perms.push_back({e.id, e.key, e.weight, hash64(&k, sizeof(k), kOffsetSeed) % size,
                     hash64(&k, sizeof(k), kSkipSeed) % (size - 1) + 1, 0, 0});
    max_weight = std::max(max_weight, e.weight);
  }
  if (perms.empty() || size < 2) return table;
  // Order must not depend on the caller's order (a pure function of the set).
  std::sort(perms.begin(), perms.end(), [](const Perm& a, const Perm& b) {
    return a.key != b.key ? a.key < b.key : a.id < b.id;
  });

  uint32_t filled = 0;
  while (true) {
    for (auto& p : perms) {
      p.credit += p.weight;
      while (p.credit >= max_weight) {
        p.credit -= max_weight;
        // Next empty slot in this endpoint's permutation: (offset + j * skip) mod size.
        uint64_t c;
        do {
          c = (p.offset + p.next * p.skip) % size;
          p.next++;
        } while (table[c] != 0);
        table[c] = p.id;
        if (++filled == size) return table;
      }
    }
  }
}

std::vector<uint32_t> maglevSlotCounts(std::span<const uint32_t> table, uint32_t max_id) {
  std::vector<uint32_t> counts(size_t(max_id) + 1, 0);
  for (uint32_t id : table)
    if (id <= max_id) counts[id]++;
  return counts;
}

}  // namespace l4lb
