// The packet an ICMP error quotes (RFC 792, RFC 4443 §3): where its IP header ends and what
// follows, read by the parser's rules for IPv6 extension headers. It only locates; the slow path
// (slow_path.cc forwardIcmpError) decides what the error is about. Pure, so it needs no EAL.
// Also the ICMP checksum (RFC 1071 over the message, ICMPv6 with its pseudo-header).
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>

#include "dataplane/parser.h"
#include "dataplane/parser_inline.h"  // the IPv6 extension-header rules
#include "l4lb/counters.h"
#include "l4lb/net.h"

namespace l4lb::dataplane {

// Where the quoted packet's parts are, relative to the quote (the bytes after the ICMP header).
struct Quote {
  uint32_t hdr_len = 0;          // quoted IP header, IPv6 extension headers included
  uint8_t proto = 0;             // upper-layer protocol
  bool later_fragment = false;   // a non-first fragment: no ports behind hdr_len
  uint32_t frag_id = 0;          // its IP ID (IPv4) or fragment-header identification (IPv6),
                                 // host order; set only with later_fragment
};

// The quote's IP header and where its upper-layer header starts, or why the error is refused.
// IPv6 extension headers are walked by the parser's rules (parser_inline.h parseIpv6): hop-by-hop
// only first, at most kMaxIpv6ExtHeaders of them (Ipv6ExtLimit past that: fail closed, no port is
// read from bytes that may not be ports), each within the quote (a quote cut short inside them
// is BadIcmpQuote). A fragment header is walked too: a first fragment holds the ports, a later
// one stops the walk with later_fragment set.
inline Drop parseQuote(const uint8_t* quote, uint32_t qlen, Family f, Quote& q) {
  if (f == Family::V4) {
    if (qlen < net::kIpv4HdrLen || quote[0] >> 4 != 4 || (quote[0] & 0x0f) < 5) return Drop::BadIcmpQuote;
    q.hdr_len = (quote[0] & 0x0fu) * 4;
    q.proto = quote[9];
    if ((net::load16be(quote + 6) & 0x1fff) != 0) {
      q.later_fragment = true;
      q.frag_id = net::load16be(quote + 4);
    }
    return Drop::Ok;
  }
  using parser_detail::kIpv6DestOpts;
  using parser_detail::kIpv6Fragment;
  using parser_detail::kIpv6HopByHop;
  using parser_detail::kIpv6Routing;
  if (qlen < net::kIpv6HdrLen || quote[0] >> 4 != 6) return Drop::BadIcmpQuote;
  uint8_t next = quote[6];
  uint32_t off = net::kIpv6HdrLen;
  for (unsigned n = 0; next != kProtoTcp && next != kProtoUdp; n++) {
    if (next != kIpv6HopByHop && next != kIpv6Routing && next != kIpv6DestOpts && next != kIpv6Fragment) break;
    if (next == kIpv6HopByHop && n != 0) return Drop::BadIcmpQuote;
    if (n == parser_detail::kMaxIpv6ExtHeaders) return Drop::Ipv6ExtLimit;
    if (qlen - off < parser_detail::kIpv6ExtMinLen) return Drop::BadIcmpQuote;
    // RFC 8200 §4.5: the fragment header is 8 bytes (its second byte is reserved, not a length).
    const uint32_t ext_len = next == kIpv6Fragment ? 8 : (uint32_t{quote[off + 1]} + 1) * 8;
    if (ext_len > qlen - off) return Drop::BadIcmpQuote;
    const uint8_t after = quote[off];
    if (next == kIpv6Fragment && (net::load16be(quote + off + 2) & 0xfff8) != 0) {
      q.later_fragment = true;
      q.frag_id = uint32_t{net::load16be(quote + off + 4)} << 16 | net::load16be(quote + off + 6);
      next = after;
      off += ext_len;
      break;
    }
    next = after;
    off += ext_len;
  }
  q.hdr_len = off;
  q.proto = next;
  return Drop::Ok;
}

// The ICMP checksum of the message at `icmp` (`len` bytes) whose IP header is at `l3` (the
// outer addresses for ICMPv6's pseudo-header). Shared by the slow path and full NAT's errors.
// RFC 1071 sums, unfolded, in the CPU's byte order (rte_raw_cksum's convention).
inline uint32_t ipv6PseudoHeaderSum(const uint8_t* src, const uint8_t* dst, uint32_t len, uint8_t next) {
  // RFC 8200 §8.1: source, destination, upper-layer length (32 bits), 3 zero bytes, next header.
  const uint32_t tail[2] = {rte_cpu_to_be_32(len), rte_cpu_to_be_32(next)};
  uint32_t sum = __rte_raw_cksum(src, 16, 0);
  sum = __rte_raw_cksum(dst, 16, sum);
  return __rte_raw_cksum(tail, sizeof(tail), sum);
}

inline uint32_t icmpSum(const uint8_t* l3, Family f, const uint8_t* icmp, uint32_t len) {
  uint32_t sum = __rte_raw_cksum(icmp, len, 0);
  // ICMPv6 covers a pseudo-header (RFC 4443 §2.3); ICMP for IPv4 does not (RFC 792).
  if (f == Family::V6) sum += ipv6PseudoHeaderSum(l3 + 8, l3 + 24, len, kProtoIcmp6);
  return sum;
}

inline bool icmpChecksumOk(const uint8_t* l3, Family f, const uint8_t* icmp, uint32_t len) {
  return __rte_raw_cksum_reduce(icmpSum(l3, f, icmp, len)) == 0xffff;
}

inline void setIcmpChecksum(const uint8_t* l3, Family f, uint8_t* icmp, uint32_t len) {
  icmp[2] = icmp[3] = 0;
  const uint16_t ck = uint16_t(~__rte_raw_cksum_reduce(icmpSum(l3, f, icmp, len)));
  std::memcpy(icmp + 2, &ck, 2);
}

}  // namespace l4lb::dataplane
