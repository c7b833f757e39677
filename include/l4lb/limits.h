// Limits and defaults both sides rely on: the snapshot builder and the config loader enforce or
// fill them, the workers size their state by them. No DPDK here, so the config loader (and
// anything else without the data plane) can include it.
#pragma once

#include <cstdint>

namespace l4lb {

inline constexpr uint32_t kMaxBackendId = (1u << 24) - 1;  // flow entries keep 24 bits
inline constexpr uint16_t kMaxPorts = 8;
// The most VIPs one snapshot holds: the snapshot builder refuses more, and each worker keeps one
// round-robin cursor per VIP index (dataplane/worker.h).
inline constexpr uint32_t kMaxVips = 4096;

// Idle timeouts per flow state (Snapshot::timeouts); these defaults are also the config file's
// ([flow_table], config.h).
struct FlowTimeouts {
  uint32_t tcp_syn_ms = 10'000;
  uint32_t tcp_established_ms = 300'000;
  uint32_t tcp_fin_ms = 10'000;
  uint32_t udp_ms = 30'000;
  // A UDP flow seen for one packet only (embryonic, flow.h FlowState::UdpNew).
  uint32_t udp_new_ms = 10'000;
};
inline constexpr FlowTimeouts kDefaultFlowTimeouts{};

// Flood admission in the flow tables (dataplane/decide.h): embryonic entries (SYN only, first UDP
// packet) may hold at most embryonic_ppm / 10^6 of a table's capacity. `enabled` false is the
// test-only switch (L4LB_TEST_NO_ADMISSION): the original rules, no quota, RST closes.
inline constexpr uint32_t kDefaultEmbryonicPpm = 250'000;  // [flow_table] embryonic_share = 0.25
struct FlowAdmission {
  bool enabled = true;
  uint32_t embryonic_ppm = kDefaultEmbryonicPpm;
  // The most embryonic entries a table of `capacity` may hold (at least 1).
  uint32_t embryonicLimit(uint32_t capacity) const {
    const uint64_t l = uint64_t(capacity) * embryonic_ppm / 1'000'000;
    return l == 0 ? 1 : uint32_t(l);
  }
};
// [icmp]: ICMP/ICMPv6 errors about VIP flows each worker forwards to backends (a token bucket
// on the worker's clock: `per_second` tokens a second, at most `burst` saved up). Per worker, so
// the balancer's total is this times the number of workers.
struct IcmpErrorLimit {
  uint32_t per_second = 1000;
  uint32_t burst = 200;
};
inline constexpr IcmpErrorLimit kDefaultIcmpErrorLimit{};
inline constexpr uint32_t kMaxIcmpErrorsPerSecond = 10'000'000;  // config bounds (also burst's)

// Full NAT: distinct source addresses over all VIPs (a worker's session index names one in 8 bits).
inline constexpr uint32_t kMaxSnatAddrs = 255;

}  // namespace l4lb
