// The flow table's keyed bucket index (flow_index.h) against the unkeyed flow hash (makeFlowKey's
// CRC32-C): the key changes buckets, never the Maglev slot; and 5-tuples crafted to share one CRC
// bucket (CRC is linear, so anyone can) spread over the keyed index.
#include "dataplane/flow_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <vector>

#include <rte_byteorder.h>

#include "dataplane/flow_table.h"
#include "dataplane/lookup.h"
#include "l4lb/maglev.h"

namespace l4lb::dataplane {
namespace {

constexpr FlowIndexKey kKeyA{{0x0123456789abcdefull, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555}};
constexpr FlowIndexKey kKeyB{{0xfedcba9876543210ull, 0x9999, 0x8888, 0x7777, 0x6666, 0x5556}};

// Restores the process's key after a test changed it.
struct KeyGuard {
  FlowIndexKey saved = g_flow_index_key;
  ~KeyGuard() { setFlowIndexKey(saved); }
};

struct Flow4 {
  uint32_t saddr, daddr;  // network order
  uint16_t sport, dport;
};

hash_sig_t hashes(const Flow4& f, hash_sig_t& idx) {
  FlowKey4 k;
  return makeFlowKey(k, reinterpret_cast<const uint8_t*>(&f.saddr), reinterpret_cast<const uint8_t*>(&f.daddr),
                     f.sport, f.dport, 6, &idx);
}

// The process starts with a key from getrandom(), not a constant (the test binary's own key, read
// before any test sets one: tests run in order and each restores it).
TEST(FlowIndex, ProcessKeyIsRandom) {
  uint64_t any = 0;
  for (uint64_t w : g_flow_index_key.k) any |= w;
  EXPECT_NE(any, 0u);
  EXPECT_NE(g_flow_index_key.k[0], g_flow_index_key.k[1]);
}

TEST(FlowIndex, KeyMovesBucketsNeverTheMaglevSlot) {
  KeyGuard g;
  constexpr uint32_t kMaglevSize = 65537;
  uint32_t idx_differs = 0;
  for (uint32_t i = 0; i < 10000; i++) {
    const Flow4 f{rte_cpu_to_be_32(0xc6120000u + i * 7919u), rte_cpu_to_be_32(0xc613000au),
                  rte_cpu_to_be_16(uint16_t(1024 + i)), rte_cpu_to_be_16(443)};
    hash_sig_t ia, ib;
    setFlowIndexKey(kKeyA);
    const hash_sig_t sa = hashes(f, ia);
    setFlowIndexKey(kKeyB);
    const hash_sig_t sb = hashes(f, ib);
    ASSERT_EQ(sa, sb) << "the flow hash (Maglev slot, tunnel entropy) must not depend on the process key";
    ASSERT_EQ(maglevSlot(sa, kMaglevSize), maglevSlot(sb, kMaglevSize));
    // makeFlowKey's index is the table's own indexHash of the stored key.
    FlowKey4 k;
    hash_sig_t via_key;
    makeFlowKey(k, reinterpret_cast<const uint8_t*>(&f.saddr), reinterpret_cast<const uint8_t*>(&f.daddr), f.sport,
                f.dport, 6, &via_key);
    ASSERT_EQ(via_key, FlowTable::indexHash(k));
    if ((ia & 0xfff) != (ib & 0xfff)) idx_differs++;
  }
  // 4096 buckets: two independent keys agree on ~1/4096 of the flows.
  EXPECT_GT(idx_differs, 9900u);
}

TEST(FlowIndex, Ipv6KeyMovesBucketsNeverTheFlowHash) {
  KeyGuard g;
  uint32_t idx_differs = 0;
  for (uint32_t i = 0; i < 2000; i++) {
    std::array<uint8_t, 16> src{0x20, 0x01, 0x0d, 0xb8}, dst{0x20, 0x01, 0x0d, 0xb8, 0, 1};
    src[12] = uint8_t(i >> 8);
    src[15] = uint8_t(i);
    dst[15] = 10;
    FlowKey6 k;
    hash_sig_t ia, ib;
    setFlowIndexKey(kKeyA);
    const hash_sig_t sa = makeFlowKey(k, src.data(), dst.data(), rte_cpu_to_be_16(40000), rte_cpu_to_be_16(53), 17, &ia);
    EXPECT_EQ(ia, FlowTable::indexHash(k));
    setFlowIndexKey(kKeyB);
    const hash_sig_t sb = makeFlowKey(k, src.data(), dst.data(), rte_cpu_to_be_16(40000), rte_cpu_to_be_16(53), 17, &ib);
    ASSERT_EQ(sa, sb);
    if ((ia & 0xfff) != (ib & 0xfff)) idx_differs++;
  }
  EXPECT_GT(idx_differs, 1980u);
}

// An attacker's 5-tuples: source address and port chosen (48 free bits) so that all share one
// CRC32-C. CRC is affine over GF(2): crc(x ^ d) = crc(x) ^ L(d) for a fixed length, so every d in
// the kernel of L (restricted to the free bits) keeps the CRC. Gaussian elimination finds it.
std::vector<Flow4> crcCollisions(const Flow4& base, unsigned count) {
  auto flip = [&](unsigned bit) {
    Flow4 f = base;
    if (bit < 32) f.saddr ^= 1u << bit;
    else f.sport = uint16_t(f.sport ^ (1u << (bit - 32)));
    return f;
  };
  hash_sig_t unused;
  const uint32_t c0 = hashes(base, unused);
  // Rows: (L(e_i), mask of free bits combined so far). Reduce to find combinations with L = 0.
  struct Row {
    uint32_t l;
    uint64_t combo;
  };
  std::vector<Row> pivots;  // pivots[j] has its lowest set bit unique
  std::vector<uint64_t> kernel;
  for (unsigned bit = 0; bit < 48; bit++) {
    Row r{hashes(flip(bit), unused) ^ c0, uint64_t(1) << bit};
    for (const Row& p : pivots)
      if (r.l & (p.l & -p.l)) r = {r.l ^ p.l, r.combo ^ p.combo};
    if (r.l == 0) kernel.push_back(r.combo);
    else pivots.push_back(r);
    // Keep pivots fully reduced so one pass above suffices.
    if (r.l != 0)
      for (size_t j = 0; j + 1 < pivots.size(); j++)
        if (pivots[j].l & (r.l & -r.l)) pivots[j] = {pivots[j].l ^ r.l, pivots[j].combo ^ r.combo};
  }
  std::vector<Flow4> out;
  for (uint64_t sel = 0; sel < (uint64_t(1) << kernel.size()) && out.size() < count; sel++) {
    uint64_t d = 0;
    for (size_t j = 0; j < kernel.size(); j++)
      if (sel >> j & 1) d ^= kernel[j];
    Flow4 f = base;
    f.saddr ^= uint32_t(d);
    f.sport = uint16_t(f.sport ^ (d >> 32));
    out.push_back(f);
  }
  return out;
}

TEST(FlowIndex, CrcCollidingFlowsSpreadOverKeyedBuckets) {
  KeyGuard g;
  setFlowIndexKey(kKeyA);
  const Flow4 base{rte_cpu_to_be_32(0xc6120001u), rte_cpu_to_be_32(0xc613000au), rte_cpu_to_be_16(1024),
                   rte_cpu_to_be_16(80)};
  const std::vector<Flow4> flows = crcCollisions(base, 1024);
  ASSERT_EQ(flows.size(), 1024u) << "the kernel of the CRC over 48 free bits has dimension >= 16";
  constexpr uint32_t kMask = 4095;  // a table of 4096 buckets
  std::map<uint32_t, uint32_t> by_crc, by_idx;
  for (const Flow4& f : flows) {
    hash_sig_t idx;
    by_crc[hashes(f, idx) & kMask]++;
    by_idx[idx & kMask]++;
  }
  // The attack works on the unkeyed hash: 1024 distinct flows, one bucket (the control).
  EXPECT_EQ(by_crc.size(), 1u);
  // The keyed index spreads them like random keys: 1024 balls in 4096 bins, max load ~4.
  uint32_t worst = 0;
  for (const auto& [b, n] : by_idx) worst = std::max(worst, n);
  EXPECT_GT(by_idx.size(), 850u);
  EXPECT_LE(worst, 6u);
}

}  // namespace
}  // namespace l4lb::dataplane
