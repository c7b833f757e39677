// Per-VIP new-flow rate limit: a token bucket per worker and VIP index (like the round-robin
// cursor), refilled from the worker's clock (now_ms: no syscall). The configured rate and burst
// are split evenly over the workers by the snapshot builder (SnapVip::new_flow), since RSS
// spreads new flows roughly evenly; a worker that receives more than its share is limited at
// its share. Only packets that would start a new flow entry take a token: hits never do.
#pragma once

#include <algorithm>
#include <cstdint>

#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

struct TokenBucket {
  uint64_t tokens = 0;  // millionths of a flow (kTokensPerFlow)
  uint32_t last_ms = 0;
  bool primed = false;  // false until first used: starts full
};

// Takes one flow's worth of tokens; false (leaving the bucket as refilled) when there are not
// enough. An unlimited VIP (per_ms 0) always passes and leaves the bucket alone.
inline bool takeNewFlowToken(TokenBucket& b, const NewFlowLimit& l, uint32_t now_ms) {
  if (l.per_ms == 0) return true;
  if (!b.primed) {
    b.primed = true;
    b.tokens = l.burst;
    b.last_ms = now_ms;
  } else if (now_ms != b.last_ms) {
    // At most 10^6 ms at once: the product stays far below 2^64 (per_ms <= 10^11).
    const uint64_t elapsed = std::min<uint32_t>(now_ms - b.last_ms, 1'000'000u);
    b.tokens = std::min<uint64_t>(l.burst, std::min<uint64_t>(b.tokens, l.burst) + elapsed * l.per_ms);
    b.last_ms = now_ms;
  }
  if (b.tokens < kTokensPerFlow) return false;
  b.tokens -= kTokensPerFlow;
  return true;
}

}  // namespace l4lb::dataplane
