// The per-worker token bucket for forwarded ICMP errors (src/dataplane/icmp_rate_limit.h).
#include "dataplane/icmp_rate_limit.h"

#include <gtest/gtest.h>

namespace l4lb::dataplane {
namespace {

int takes(IcmpErrorBucket& b, uint32_t now, const IcmpErrorLimit& l, int n) {
  int ok = 0;
  for (int i = 0; i < n; i++) ok += b.take(now, l);
  return ok;
}

TEST(IcmpErrorBucket, StartsFullAtTheBurstThenRefillsAtTheRate) {
  IcmpErrorBucket b;
  const IcmpErrorLimit l{1000, 200};
  EXPECT_EQ(takes(b, 5000, l, 500), 200);
  EXPECT_EQ(takes(b, 5000, l, 10), 0);
  EXPECT_EQ(takes(b, 5001, l, 10), 1);    // 1000/s: one a millisecond
  EXPECT_EQ(takes(b, 5011, l, 100), 10);
  EXPECT_EQ(takes(b, 6011, l, 500), 200);  // a second saves 1000, kept: 200
}

TEST(IcmpErrorBucket, FractionalRefillIsKept) {
  IcmpErrorBucket b;
  const IcmpErrorLimit l{3, 2};  // one every 333.3 ms
  EXPECT_EQ(takes(b, 0, l, 5), 2);
  int got = 0;
  for (uint32_t t = 1; t <= 10'000; t++) got += b.take(t, l);
  EXPECT_EQ(got, 30);  // 3 a second over 10 s, none lost to rounding
}

TEST(IcmpErrorBucket, ClockWrapsAndLimitChanges) {
  IcmpErrorBucket b;
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
