// Bytes inserted at the start of a TCP segment's payload, between the TCP header and the data:
// how a full-NAT balancer puts a PROXY v2 header (proxy_v2.h) in front of the client's first
// byte. The segment may carry no data (a bare ACK), and then carries just the inserted bytes.
//
// Contract:
//  - Single-segment, direct, unshared mbufs only; the frame moves `len` bytes to the front (into
//    the headroom: rte_pktmbuf_prepend, then the Ethernet + IP + TCP headers memmoved), so nothing
//    is allocated and the payload is not copied.
//  - Refused (false), with the mbuf untouched: a chained, indirect or shared mbuf, less headroom
//    than `len`, headers or lengths that do not fit the frame (l3_off < l4_off, the IP header
//    before l4_off, the TCP header with its options inside the IP packet, the IP packet inside the
//    frame), or an IP length that would pass 65535.
//  - After it: IPv4 total length and header checksum, or IPv6 payload length, grown by `len`;
//    Ethernet padding after the IP packet trimmed; the TCP checksum computed over the pseudo-header
//    (RFC 9293 §3.1, RFC 8200 §8.1; with IPv6 extension headers the upper-layer length excludes
//    them, and the destination is the IPv6 header's: a routing header's final destination is not
//    looked for) and the whole segment. The sequence number is left as it was: the caller moves it.
//  - Per packet: no allocation, lock, log or syscall; the checksum costs one pass over the segment.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "l4lb/addr.h"

namespace l4lb::dataplane::fullnat {

// Inserts `len` bytes from `bytes` after the TCP header of the packet at `l3_off` (IP header)
// and `l4_off` (TCP header) in `m`, of `family`. True when done; false (untouched) when refused.
// len == 0 does nothing and returns true.
bool insertSegmentPrefix(rte_mbuf* m, uint32_t l3_off, uint32_t l4_off, Family family, const uint8_t* bytes,
                         uint16_t len);

}  // namespace l4lb::dataplane::fullnat
