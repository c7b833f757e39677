// The worker's token bucket: one per (worker, VIP index) for the new-flow rate (decide.h
// takeNewFlowToken) and one per worker for forwarded ICMP errors (slow_path.cc,
// takeIcmpErrorToken). Contract: a bucket belongs to one worker (no lock, no atomic), is driven
// by that worker's millisecond clock (now_ms: no syscall), and never allocates. Pure, so unit
// tests need no EAL.
//
// One unit and one priming rule for both:
//  - Tokens are counted in millionths (kTokenUnit per token), so any rate of whole tokens per
//    second refills an exact whole number of millionths per millisecond (r/s = r * 1000 per ms).
//  - A bucket starts full: the first take fills it to the burst.
//  - Every take clamps what is saved to the current burst (a reload may lower it).
// The rates the buckets are given are per worker: the snapshot builder divides the new-flow rate
// of a VIP (configured per balancer) over the workers (SnapVip::new_flow), while [icmp]
// errors_per_second is configured per worker and used as is.
#pragma once

#include <algorithm>
#include <cstdint>

#include "l4lb/limits.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// One token in bucket units.
inline constexpr uint64_t kTokenUnit = 1'000'000;
static_assert(kTokenUnit == kTokensPerFlow, "NewFlowLimit is in the bucket's unit");

struct TokenBucket {
  uint64_t tokens = 0;  // millionths of a token (kTokenUnit)
  uint32_t last_ms = 0;
  bool primed = false;  // false until the first take, which fills the bucket
};

// Refills `b` for the time since its last take (`per_ms` millionths a millisecond, at most
// `burst` millionths saved) and takes one token; false (leaving the bucket as refilled) when
// there is not a whole one. The clock may wrap (elapsed time is a uint32 difference).
inline bool takeToken(TokenBucket& b, uint64_t per_ms, uint64_t burst, uint32_t now_ms) {
  if (!b.primed) {
    b.primed = true;
    b.tokens = burst;
  } else {
    // At most 10^6 ms at once: the product stays far below 2^64 (per_ms <= 10^11).
    const uint64_t elapsed = std::min<uint32_t>(now_ms - b.last_ms, 1'000'000u);
    b.tokens = std::min<uint64_t>(burst, std::min<uint64_t>(b.tokens, burst) + elapsed * per_ms);
  }
  b.last_ms = now_ms;
  if (b.tokens < kTokenUnit) return false;
  b.tokens -= kTokenUnit;
  return true;
}

// The new-flow rate of a VIP, per worker (NewFlowLimit is already in millionths per ms). An
// unlimited VIP (per_ms 0) always passes and leaves the bucket alone.
inline bool takeNewFlowToken(TokenBucket& b, const NewFlowLimit& l, uint32_t now_ms) {
  if (l.per_ms == 0) return true;
  return takeToken(b, l.per_ms, l.burst, now_ms);
}

// [icmp] errors_per_second / burst (Snapshot::icmp_errors), per worker: r errors a second is
// r * 1000 millionths a millisecond. Both are at most kMaxIcmpErrorsPerSecond (10^7), so the
// rate is at most 10^10 per ms and the burst 10^13 millionths.
inline bool takeIcmpErrorToken(TokenBucket& b, const IcmpErrorLimit& l, uint32_t now_ms) {
  return takeToken(b, uint64_t{l.per_second} * (kTokenUnit / 1000), uint64_t{l.burst} * kTokenUnit, now_ms);
}

}  // namespace l4lb::dataplane
