// Maglev (NSDI'16 §3.4) properties, as Katran tests its generateHashRing.
#include "l4lb/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "l4lb/addr.h"

namespace l4lb {
namespace {

std::vector<MaglevEndpoint> endpoints(uint32_t n, uint32_t weight = 1) {
  std::vector<MaglevEndpoint> e;
  for (uint32_t i = 1; i <= n; i++) {
    std::string k = "198.18.2." + std::to_string(i) + ":80";
    e.push_back({i, hash64(k.data(), k.size(), 0x6c34), weight});
  }
  return e;
}

TEST(Maglev, EqualWeightsMaxMinSlotsAtMostOne) {
  for (uint32_t n : {2u, 3u, 7u, 10u, 100u, 1000u}) {
    auto t = buildMaglevTable(endpoints(n), 65537);
    auto c = maglevSlotCounts(t, n);
    auto [mn, mx] = std::minmax_element(c.begin() + 1, c.end());
    EXPECT_LE(*mx - *mn, 1u) << n << " backends";
    EXPECT_EQ(c[0], 0u) << "no empty slot";
    EXPECT_EQ(std::accumulate(c.begin(), c.end(), 0u), 65537u);
  }
}

TEST(Maglev, WeightsOneTwoThreeWithinOnePercentOfShare) {
  auto e = endpoints(3);
  e[0].weight = 1;
  e[1].weight = 2;
  e[2].weight = 3;
  auto c = maglevSlotCounts(buildMaglevTable(e, 65537), 3);
  for (uint32_t i = 1; i <= 3; i++) {
    double share = double(c[i]) / 65537.0, want = double(i) / 6.0;
    EXPECT_NEAR(share, want, 0.01 * want) << "backend " << i;
  }
}

TEST(Maglev, OrderOfEndpointsDoesNotMatter) {
  auto e = endpoints(20);
  auto a = buildMaglevTable(e, 251);
  std::reverse(e.begin(), e.end());
  EXPECT_EQ(a, buildMaglevTable(e, 251));
}

TEST(Maglev, RemovingOneBackendMovesItsSlotsPlusSmallBoundedFraction) {
  for (uint32_t n : {10u, 100u}) {
    auto e = endpoints(n);
    auto before = buildMaglevTable(e, 65537);
    e.erase(e.begin() + 3);  // remove backend id 4
    auto after = buildMaglevTable(e, 65537);
    uint32_t own = 0, other = 0;
    for (size_t i = 0; i < before.size(); i++) {
      if (before[i] == 4) own++;
      else if (before[i] != after[i]) other++;
    }
    double extra = double(other) / 65537.0;
    // Maglev's trade-off: a little disruption beyond the removed backend's own 1/n share.
    // Measured: n=10 0.18%, n=100 0.59% of all slots moved besides the removed backend's own.
    std::printf("maglev remove 1 of %u: own slots %u, other slots moved %u (%.3f%% of table)\n", n, own, other,
                100.0 * extra);
    EXPECT_GT(own, 0u);
    EXPECT_LT(extra, 0.02) << n << " backends";
    for (uint32_t id : after) EXPECT_NE(id, 4u);
  }
}

TEST(Maglev, NoOpUpdateChangesNothing) {
  auto e = endpoints(50);
  EXPECT_EQ(buildMaglevTable(e, 65537), buildMaglevTable(e, 65537));
}

TEST(Maglev, GoldenTableOnTinyPrime) {
  // Pinned output for 3 backends on 13 slots: any change to the hash, permutation or weighting
  // changes which backend a live flow goes to after an upgrade, so it must be deliberate.
  auto t = buildMaglevTable(endpoints(3), 13);
  const std::vector<uint32_t> golden = {1, 3, 3, 2, 2, 1, 2, 2, 1, 1, 3, 3, 1};
  EXPECT_EQ(t, golden);
}

TEST(Maglev, ZeroWeightEndpointsAreLeftOutAndEmptySetGivesEmptyTable) {
  auto e = endpoints(3);
  e[1].weight = 0;
  auto c = maglevSlotCounts(buildMaglevTable(e, 13), 3);
  EXPECT_EQ(c[2], 0u);
  EXPECT_EQ(c[1] + c[3], 13u);
  e[0].weight = e[2].weight = 0;
  auto t = buildMaglevTable(e, 13);
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint32_t id) { return id == 0; }));
}

}  // namespace
}  // namespace l4lb
