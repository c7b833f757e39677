// The baseline every forwarding figure is divided by: what dpdk-testpmd --forward-mode=5tswap
// does per packet (app/test-pmd/5tswap.c): parse Ethernet (VLAN tags skipped), IPv4 or IPv6,
// TCP or UDP, and swap source and destination MAC, IP address and port. No lookup, no state, no
// checksum update (a swap leaves every checksum valid). It is the floor of "touch the headers and
// send it back": the balancer's cost above it is lookups, scheduling and rewriting.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

namespace l4lb::perf {

// Swaps the 5-tuple of `n` packets in place; all of them are "sent" (copied to `out`), as
// testpmd sends every packet, parsable or not.
void swap5Tuple(rte_mbuf** pkts, uint16_t n, rte_mbuf** out);

}  // namespace l4lb::perf
