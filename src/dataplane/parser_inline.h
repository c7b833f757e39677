// The packet parser's body (rules in parser.h), inline so the worker's per-packet loop can
// inline it; parser.cc compiles the out-of-line parsePacket() from the same code. Hot path: no
// allocation, no exceptions, every field read through memcpy or byte loads (frames are not
// aligned: the IP header sits at offset 14 or 18).
#pragma once

#include <cstring>

#include <rte_branch_prediction.h>

#include "dataplane/parser.h"
#include "l4lb/net.h"

namespace l4lb::dataplane {
namespace parser_detail {

// Sizes, ethertypes, loads and the header checksum: include/l4lb/net.h. The sizes as 32-bit
// constants, the type the parser's length arithmetic is done in (with net.h's 16-bit ones the
// compiler picks different registers and branches in parseIpv6).
using net::ipv4HeaderChecksumOk;
using net::kEtherTypeIpv4;
using net::kEtherTypeIpv6;
using net::kEtherTypeVlan;
using net::load16be;
using net::load16raw;
constexpr uint32_t kEthHdrLen = net::kEthHdrLen;
constexpr uint32_t kVlanTagLen = net::kVlanTagLen;
constexpr uint32_t kIpv4MinHdrLen = net::kIpv4MinHdrLen;
constexpr uint32_t kIpv6HdrLen = net::kIpv6HdrLen;
constexpr uint32_t kIpv6ExtMinLen = net::kIpv6ExtMinLen;
constexpr uint32_t kTcpMinHdrLen = net::kTcpMinHdrLen;
constexpr uint32_t kUdpHdrLen = net::kUdpHdrLen;

constexpr uint16_t kIpv4FlagDf = 0x4000;
constexpr uint16_t kIpv4FragMask = 0x3fff;  // MF (0x2000) | fragment offset (0x1fff)
constexpr uint16_t kIpv4OffsetMask = 0x1fff;
constexpr uint32_t kIpv6FragHdrLen = 8;  // RFC 8200 §4.5

constexpr uint8_t kIpv6HopByHop = 0;
constexpr uint8_t kIpv6Routing = 43;
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kIpv6DestOpts = 60;
constexpr unsigned kMaxIpv6ExtHeaders = 8;

constexpr uint32_t kIcmpMinLen = net::kIcmpHdrLen;  // type, code, checksum, 4 bytes of rest-of-header (echo id/seq)

// An mbuf segment holds at most 65535 bytes (data_len is 16 bits); clamping to that keeps every
// offset and l3_len representable in PacketInfo's uint16_t fields.
constexpr uint32_t kMaxFrameLen = 0xffff;

// `l4` points at the transport header, `l4_len` is what is left of the IP packet (not of the
// frame: Ethernet padding must not be mistaken for transport bytes).
// `first_frag`: the packet is a first fragment, whose UDP length field covers the whole
// datagram (constant false on the unfragmented path, so the check folds away there).
inline ParseResult parseL4(const uint8_t* l4, uint32_t l4_len, uint8_t proto, uint8_t icmp_proto,
                    PacketInfo& info, bool first_frag = false) {
  if (likely(proto == kProtoTcp)) {
    if (unlikely(l4_len < kTcpMinHdrLen)) return Drop::BadLength;
    uint32_t doff = l4[12] >> 4;
    if (unlikely(doff < 5 || doff * 4 > l4_len)) return Drop::BadLength;
    info.sport_be = load16raw(l4);
    info.dport_be = load16raw(l4 + 2);
    info.tcp_flags = l4[13];
    return Parse::Ok;
  }
  if (proto == kProtoUdp) {
    if (unlikely(l4_len < kUdpHdrLen || (load16be(l4 + 4) != l4_len && !first_frag))) return Drop::BadLength;
    info.sport_be = load16raw(l4);
    info.dport_be = load16raw(l4 + 2);
    return Parse::Ok;
  }
  // ICMP only inside IPv4, ICMPv6 only inside IPv6: the other combination is not a protocol.
  if (proto == icmp_proto) {
    if (unlikely(l4_len < kIcmpMinLen)) return Drop::BadLength;
    return Parse::Ok;
  }
  return Drop::UnsupportedProto;
}

inline ParseResult parseIpv4(const uint8_t* frame, uint32_t frame_len, uint32_t l3_off, bool cksum_verified,
                      PacketInfo& info) {
  const uint8_t* ip = frame + l3_off;
  uint32_t avail = frame_len - l3_off;
  if (unlikely(avail < kIpv4MinHdrLen)) return Drop::TooShort;
  uint8_t version_ihl = ip[0];
  uint32_t hdr_len = (version_ihl & 0x0fu) * 4;
  if (unlikely((version_ihl >> 4) != 4 || hdr_len < kIpv4MinHdrLen)) return Drop::BadIpHeader;
  if (unlikely(hdr_len > avail)) return Drop::TooShort;
  if (unlikely(!cksum_verified && !ipv4HeaderChecksumOk(ip, hdr_len))) return Drop::BadIpHeader;
  uint32_t total_len = load16be(ip + 2);
  if (unlikely(total_len < hdr_len || total_len > avail)) return Drop::BadLength;
  uint16_t frag = load16be(ip + 6);

  info.l3_off = static_cast<uint16_t>(l3_off);
  info.l4_off = static_cast<uint16_t>(l3_off + hdr_len);
  info.l3_len = static_cast<uint16_t>(total_len);
  info.family = Family::V4;
  info.proto = ip[9];
  info.ttl = ip[8];
  info.df = (frag & kIpv4FlagDf) != 0;
  info.saddr_off = static_cast<uint16_t>(l3_off + 12);
  info.daddr_off = static_cast<uint16_t>(l3_off + 16);
  if (unlikely(frag & kIpv4FragMask)) {
    info.frag_id = load16be(ip + 4);
    info.frag_proto = info.proto;
    if (frag & kIpv4OffsetMask) {
      info.frag = FragKind::Later;
      return Parse::Fragment;
    }
    info.frag = FragKind::First;
    const ParseResult d = parseL4(ip + hdr_len, total_len - hdr_len, info.proto, kProtoIcmp, info, true);
    return d.verdict == Parse::Ok ? ParseResult(Parse::Fragment) : d;
  }
  return parseL4(ip + hdr_len, total_len - hdr_len, info.proto, kProtoIcmp, info);
}

// An IPv6 packet's facts once its extension headers are walked: `off` is where the upper
// layer (`next`) starts, relative to the IPv6 header at `ip` (l3_off in the frame).
[[gnu::always_inline]] inline void fillIpv6(PacketInfo& info, const uint8_t* ip, uint32_t l3_off, uint32_t off,
                                            uint32_t ip_len, uint8_t next) {
  info.l3_off = static_cast<uint16_t>(l3_off);
  info.l4_off = static_cast<uint16_t>(l3_off + off);
  info.l3_len = static_cast<uint16_t>(ip_len);
  info.family = Family::V6;
  info.proto = next;
  info.ttl = ip[7];
  info.df = true;
  info.saddr_off = static_cast<uint16_t>(l3_off + 8);
  info.daddr_off = static_cast<uint16_t>(l3_off + 24);
}

inline ParseResult parseIpv6(const uint8_t* frame, uint32_t frame_len, uint32_t l3_off,
                      PacketInfo& info) {
  const uint8_t* ip = frame + l3_off;
  uint32_t avail = frame_len - l3_off;
  if (unlikely(avail < kIpv6HdrLen)) return Drop::TooShort;
  if (unlikely((ip[0] >> 4) != 6)) return Drop::BadIpHeader;
  uint32_t ip_len = kIpv6HdrLen + load16be(ip + 4);
  if (unlikely(ip_len > avail)) return Drop::BadLength;

  uint8_t next = ip[6];
  uint32_t off = kIpv6HdrLen;  // relative to the IPv6 header
  // Common case: no extension header at all, so the loop body is skipped.
  for (unsigned n = 0; unlikely(next != kProtoTcp && next != kProtoUdp); n++) {
    if (next == kIpv6Fragment) {
      if (unlikely(n == kMaxIpv6ExtHeaders)) return Drop::Ipv6ExtLimit;
      if (unlikely(info.frag != FragKind::None)) return Drop::BadIpHeader;  // a second fragment header
      if (unlikely(ip_len - off < kIpv6FragHdrLen)) return Drop::BadLength;
      const uint16_t off_m = load16be(ip + off + 2);
      next = ip[off];
      off += kIpv6FragHdrLen;
      if ((off_m & 0xfff9) == 0) continue;  // atomic fragment (RFC 6946): a whole packet
      info.frag_id = net::load32be(ip + off - 4);
      info.frag_proto = next;
      if (off_m & 0xfff8) {  // offset != 0: no L4 header here
        info.frag = FragKind::Later;
        fillIpv6(info, ip, l3_off, off, ip_len, next);
        return Parse::Fragment;
      }
      info.frag = FragKind::First;
      continue;
    }
    if (next != kIpv6HopByHop && next != kIpv6Routing && next != kIpv6DestOpts) break;
    // RFC 8200 §4.3: hop-by-hop options must immediately follow the IPv6 header.
    if (unlikely(next == kIpv6HopByHop && n != 0)) return Drop::BadIpHeader;
    // Fail closed past the limit: the ports are not read from bytes that may not be them.
    if (unlikely(n == kMaxIpv6ExtHeaders)) return Drop::Ipv6ExtLimit;
    if (unlikely(ip_len - off < kIpv6ExtMinLen)) return Drop::BadLength;
    uint32_t ext_len = (uint32_t{ip[off + 1]} + 1) * 8;
    if (unlikely(ext_len > ip_len - off)) return Drop::BadLength;
    next = ip[off];
    off += ext_len;
  }

  fillIpv6(info, ip, l3_off, off, ip_len, next);
  if (unlikely(info.frag == FragKind::First)) {
    const ParseResult d = parseL4(ip + off, ip_len - off, next, kProtoIcmp6, info, true);
    return d.verdict == Parse::Ok ? ParseResult(Parse::Fragment) : d;
  }
  return parseL4(ip + off, ip_len - off, next, kProtoIcmp6, info);
}

// RFC 1071 for a 20-byte IPv4 header (no options), the fast path's: the ones'-complement sum of
// its 16-bit words is 0xffff exactly when their plain sum is a nonzero multiple of 0xffff
// (2^16 = 1 mod 0xffff, so folding carries keeps the residue, and only an all-zero header folds
// to 0). The plain sum of its five 32-bit words has the same residue and is zero only for an
// all-zero header, so one multiply (x % 0xffff == 0 by the modular inverse) replaces the four
// folds of net::ipv4HeaderChecksumOk, which it agrees with on every header. Byte order does not
// matter: a little-endian load multiplies the residue by 256, which is invertible mod 0xffff.
inline bool ipv4Header20ChecksumOk(const uint8_t* ip) {
  uint64_t a, b;
  uint32_t c;
  std::memcpy(&a, ip, 8);
  std::memcpy(&b, ip + 8, 8);
  std::memcpy(&c, ip + 16, 4);
  const uint64_t sum = (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32) + c;
  return sum % 0xffff == 0 && sum != 0;
}

// Untagged IPv4 without options carrying TCP or UDP, the frame long enough for both minimal
// headers: nearly every packet a balancer sees. The checks before the checksum (frame length,
// ethertype, version, IHL, header within the frame) hold by the entry condition, the rest are
// parseIpv4's and parseL4's in the same order with the same verdicts; `out` is written only on
// Ok. Returns false (nothing decided) for anything else.
inline bool parseIpv4Fast(const uint8_t* frame, uint32_t frame_len, bool cksum_verified, PacketInfo& out,
                          ParseResult& verdict) {
  const uint8_t* ip = frame + kEthHdrLen;
  if (frame_len < kEthHdrLen + kIpv4MinHdrLen + kUdpHdrLen || load16be(frame + 12) != kEtherTypeIpv4 ||
      ip[0] != 0x45 || (ip[9] != kProtoTcp && ip[9] != kProtoUdp))
    return false;
  const uint32_t avail = frame_len - kEthHdrLen;
  if (unlikely(!cksum_verified && !ipv4Header20ChecksumOk(ip))) {
    verdict = Drop::BadIpHeader;
    return true;
  }
  const uint32_t total_len = load16be(ip + 2);
  const uint16_t frag = load16be(ip + 6);
  const uint8_t proto = ip[9];
  const uint8_t* l4 = ip + kIpv4MinHdrLen;
  const uint32_t l4_len = total_len - kIpv4MinHdrLen;  // checked >= 0 below before use
  uint8_t tcp_flags = 0;
  if (unlikely(total_len < kIpv4MinHdrLen || total_len > avail)) {
    verdict = Drop::BadLength;
  } else if (unlikely(frag & kIpv4FragMask)) {
    return false;  // parseIpv4 fills in what a fragment carries
  } else if (likely(proto == kProtoTcp)) {
    // l4[12], l4[13] only once the 20 bytes are known to be in the IP packet (so the frame).
    if (unlikely(l4_len < kTcpMinHdrLen)) {
      verdict = Drop::BadLength;
    } else {
      const uint32_t doff = l4[12] >> 4;
      verdict = unlikely(doff < 5 || doff * 4 > l4_len) ? ParseResult(Drop::BadLength) : ParseResult(Parse::Ok);
      tcp_flags = l4[13];
    }
  } else {
    verdict = unlikely(l4_len < kUdpHdrLen || load16be(l4 + 4) != l4_len) ? ParseResult(Drop::BadLength)
                                                                                 : ParseResult(Parse::Ok);
  }
  if (likely(verdict.verdict == Parse::Ok)) {
    out.l3_off = kEthHdrLen;
    out.l4_off = kEthHdrLen + kIpv4MinHdrLen;
    out.l3_len = static_cast<uint16_t>(total_len);
    out.family = Family::V4;
    out.proto = proto;
    out.ttl = ip[8];
    out.tcp_flags = tcp_flags;
    out.df = (frag & kIpv4FlagDf) != 0;
    out.has_vlan = false;
    out.sport_be = load16raw(l4);
    out.dport_be = load16raw(l4 + 2);
    out.saddr_off = kEthHdrLen + 12;
    out.daddr_off = kEthHdrLen + 16;
  }
  return true;
}

}  // namespace parser_detail

namespace parser_detail {

// DPDK's contract (rte_mbuf_core.h): CKSUM_GOOD alone means the NIC checked the IPv4 header
// checksum in the packet; CKSUM_NONE (both bits) means it is not correct in the packet.
inline bool rxIpCksumVerified(uint64_t ol_flags) { return (ol_flags & kRxIpCksumMask) == kRxIpCksumGood; }

// What parseIpv4Fast leaves undecided (a VLAN tag, IPv4 options or fragments, IPv6, a short or
// odd frame): the general rules of parser.h. `frame_len` at most kMaxFrameLen.
inline ParseResult parseGeneral(const uint8_t* frame, uint32_t frame_len, bool cksum_verified, PacketInfo& out) {
  if (unlikely(frame_len < kEthHdrLen)) return Drop::TooShort;

  // Built in a local and copied out only on Ok, so `out` is untouched by a dropped frame.
  PacketInfo info;
  uint32_t l3_off = kEthHdrLen;
  uint16_t ether_type = load16be(frame + 12);
  if (unlikely(ether_type == kEtherTypeVlan)) {
    if (unlikely(frame_len < kEthHdrLen + kVlanTagLen)) return Drop::TooShort;
    // A second tag (0x8100 / 0x88a8) lands in the NotIp branch below like any other ethertype.
    ether_type = load16be(frame + 16);
    l3_off += kVlanTagLen;
    info.has_vlan = true;
  }

  ParseResult verdict;
  if (likely(ether_type == kEtherTypeIpv4)) {
    verdict = parseIpv4(frame, frame_len, l3_off, cksum_verified, info);
  } else if (ether_type == kEtherTypeIpv6) {
    verdict = parseIpv6(frame, frame_len, l3_off, info);
  } else {
    return Drop::NotIp;
  }
  if (likely(verdict.verdict != Parse::Drop)) out = info;
  return verdict;
}

}  // namespace parser_detail

// parsePacket() inline, for the worker's fast path (saves the call and lets the compiler keep
// PacketInfo in the caller's storage); same rules, see parser.h. `ol_flags`: the mbuf's, or 0.
// The worker calls its two halves itself (parseIpv4Fast, then parseGeneral for what that leaves),
// so that its common case (untagged IPv4 TCP/UDP) continues with the offsets as constants.
inline ParseResult parsePacketInline(const uint8_t* frame, uint32_t frame_len, PacketInfo& out, uint64_t ol_flags) {
  using namespace parser_detail;
  if (unlikely(frame_len > kMaxFrameLen)) frame_len = kMaxFrameLen;
  const bool cksum_verified = rxIpCksumVerified(ol_flags);
  ParseResult fast;
  if (likely(parseIpv4Fast(frame, frame_len, cksum_verified, out, fast))) return fast;
  return parseGeneral(frame, frame_len, cksum_verified, out);
}

}  // namespace l4lb::dataplane
