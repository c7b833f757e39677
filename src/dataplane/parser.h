// Packet parser: Ethernet (+ one 802.1Q tag), IPv4 (with options), IPv6 (hop-by-hop, routing and
// destination-options headers skipped), TCP, UDP, ICMP/ICMPv6. Every length is checked before a
// field behind it is read. Pure function over bytes, so unit tests and fuzzers need no EAL.
#pragma once

#include <cstdint>

#include "l4lb/addr.h"
#include "l4lb/counters.h"

namespace l4lb::dataplane {

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmp6 = 58;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

// The parser's verdict on a frame.
enum class Parse : uint8_t {
  Ok,        // a whole IP packet: PacketInfo is filled
  Fragment,  // an IP fragment, for the fragment path: PacketInfo is filled, with frag / frag_id
  Drop,      // not a packet the balancer parses further: ParseResult::reason says why
};

// A verdict and, with Parse::Drop, the drop reason (the counter it is dropped under, unless the
// exception path takes the frame). With Parse::Fragment the reason is Drop::Fragment, the one a
// fragment nobody handles is dropped under. Built implicitly from either (`return Parse::Ok;`,
// `return Drop::TooShort;`), so the parser's rules read as before. Two bytes: returned in a
// register.
struct ParseResult {
  Parse verdict = Parse::Ok;
  Drop reason = Drop::Ok;  // meaningful with Parse::Drop (and Parse::Fragment, see above)
  constexpr ParseResult() = default;
  constexpr ParseResult(Parse p) : verdict(p), reason(p == Parse::Fragment ? Drop::Fragment : Drop::Ok) {}  // NOLINT
  constexpr ParseResult(Drop why) : verdict(Parse::Drop), reason(why) {}  // NOLINT
};

// What the parser found about IP fragmentation (valid only with Parse::Fragment; see parsePacket).
enum class FragKind : uint8_t {
  None = 0,
  First = 1,  // offset 0, more fragments follow: the L4 header (ports, TCP flags) was parsed
  Later = 2,  // offset != 0: no L4 header; ports and TCP flags are 0
};

struct PacketInfo {
  uint16_t l3_off = 0;    // 14, or 18 with one 802.1Q tag
  uint16_t l4_off = 0;    // l3_off + IPv4 IHL*4, or l3_off + 40 + IPv6 extension headers
  uint16_t l3_len = 0;    // IPv4 total length, or 40 + IPv6 payload length: the IP packet's size
  Family family = Family::V4;
  uint8_t proto = 0;      // final L4 protocol (kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmp6)
  uint8_t ttl = 0;        // IPv4 TTL or IPv6 hop limit
  uint8_t tcp_flags = 0;  // TCP flags byte (offset 13); 0 for other protocols
  bool df = false;        // IPv4 DF bit; true for IPv6 (routers never fragment IPv6)
  bool has_vlan = false;
  uint16_t sport_be = 0;  // L4 ports in network byte order; 0 for ICMP
  uint16_t dport_be = 0;
  // Offsets of the source / destination addresses in the frame (4 or 16 bytes each).
  uint16_t saddr_off = 0;
  uint16_t daddr_off = 0;
  // Fragments (written only when the parser returns Parse::Fragment, so the unfragmented fast
  // path stores nothing more): the kind, the identification (IPv4 ID, zero-extended, or the
  // IPv6 fragment header's 32-bit identification) and the protocol the fragments' key uses
  // (IPv4: the protocol field; IPv6: the fragment header's next header, the same in every
  // fragment of a datagram, where `proto` of a first fragment is the final L4 protocol).
  FragKind frag = FragKind::None;
  uint8_t frag_proto = 0;
  uint32_t frag_id = 0;
};

// Returns Parse::Ok and fills `out`, or Parse::Drop with the reason the frame is not a valid IP
// packet we handle (the drop verdicts named below are that reason). Rules, in order:
//  - < 14 bytes: TooShort. Ethertype 0x8100: need 18 bytes (TooShort), inner ethertype read at
//    16; a second tag (0x8100 / 0x88a8) or any non-IP ethertype: NotIp.
//  - IPv4: < 20 bytes after L2: TooShort. Version != 4 or IHL < 5: BadIpHeader. Header beyond the
//    frame: TooShort. Header checksum wrong: BadIpHeader. Total length < IHL*4 or beyond the
//    frame: BadLength. MF set or fragment offset != 0: Parse::Fragment (see "Fragments" below).
//  - IPv6: < 40 bytes after L2: TooShort. Version != 6: BadIpHeader. 40 + payload length beyond
//    the frame: BadLength. Extension headers 0 (only first), 43, 60 are skipped, each must fit
//    in the IP payload (BadLength); 44 (8 bytes, BadLength if it does not fit): Fragment, except
//    an atomic fragment (offset 0, M clear; RFC 6946: processed as a whole packet), which is
//    skipped like the others; a second fragment header, or hop-by-hop not first: BadIpHeader;
//    a 9th extension header (more than kMaxIpv6ExtHeaders = 8, the fragment header counts):
//    Ipv6ExtLimit.
//  - L4 must fit inside the IP length (not just the frame): TCP >= 20 bytes with 5 <= data
//    offset and data offset*4 within it, UDP >= 8 bytes with its length field == the remaining IP
//    payload (so zero-length UDP is BadLength), ICMP/ICMPv6 >= 8 bytes; else BadLength.
//  - Other L4 protocols: UnsupportedProto. ICMP counts only inside IPv4 and ICMPv6 only inside
//    IPv6; the crossed combinations are UnsupportedProto too.
// Fragments: `out` is filled as for Ok, plus frag / frag_id / frag_proto. A first fragment
// (offset 0, more to come) is parsed through its L4 header with the rules above, except that
// UDP's length field covers the whole datagram (only >= 8 is required); an L4 header that does
// not fit in the first fragment gives that L4 verdict (BadLength), not Fragment. A later
// fragment (offset != 0) stops at the IP layer: l4_off is where its payload starts, proto is the
// IPv4 protocol or the fragment header's next header, ports and TCP flags are 0.
// `out` is written only on Ok and Fragment; any other verdict leaves it unchanged.
// Ethernet padding after the IP packet is allowed (l3_len tells the real size). Only the first
// 65535 bytes of a longer frame are considered (an mbuf segment never holds more), so every
// offset and l3_len fit in PacketInfo's 16-bit fields.
ParseResult parsePacket(const uint8_t* frame, uint32_t frame_len, PacketInfo& out);

// The same, for a frame received with these mbuf offload flags: when the NIC reports the IPv4
// header checksum good ((ol_flags & kRxIpCksumMask) == kRxIpCksumGood, DPDK's
// RTE_MBUF_F_RX_IP_CKSUM_GOOD), the software check is skipped; every other rule applies as above.
// Any other value (unknown, bad, or "none": not verified in the packet) keeps the software check.
inline constexpr uint64_t kRxIpCksumGood = uint64_t(1) << 7;               // RTE_MBUF_F_RX_IP_CKSUM_GOOD
inline constexpr uint64_t kRxIpCksumMask = uint64_t(1) << 4 | uint64_t(1) << 7;  // RTE_MBUF_F_RX_IP_CKSUM_MASK
ParseResult parsePacket(const uint8_t* frame, uint32_t frame_len, PacketInfo& out, uint64_t ol_flags);

}  // namespace l4lb::dataplane
