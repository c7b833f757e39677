// Outer-header fragmentation of a tunnelled IPv4 packet (RFC 2003 §5.1, RFC 791 §2.3): an IPIP
// or GUE packet whose inner IPv4 packet has DF clear, longer than the egress MTU once
// encapsulated, leaves as several fragments of the outer IPv4 header instead of being dropped.
// DPDK's librte_ip_frag does the splitting: each fragment is a direct mbuf holding the outer
// Ethernet and IPv4 headers chained to an indirect mbuf pointing into the original's data, so
// no payload is copied and nothing is allocated but mempool gets. Out of line: the rare path.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "l4lb/counters.h"

namespace l4lb::dataplane {

// At most this many fragments per packet (a 9000-byte jumbo frame into 576-byte fragments
// needs 17); a packet that needs more is a counted too_big drop.
inline constexpr uint16_t kMaxOuterFrags = 32;

// The pools fragments come from, created at startup (control/ports.cc): `direct` holds the
// copied headers (small data room), `indirect` has no data room (it references the original).
struct OuterFragPools {
  rte_mempool* direct = nullptr;
  rte_mempool* indirect = nullptr;
};

// Fragments an IPv4 packet of `ip_len` bytes (header included) splits into for `mtu`; 0 when
// no fragment can carry payload (mtu below 28).
inline uint32_t outerFragCount(uint32_t ip_len, uint16_t mtu) {
  constexpr uint32_t kHdr = 20;
  if (mtu < kHdr + 8 || ip_len <= kHdr) return ip_len <= mtu ? 1u : 0u;
  const uint32_t per = (uint32_t(mtu) - kHdr) & ~7u;  // payload per fragment, a multiple of 8
  return (ip_len - kHdr + per - 1) / per;
}

struct OuterFragResult {
  Drop drop = Drop::Ok;
  uint16_t n = 0;  // fragments in `out` when drop == Ok
};

// Splits `m` (a frame [Ethernet][outer IPv4 with DF clear, no options][...], as encapsulate()
// leaves it, padding trimmed) into fragments of at most `mtu` bytes of IP each, placed in
// out[0..n): each starts with the same Ethernet header and a copy of the outer IPv4 header
// with the same ID, its own offset and MF, and its checksum. On success `m` is freed (the
// fragments hold references to its data). On failure `m` is left untouched for the caller to
// drop with the returned reason: frag_out_nomem (a pool is empty or missing) or too_big (more
// than `max_out` fragments, or an MTU below IPv4's minimum of 68).
OuterFragResult fragmentOuter(rte_mbuf* m, uint16_t mtu, const OuterFragPools& pools, rte_mbuf** out,
                              uint16_t max_out);

}  // namespace l4lb::dataplane
