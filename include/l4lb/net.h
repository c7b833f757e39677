// Wire-format basics shared by the data plane (and, later, the control plane's precomputed
// headers): header sizes, ethertypes, unaligned loads and stores, and the Internet checksum.
//
// Contract: everything here is inline, branch-free or nearly so, and touches only the bytes it
// is given. Frames are not aligned (the IP header sits at offset 14 or 18), so every multi-byte
// field goes through byte loads or memcpy, never a cast. "raw" values are as stored on the wire
// (network order, what a checksum sums); "be" loads and stores convert to and from host order.
// No DPDK header: the data plane's parser and the tests can use it alike.
#pragma once

#include <cstdint>
#include <cstring>

namespace l4lb::net {

// ---------------------------------------------------------------------------------------------
// Header sizes (bytes)

inline constexpr uint16_t kEthHdrLen = 14;       // IEEE 802.3: destination, source, ethertype
inline constexpr uint16_t kVlanTagLen = 4;       // IEEE 802.1Q: TPID already counted, TCI + ethertype
inline constexpr uint16_t kVlanEthHdrLen = kEthHdrLen + kVlanTagLen;
inline constexpr uint16_t kIpv4MinHdrLen = 20;   // RFC 791: IHL 5, no options
inline constexpr uint16_t kIpv4HdrLen = kIpv4MinHdrLen;  // the headers we write carry no options
inline constexpr uint16_t kIpv6HdrLen = 40;      // RFC 8200 §3
inline constexpr uint16_t kIpv6ExtMinLen = 8;    // RFC 8200 §4: every extension header is 8n bytes, n >= 1
inline constexpr uint16_t kTcpMinHdrLen = 20;    // RFC 9293: data offset 5
inline constexpr uint16_t kUdpHdrLen = 8;        // RFC 768
inline constexpr uint16_t kIcmpHdrLen = 8;       // type, code, checksum, 4 bytes of rest-of-header
// GUE variant 1 (draft-ietf-intarea-gue §4, as Katran): direct IP encapsulation in UDP, no GUE
// header, so the overhead over the outer IP header is the UDP header alone.
inline constexpr uint16_t kGueHdrLen = kUdpHdrLen;

// What IP-in-IP (RFC 2003 / RFC 2473) or GUE adds to the inner IP packet, L2 excluded.
constexpr uint16_t encapOverhead(bool outer_v4, bool gue) {
  return uint16_t((outer_v4 ? kIpv4HdrLen : kIpv6HdrLen) + (gue ? kGueHdrLen : 0));
}

// Ethertypes (host order)
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

// ---------------------------------------------------------------------------------------------
// Unaligned loads and stores

inline uint16_t load16be(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

inline uint32_t load32be(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline void store16be(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// As stored (network order in a host integer): for ports compared as stored, and checksums.
inline uint16_t load16raw(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store16raw(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof(v)); }

// ---------------------------------------------------------------------------------------------
// Internet checksum (RFC 1071). Sums are of 16-bit words as stored; the ones'-complement sum is
// byte-order independent (RFC 1071 §2(B)), so a checksum computed over stored words is stored
// as is. Wider accumulators defer the end-around carries to one fold.

// Folds a 32-bit accumulator to 16 bits with the end-around carries. Two steps suffice for any
// value: the first leaves at most 0x1fffe, the second at most 0xffff.
inline uint16_t csumFold32(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

namespace detail {
// All four steps in 64 bits: the first two leave at most 0xffffffff, the last two at most 0xffff.
inline uint64_t csumFoldWide(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}
}  // namespace detail

// The same for a 64-bit accumulator (32-bit words summed whole: 2^16 = 1 mod 0xffff, so a
// 32-bit word adds as its two halves).
inline uint16_t csumFold64(uint64_t sum) { return static_cast<uint16_t>(detail::csumFoldWide(sum)); }

// True when a sum over data that includes its checksum is correct: 0xffff (negative zero).
// Compared in 64 bits: with the narrowed csumFold64() GCC emits different code for the parser's
// header check, and that check is on every packet.
inline bool csumSumOk(uint64_t sum) { return detail::csumFoldWide(sum) == 0xffff; }

// Adds `len` bytes (a multiple of 4) to `sum` as 32-bit words as stored.
inline uint64_t csumAddWords32(const uint8_t* p, uint32_t len, uint64_t sum = 0) {
  for (uint32_t i = 0; i < len; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, sizeof(w));
    sum += w;
  }
  return sum;
}

// RFC 1071 §2: a header that includes a correct checksum sums to 0xffff (in either byte order).
// `len` is IHL*4, so always a multiple of 4.
inline bool ipv4HeaderChecksumOk(const uint8_t* p, uint32_t len) {
  uint64_t sum = 0;
  if (__builtin_expect(len == kIpv4MinHdrLen, 1)) {
    // No options (nearly every packet): five words, straight-line.
    uint64_t a, b;
    uint32_t c;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    std::memcpy(&c, p + 16, 4);
    sum = (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32) + c;
  } else {
    sum = csumAddWords32(p, len);
  }
  return csumSumOk(sum);
}

// ---------------------------------------------------------------------------------------------
// Incremental update (RFC 1624). `sum` is the checksum field as stored; old/new as stored.

// RFC 1624 eqn. 3 with a precomputed difference: HC' = ~(~HC + delta), `delta` folded to 16
// bits (e.g. BackendRewrite::nat_*_delta). One fold suffices: the sum is at most 0x1fffe. Nonzero
// inside unless both terms are 0, so the result is the one a word-by-word update gives.
inline uint16_t csumApplyDelta(uint16_t sum, uint16_t delta) {
  uint32_t s = (uint32_t(sum) ^ 0xffffu) + delta;  // ~sum in 16 bits, without a zero-extension
  s = (s & 0xffff) + (s >> 16);
  return uint16_t(~s);
}

// RFC 1624 eqn. 3 for one replaced 16-bit word.
inline void csumReplace16(uint16_t* sum, uint16_t old_raw, uint16_t new_raw) {
  uint32_t s = uint16_t(~*sum);
  s += uint16_t(~old_raw);
  s += new_raw;
  *sum = uint16_t(~csumFold32(s));
}

// RFC 1624 eqn. 3's terms for replacing `len` (even) bytes `old_bytes` by `new_bytes`: the sum
// of ~m + m' over 32-bit words (a 16-bit tail as one word), added to `s`; fold it once. The
// snapshot builder precomputes NAT's checksum differences with it.
inline uint64_t csumDiffBytes(const uint8_t* old_bytes, const uint8_t* new_bytes, unsigned len, uint64_t s = 0) {
  unsigned i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t o, n;
    std::memcpy(&o, old_bytes + i, 4);
    std::memcpy(&n, new_bytes + i, 4);
    s += uint32_t(~o);
    s += n;
  }
  if (i + 2 <= len) {
    uint16_t o, n;
    std::memcpy(&o, old_bytes + i, 2);
    std::memcpy(&n, new_bytes + i, 2);
    s += uint16_t(~o);
    s += n;
  }
  return s;
}

// The same over `len` (even) bytes, e.g. an address: eqn. 3 summed over 32-bit words and folded
// once. The result is the one csumReplace16 word by word gives (both keep the sum in 1..0xffff).
inline void csumReplaceBytes(uint16_t* sum, const uint8_t* old_bytes, const uint8_t* new_bytes, unsigned len) {
  *sum = uint16_t(~csumFold64(csumDiffBytes(old_bytes, new_bytes, len, uint16_t(~*sum))));
}

}  // namespace l4lb::net
