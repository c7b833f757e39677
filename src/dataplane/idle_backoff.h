// Adaptive idle back-off for a polling worker, as DPDK's examples/l3fwd-power (its "legacy"
// mode: sleep after a run of empty polls) and VPP's adaptive polling do.
//
// What it promises: with it off (the default: a dedicated appliance busy-polls) the worker loop
// pays one predictable branch per loop and nothing per packet. With it on, after
// `polls_before_sleep` consecutive loops that received nothing, the worker sleeps 1 us, then
// 2, 4, ... up to `sleep_max_us` per loop while it stays idle; the first loop that receives a
// packet resets the schedule, so the worker busy-polls again at once. The price is latency: a
// packet that arrives while the worker sleeps waits for the sleep to end (at most sleep_max_us
// plus the kernel's wake-up time) - measured in perf/RESULTS.md ("Idle back-off").
//
// What it does not do: it has no interrupt mode (rte_eth_dev_rx_intr_*, which l3fwd-power's
// default mode uses): not every PMD we run on has RX interrupts (net_ring, net_pcap), and the
// worker must wake on its own anyway for the sweep, the hand-off ring, FlowQuery answers and the
// sync rings, which wait for at most one sleep (sleep_max_us).
//
// Thread ownership: one IdleBackoff per worker, on its stack; nothing shared.
#pragma once

#include <algorithm>
#include <cstdint>

namespace l4lb::dataplane {

// [eal] idle_backoff, idle_polls_before_sleep, idle_sleep_max_us (config_schema.cc checks the
// ranges below). Fixed for the process's life: WorkerArgs carries it to the worker.
struct IdleBackoffConfig {
  bool enabled = false;
  uint32_t polls_before_sleep = 256;
  uint32_t sleep_max_us = 1000;
  // Test-only (tests/unit/dataplane/idle_backoff_test.cc, its negative control): sleep without
  // going RCU-offline, as a naive back-off would, so that publish waits for the sleep.
  bool test_sleep_online = false;
};

inline constexpr uint32_t kIdleSleepMinUs = 1;
// Upper bounds of the config keys: the explain command waits 100 ms for a worker's FlowQuery
// answer (api::kFlowQueryWaitMs), and a sleep must stay well inside that.
inline constexpr uint32_t kIdleSleepMaxUsLimit = 10'000;
inline constexpr uint32_t kIdlePollsLimit = 1u << 24;

// The back-off schedule, separate from the sleeping so that it can be tested without a clock.
class IdleBackoff {
 public:
  explicit IdleBackoff(const IdleBackoffConfig& c)
      : polls_(std::max(c.polls_before_sleep, 1u)), max_us_(std::max(c.sleep_max_us, kIdleSleepMinUs)) {}

  // A loop that received something: busy-poll again.
  void busy() {
    empty_ = 0;
    next_us_ = kIdleSleepMinUs;
  }

  // A loop that received nothing: how long to sleep now, in microseconds (0: poll again at once).
  uint32_t idle() {
    if (empty_ < polls_) {
      if (++empty_ < polls_) return 0;
    }
    const uint32_t us = next_us_;
    next_us_ = std::min(next_us_ * 2, max_us_);
    return us;
  }

 private:
  uint32_t polls_;
  uint32_t max_us_;
  uint32_t empty_ = 0;
  uint32_t next_us_ = kIdleSleepMinUs;
};

}  // namespace l4lb::dataplane
