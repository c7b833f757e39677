// The per-worker token bucket for forwarded ICMP errors ([icmp] errors_per_second / burst,
// Snapshot::icmp_errors). Driven by the worker's own millisecond clock (the now_ms processBurst
// is given): no syscall, no lock, no allocation. Pure, so unit tests need no EAL.
#pragma once

#include <algorithm>
#include <cstdint>

#include "l4lb/limits.h"

namespace l4lb::dataplane {

class IcmpErrorBucket {
 public:
  // One token per error; tokens are kept in thousandths so a rate of r per second refills r
  // thousandths per millisecond exactly. True (a token taken) when the error may be forwarded.
  bool take(uint32_t now_ms, const IcmpErrorLimit& limit) {
    const uint64_t cap = uint64_t{limit.burst} * kMilli;
    // Wrap-safe elapsed time; a clock that went backwards (it does not) would refill nothing.
    const uint32_t elapsed = now_ms - last_ms_;
    last_ms_ = now_ms;
    // elapsed < 2^32 and per_second <= 10^7: the product fits in 64 bits.
    milli_ = std::min(cap, milli_ + std::min(cap, uint64_t{elapsed} * limit.per_second));
    if (milli_ < kMilli) return false;
    milli_ -= kMilli;
    return true;
  }

 private:
  static constexpr uint64_t kMilli = 1000;
  // Starts full: clamped to the burst at the first take(). Also after a reload lowers it.
  uint64_t milli_ = uint64_t{kMaxIcmpErrorsPerSecond} * kMilli;
  uint32_t last_ms_ = 0;
};

}  // namespace l4lb::dataplane
