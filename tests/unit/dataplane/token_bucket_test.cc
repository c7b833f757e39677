// The worker's token bucket (src/dataplane/token_bucket.h), as the ICMP error limit drives it.
#include "dataplane/token_bucket.h"

#include <gtest/gtest.h>

namespace l4lb::dataplane {
namespace {

int takes(TokenBucket& b, uint32_t now, const IcmpErrorLimit& l, int n) {
  int ok = 0;
  for (int i = 0; i < n; i++) ok += takeIcmpErrorToken(b, l, now);
  return ok;
}

TEST(IcmpErrorTokens, StartsFullAtTheBurstThenRefillsAtTheRate) {
  TokenBucket b;
  const IcmpErrorLimit l{1000, 200};
  EXPECT_EQ(takes(b, 5000, l, 500), 200);
  EXPECT_EQ(takes(b, 5000, l, 10), 0);
  EXPECT_EQ(takes(b, 5001, l, 10), 1);    // 1000/s: one a millisecond
  EXPECT_EQ(takes(b, 5011, l, 100), 10);
  EXPECT_EQ(takes(b, 6011, l, 500), 200);  // a second saves 1000, kept: 200
}

TEST(IcmpErrorTokens, FractionalRefillIsKept) {
  TokenBucket b;
  const IcmpErrorLimit l{3, 2};  // one every 333.3 ms
  EXPECT_EQ(takes(b, 0, l, 5), 2);
  int got = 0;
  for (uint32_t t = 1; t <= 10'000; t++) got += takeIcmpErrorToken(b, l, t);
  EXPECT_EQ(got, 30);  // 3 a second over 10 s, none lost to rounding
}

TEST(IcmpErrorTokens, ClockWrapsAndLimitChanges) {
  TokenBucket b;
  const IcmpErrorLimit l{100, 5};
  const uint32_t t0 = 0xffffffffu - 5;
  EXPECT_EQ(takes(b, t0, l, 10), 5);
  EXPECT_EQ(takes(b, t0 + 20, l, 10), 2);  // across the wrap: 20 ms at 100/s
  // A reload lowering the burst clamps what is saved; raising the rate refills faster.
  EXPECT_EQ(takes(b, t0 + 10'020, l, 1), 1);
  EXPECT_EQ(takes(b, t0 + 10'020, {100, 2}, 10), 2);
  EXPECT_EQ(takes(b, t0 + 10'021, {kMaxIcmpErrorsPerSecond, kMaxIcmpErrorsPerSecond}, 20'000), 10'000);
}

}  // namespace
}  // namespace l4lb::dataplane
