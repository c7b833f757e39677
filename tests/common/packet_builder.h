// Synthetic frames for unit tests, integration tests and benchmarks: Ethernet (+ 802.1Q tags),
// IPv4 (options, fragments), IPv6 (extension headers), TCP / UDP / ICMP / ICMPv6 (echo, neighbour
// solicitation or any message), ARP, with correct checksums unless a test asks for a broken one.
// Also an independent checksum checker, so a test can assert that a frame rewritten by the data
// plane still has correct checksums.
//
//   using namespace l4lb::test;
//   auto frame = PacketBuilder()
//                    .vlan(100)
//                    .ipv4(ipAddr("198.18.0.1"), ipAddr("198.18.1.1"))
//                    .df()
//                    .tcp(40000, 80, 0x02 /* SYN */)
//                    .payload(32)
//                    .build();
//   EXPECT_TRUE(ipv4HeaderChecksumOk(frame));
//   EXPECT_TRUE(l4ChecksumOk(frame));
//
// Header-only and independent of src/dataplane (it must not share the parser's bugs). Test code:
// it allocates and throws std::invalid_argument on misuse.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "l4lb/addr.h"

namespace l4lb::test {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoGre = 47;
inline constexpr uint8_t kIpProtoIcmp6 = 58;
inline constexpr uint8_t kIpProtoNoNext = 59;  // IPv6 "no next header"
inline constexpr uint8_t kIpProtoSctp = 132;

// IPv6 extension header types (RFC 8200 §4).
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6DestOpts = 60;

inline IpAddr ipAddr(std::string_view s) {
  auto a = IpAddr::parse(s);
  if (!a) throw std::invalid_argument("bad IP address: " + std::string(s));
  return *a;
}

inline MacAddr macAddr(std::string_view s) {
  auto m = MacAddr::parse(s);
  if (!m) throw std::invalid_argument("bad MAC address: " + std::string(s));
  return *m;
}

// The solicited-node multicast address of an IPv6 address (RFC 4291 §2.7.1): ff02::1:ff00:0/104
// with its low 24 bits.
inline IpAddr solicitedNode(const IpAddr& a) {
  if (a.family != Family::V6) throw std::invalid_argument("solicited-node needs IPv6");
  IpAddr m = ipAddr("ff02::1:ff00:0");
  std::copy(a.bytes.begin() + 13, a.bytes.end(), m.bytes.begin() + 13);
  return m;
}

// First n bytes of a frame (n may exceed the size: then the whole frame).
inline std::vector<uint8_t> truncate(std::span<const uint8_t> frame, size_t n) {
  n = std::min(n, frame.size());
  return {frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n)};
}

// ---------------------------------------------------------------------------------------------
// Checksums (RFC 1071), computed byte-wise so they do not depend on host byte order.

// Ones'-complement sum of big-endian 16-bit words, not folded; an odd last byte is padded with 0.
inline uint32_t onesSum(std::span<const uint8_t> data, uint32_t acc = 0) {
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) acc += uint32_t(data[i]) << 8 | data[i + 1];
  if (i < data.size()) acc += uint32_t(data[i]) << 8;
  return acc;
}

inline uint16_t foldSum(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// The value a checksum field must hold (host order) given the sum of everything it covers with the
// field itself counted as zero.
inline uint16_t checksumFromSum(uint32_t acc) { return static_cast<uint16_t>(~foldSum(acc)); }

inline uint16_t get16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}
inline void put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
inline void put32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; i++) b[off + size_t(i)] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// Where the headers of a frame are, found without the data plane's parser. Lengths are clamped
// to the frame, so a truncated frame is described rather than rejected.
struct FrameLayout {
  size_t l3_off = 0;
  Family family = Family::V4;
  size_t l3_end = 0;                 // l3_off + IP total length (clamped to the frame)
  std::optional<size_t> l4_off;      // absent for a non-first fragment or a truncated chain
  uint8_t proto = 0;                 // final protocol (after IPv6 extension headers)
};

// IP header at a known offset (e.g. the inner header of an IPIP / GUE packet).
inline std::optional<FrameLayout> locateAt(std::span<const uint8_t> frame, size_t l3_off) {
  if (frame.size() < l3_off + 20) return std::nullopt;
  FrameLayout l;
  l.l3_off = l3_off;
  const size_t avail = frame.size() - l3_off;
  uint8_t version = frame[l3_off] >> 4;
  if (version == 4) {
    size_t ihl = size_t(frame[l3_off] & 0x0f) * 4;
    if (ihl < 20) return std::nullopt;
    l.l3_end = l3_off + std::min<size_t>(get16(frame, l3_off + 2), avail);
    l.proto = frame[l3_off + 9];
    bool first_fragment = (get16(frame, l3_off + 6) & 0x1fff) == 0;
    if (first_fragment && l3_off + ihl <= l.l3_end) l.l4_off = l3_off + ihl;
    return l;
  }
  if (version != 6 || avail < 40) return std::nullopt;
  l.family = Family::V6;
  l.l3_end = l3_off + std::min<size_t>(40 + get16(frame, l3_off + 4), avail);
  uint8_t next = frame[l3_off + 6];
  size_t off = l3_off + 40;
  for (;;) {
    if (next != kIpv6HopByHop && next != kIpv6Routing && next != kIpv6DestOpts &&
        next != kIpv6Fragment) {
      break;
    }
    if (off + 8 > l.l3_end) return l;  // chain truncated: no L4
    size_t len = next == kIpv6Fragment ? 8 : (size_t(frame[off + 1]) + 1) * 8;
    if (next == kIpv6Fragment && (get16(frame, off + 2) & 0xfff8) != 0) {
      l.proto = frame[off];
      return l;  // not the first fragment: no L4 header here
    }
    next = frame[off];
    off += len;
  }
  l.proto = next;
  if (off <= l.l3_end) l.l4_off = off;
  return l;
}

// IP header after Ethernet and any number of 802.1Q / 802.1ad tags.
inline std::optional<FrameLayout> locate(std::span<const uint8_t> frame) {
  size_t off = 12;
  while (frame.size() >= off + 2) {
    uint16_t type = get16(frame, off);
    if (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
      off += 4;
      continue;
    }
    if (type != kEtherTypeIpv4 && type != kEtherTypeIpv6) return std::nullopt;
    return locateAt(frame, off + 2);
  }
  return std::nullopt;
}

// Correct IPv4 header checksum (host order) for the header at l3_off, ignoring the stored one.
// Covers IHL*4 bytes, at least 20 and at most what the frame holds.
inline uint16_t ipv4HeaderChecksum(std::span<const uint8_t> frame, size_t l3_off) {
  if (frame.size() < l3_off + 20) throw std::invalid_argument("no IPv4 header at l3_off");
  size_t ihl = std::max<size_t>(size_t(frame[l3_off] & 0x0f) * 4, 20);
  auto hdr = frame.subspan(l3_off, std::min(ihl, frame.size() - l3_off));
  return checksumFromSum(onesSum(hdr) - get16(hdr, 10));
}

// True when the stored IPv4 header checksum verifies (sum over IHL*4 bytes == 0xffff).
inline bool ipv4HeaderChecksumOk(std::span<const uint8_t> frame, size_t l3_off) {
  if (frame.size() < l3_off + 20 || frame[l3_off] >> 4 != 4) return false;
  size_t ihl = size_t(frame[l3_off] & 0x0f) * 4;
  if (ihl < 20 || l3_off + ihl > frame.size()) return false;
  return foldSum(onesSum(frame.subspan(l3_off, ihl))) == 0xffff;
}

inline bool ipv4HeaderChecksumOk(std::span<const uint8_t> frame) {
  auto l = locate(frame);
  return l && l->family == Family::V4 && ipv4HeaderChecksumOk(frame, l->l3_off);
}

// Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793 §3.1, RFC 768, RFC 8200 §8.1). With a routing
// header the real pseudo-header uses the final destination; the builder's frames use the IPv6 dst.
inline uint32_t pseudoHeaderSum(std::span<const uint8_t> frame, const FrameLayout& l,
                                size_t l4_len) {
  uint32_t acc = 0;
  if (l.family == Family::V4) {
    acc = onesSum(frame.subspan(l.l3_off + 12, 8));
    acc += l.proto;
    acc += static_cast<uint32_t>(l4_len);
  } else {
    acc = onesSum(frame.subspan(l.l3_off + 8, 32));
    acc += static_cast<uint32_t>(l4_len >> 16) + static_cast<uint32_t>(l4_len & 0xffff);
    acc += l.proto;
  }
  return acc;
}

// Offset of the checksum field inside the L4 header, or nullopt for protocols without one here.
inline std::optional<size_t> l4ChecksumField(uint8_t proto, Family family) {
  if (proto == kIpProtoTcp) return 16;
  if (proto == kIpProtoUdp) return 6;
  if ((proto == kIpProtoIcmp && family == Family::V4) ||
      (proto == kIpProtoIcmp6 && family == Family::V6)) {
    return 2;
  }
  return std::nullopt;
}

// Correct TCP / UDP / ICMP / ICMPv6 checksum (host order) of the IP packet described by `l`,
// ignoring the stored one; nullopt when there is no such L4 header or it does not fit.
inline std::optional<uint16_t> l4Checksum(std::span<const uint8_t> frame, const FrameLayout& l) {
  auto field = l4ChecksumField(l.proto, l.family);
  if (!l.l4_off || !field || *l.l4_off + *field + 2 > l.l3_end) return std::nullopt;
  auto seg = frame.subspan(*l.l4_off, l.l3_end - *l.l4_off);
  uint32_t acc = onesSum(seg) - get16(seg, *field);
  if (l.proto != kIpProtoIcmp) acc += pseudoHeaderSum(frame, l, seg.size());
  uint16_t c = checksumFromSum(acc);
  if (l.proto == kIpProtoUdp && c == 0) c = 0xffff;  // RFC 768: 0 means "no checksum"
  return c;
}

// True when the stored L4 checksum verifies. Strict: a UDP checksum of 0 ("none") is a failure,
// since the builder never emits one. Works for either representation of zero (0x0000 / 0xffff),
// which RFC 1624 incremental updates may legitimately produce.
inline bool l4ChecksumOk(std::span<const uint8_t> frame, const FrameLayout& l) {
  auto field = l4ChecksumField(l.proto, l.family);
  if (!l.l4_off || !field || *l.l4_off + *field + 2 > l.l3_end) return false;
  auto seg = frame.subspan(*l.l4_off, l.l3_end - *l.l4_off);
  if (l.proto == kIpProtoUdp && get16(seg, 6) == 0) return false;
  uint32_t acc = onesSum(seg);
  if (l.proto != kIpProtoIcmp) acc += pseudoHeaderSum(frame, l, seg.size());
  return foldSum(acc) == 0xffff;
}

inline bool l4ChecksumOk(std::span<const uint8_t> frame) {
  auto l = locate(frame);
  return l && l4ChecksumOk(frame, *l);
}

inline bool l4ChecksumOkAt(std::span<const uint8_t> frame, size_t l3_off) {
  auto l = locateAt(frame, l3_off);
  return l && l4ChecksumOk(frame, *l);
}

// Recomputes the IPv4 header and L4 checksums in place (after a test edited a field by hand).
inline void refreshChecksums(std::vector<uint8_t>& frame) {
  auto l = locate(frame);
  if (!l) return;
  if (auto c = l4Checksum(frame, *l)) {
    put16(frame, *l->l4_off + *l4ChecksumField(l->proto, l->family), *c);
  }
  if (l->family == Family::V4) put16(frame, l->l3_off + 10, ipv4HeaderChecksum(frame, l->l3_off));
}

// ---------------------------------------------------------------------------------------------

class PacketBuilder {
 public:
  // --- Ethernet -------------------------------------------------------------------------------
  PacketBuilder& eth(const MacAddr& src, const MacAddr& dst) {
    src_mac_ = src;
    dst_mac_ = dst;
    return *this;
  }
  // Adds a VLAN tag; call twice for double tagging. Tags are emitted outermost first.
  PacketBuilder& vlan(uint16_t vid, uint16_t tpid = kEtherTypeVlan, uint8_t pcp = 0) {
    vlans_.push_back({tpid, static_cast<uint16_t>((pcp & 0x7) << 13 | (vid & 0x0fff))});
    return *this;
  }
  // Overrides the (innermost) ethertype, e.g. kEtherTypeArp; the default follows the L3 header.
  PacketBuilder& etherType(uint16_t type) {
    ether_type_ = type;
    return *this;
  }

  // --- IPv4 / IPv6 ----------------------------------------------------------------------------
  PacketBuilder& ipv4(const IpAddr& src, const IpAddr& dst) { return ip(src, dst, Family::V4); }
  PacketBuilder& ipv6(const IpAddr& src, const IpAddr& dst) { return ip(src, dst, Family::V6); }
  // TTL (IPv4) or hop limit (IPv6); default 64.
  PacketBuilder& ttl(uint8_t v) {
    ttl_ = v;
    return *this;
  }
  // TOS (IPv4) or traffic class (IPv6).
  PacketBuilder& tos(uint8_t v) {
    tos_ = v;
    return *this;
  }
  PacketBuilder& ipId(uint16_t v) {
    ip_id_ = v;
    return *this;
  }
  PacketBuilder& df(bool on = true) {
    df_ = on;
    return *this;
  }
  PacketBuilder& mf(bool on = true) {
    mf_ = on;
    return *this;
  }
  // IPv4 fragment offset in 8-byte units.
  PacketBuilder& fragOffset(uint16_t units) {
    frag_off_ = units;
    return *this;
  }
  // IPv4 options, padded with zeros (End of Option List) to a multiple of 4 bytes.
  PacketBuilder& ipOptions(std::vector<uint8_t> opts) {
    ip_opts_ = std::move(opts);
    while (ip_opts_.size() % 4) ip_opts_.push_back(0);
    if (ip_opts_.size() > 40) throw std::invalid_argument("IPv4 options > 40 bytes");
    return *this;
  }
  // Raw IHL nibble (header length in 4-byte words); the header bytes emitted do not change.
  PacketBuilder& ihl(uint8_t words) {
    ihl_ = words;
    return *this;
  }
  // IPv4 total length field.
  PacketBuilder& ipTotalLength(uint16_t v) {
    total_len_ = v;
    return *this;
  }
  // IPv6 payload length field.
  PacketBuilder& ipv6PayloadLength(uint16_t v) {
    payload_len_ = v;
    return *this;
  }
  // Version nibble (default 4 / 6 from ipv4() / ipv6()).
  PacketBuilder& ipVersion(uint8_t v) {
    ip_version_ = v;
    return *this;
  }
  // Protocol (IPv4) / next-header value for the L4 part, overriding what tcp()/udp()/... imply.
  PacketBuilder& ipProto(uint8_t v) {
    ip_proto_ = v;
    return *this;
  }
  // Stores a wrong IPv4 header checksum (off by one, never the other zero representation).
  PacketBuilder& badIpChecksum(bool on = true) {
    bad_ip_cksum_ = on;
    return *this;
  }
  // IPv6 extension header, appended to the chain in call order. `body` follows the next-header
  // and length bytes; it is zero-padded so the header is 8n bytes (zeros are Pad1 options in
  // hop-by-hop / destination options). `hdr_ext_len` overrides the length byte.
  PacketBuilder& ipv6Ext(uint8_t type, std::vector<uint8_t> body = {},
                         std::optional<uint8_t> hdr_ext_len = std::nullopt) {
    while ((body.size() + 2) % 8) body.push_back(0);
    exts_.push_back({type, std::move(body), hdr_ext_len});
    return *this;
  }
  // IPv6 fragment header (RFC 8200 §4.5): offset in 8-byte units, M flag, identification.
  PacketBuilder& ipv6Fragment(uint16_t offset_units = 0, bool more = true, uint32_t ident = 1) {
    uint16_t off_m = static_cast<uint16_t>(offset_units << 3 | (more ? 1 : 0));
    return ipv6Ext(kIpv6Fragment, {static_cast<uint8_t>(off_m >> 8), static_cast<uint8_t>(off_m),
                                   static_cast<uint8_t>(ident >> 24), static_cast<uint8_t>(ident >> 16),
                                   static_cast<uint8_t>(ident >> 8), static_cast<uint8_t>(ident)});
  }

  // --- L4 -------------------------------------------------------------------------------------
  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    l4_ = L4::Tcp;
    sport_ = sport;
    dport_ = dport;
    tcp_flags_ = flags;
    return *this;
  }
  PacketBuilder& tcpSeq(uint32_t seq, uint32_t ack = 0) {
    seq_ = seq;
    ack_ = ack;
    return *this;
  }
  PacketBuilder& tcpWindow(uint16_t w) {
    window_ = w;
    return *this;
  }
  // TCP options, padded with zeros (End of Option List) to a multiple of 4 bytes.
  PacketBuilder& tcpOptions(std::vector<uint8_t> opts) {
    tcp_opts_ = std::move(opts);
    while (tcp_opts_.size() % 4) tcp_opts_.push_back(0);
    if (tcp_opts_.size() > 40) throw std::invalid_argument("TCP options > 40 bytes");
    return *this;
  }
  // Raw data-offset nibble; the header bytes emitted do not change.
  PacketBuilder& tcpDataOffset(uint8_t words) {
    tcp_doff_ = words;
    return *this;
  }
  PacketBuilder& udp(uint16_t sport, uint16_t dport) {
    l4_ = L4::Udp;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }
  // UDP length field.
  PacketBuilder& udpLength(uint16_t v) {
    udp_len_ = v;
    return *this;
  }
  // ICMP echo (IPv4: type 8 / 0) or ICMPv6 echo (type 128 / 129), by the L3 family at build().
  PacketBuilder& icmpEcho(uint16_t id, uint16_t seq, bool reply = false) {
    l4_ = L4::IcmpEcho;
    sport_ = id;
    dport_ = seq;
    echo_reply_ = reply;
    return *this;
  }
  // ICMPv6 neighbour solicitation for `target` (RFC 4861 §4.3), with a source link-layer address
  // option when `source_mac` is given (it must not be, from the unspecified address: §4.3).
  // Use with ipv6(src, solicitedNode(target)) and ttl(255), as a real one is sent.
  PacketBuilder& neighborSolicit(const IpAddr& target,
                                 std::optional<MacAddr> source_mac = std::nullopt) {
    if (target.family != Family::V6) throw std::invalid_argument("NS target must be IPv6");
    l4_ = L4::Icmp6Ns;
    ns_target_ = target;
    ns_source_mac_ = source_mac;
    return *this;
  }
  // Any ICMP (IPv4) / ICMPv6 (IPv6) message: type, code, the 4 bytes after the checksum
  // ("rest of header": echo id/seq, next-hop MTU, NA flags ...), then payload() (an error's
  // quoted packet, an NS target and options). The checksum is computed like the others.
  PacketBuilder& icmp(uint8_t type, uint8_t code, uint32_t rest = 0) {
    l4_ = L4::IcmpAny;
    icmp_type_ = type;
    icmp_code_ = code;
    icmp_rest_ = rest;
    return *this;
  }
  // An Ethernet/IPv4 ARP message (RFC 826; op 1 request, 2 reply) as the frame's payload, with
  // ethertype 0x0806. Use instead of ipv4()/ipv6().
  PacketBuilder& arp(uint16_t op, const MacAddr& sha, const IpAddr& spa, const MacAddr& tha, const IpAddr& tpa) {
    if (!spa.isV4() || !tpa.isV4()) throw std::invalid_argument("ARP needs IPv4 addresses");
    ether_type_ = kEtherTypeArp;
    payload_ = {0x00, 0x01, 0x08, 0x00, 6, 4, static_cast<uint8_t>(op >> 8), static_cast<uint8_t>(op)};
    payload_.insert(payload_.end(), sha.bytes.begin(), sha.bytes.end());
    payload_.insert(payload_.end(), spa.bytes.begin(), spa.bytes.begin() + 4);
    payload_.insert(payload_.end(), tha.bytes.begin(), tha.bytes.end());
    payload_.insert(payload_.end(), tpa.bytes.begin(), tpa.bytes.begin() + 4);
    return *this;
  }
  // Arbitrary L4 bytes under protocol number `proto` (GRE, SCTP, ...); no checksum is computed.
  PacketBuilder& l4Raw(uint8_t proto, std::vector<uint8_t> hdr) {
    l4_ = L4::Raw;
    ip_proto_ = proto;
    raw_l4_ = std::move(hdr);
    return *this;
  }
  // Stores a wrong L4 checksum.
  PacketBuilder& badL4Checksum(bool on = true) {
    bad_l4_cksum_ = on;
    return *this;
  }

  // --- Payload and framing --------------------------------------------------------------------
  // n bytes of a fixed pattern (byte i = i & 0xff), after the L4 header (or the IP header, or
  // the Ethernet header if there is no L3).
  PacketBuilder& payload(size_t n) {
    payload_.resize(n);
    for (size_t i = 0; i < n; i++) payload_[i] = static_cast<uint8_t>(i);
    return *this;
  }
  PacketBuilder& payload(std::vector<uint8_t> bytes) {
    payload_ = std::move(bytes);
    return *this;
  }
  // Zero bytes after the IP packet until the frame is n bytes (Ethernet minimum: 60 + FCS).
  PacketBuilder& padTo(size_t n) {
    pad_to_ = n;
    return *this;
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> l4 = buildL4();
    // Without ipv4()/ipv6() the L4 bytes (usually just payload()) follow the Ethernet header.
    std::vector<uint8_t> l3 = !family_ ? l4 : *family_ == Family::V4 ? buildIpv4(l4) : buildIpv6(l4);

    std::vector<uint8_t> f;
    f.insert(f.end(), dst_mac_.bytes.begin(), dst_mac_.bytes.end());
    f.insert(f.end(), src_mac_.bytes.begin(), src_mac_.bytes.end());
    for (const auto& [tpid, tci] : vlans_) {
      f.push_back(static_cast<uint8_t>(tpid >> 8));
      f.push_back(static_cast<uint8_t>(tpid));
      f.push_back(static_cast<uint8_t>(tci >> 8));
      f.push_back(static_cast<uint8_t>(tci));
    }
    uint16_t type = ether_type_.value_or(
        !family_ ? uint16_t{0x88b5} /* local experimental */
                 : *family_ == Family::V4 ? kEtherTypeIpv4 : kEtherTypeIpv6);
    f.push_back(static_cast<uint8_t>(type >> 8));
    f.push_back(static_cast<uint8_t>(type));
    f.insert(f.end(), l3.begin(), l3.end());
    if (f.size() < pad_to_) f.resize(pad_to_, 0);
    return f;
  }

 private:
  enum class L4 { None, Tcp, Udp, IcmpEcho, IcmpAny, Raw, Icmp6Ns };
  struct Ext {
    uint8_t type;
    std::vector<uint8_t> body;
    std::optional<uint8_t> len;
  };

  PacketBuilder& ip(const IpAddr& src, const IpAddr& dst, Family f) {
    if (src.family != f || dst.family != f) throw std::invalid_argument("address family mismatch");
    family_ = f;
    src_ip_ = src;
    dst_ip_ = dst;
    return *this;
  }

  uint8_t l4Proto() const {
    if (ip_proto_) return *ip_proto_;
    switch (l4_) {
      case L4::Tcp: return kIpProtoTcp;
      case L4::Udp: return kIpProtoUdp;
      case L4::IcmpEcho:
      case L4::IcmpAny: return family_ == Family::V6 ? kIpProtoIcmp6 : kIpProtoIcmp;
      case L4::Icmp6Ns: return kIpProtoIcmp6;
      default: return family_ == Family::V6 ? kIpProtoNoNext : 255;
    }
  }

  // Transport header + payload, checksum field zero (filled in by finishL4 once L3 is known).
  std::vector<uint8_t> buildL4() const {
    std::vector<uint8_t> h;
    switch (l4_) {
      case L4::None: break;
      case L4::Tcp: {
        h.assign(20, 0);
        put16(h, 0, sport_);
        put16(h, 2, dport_);
        put32(h, 4, seq_);
        put32(h, 8, ack_);
        uint8_t doff = tcp_doff_.value_or(static_cast<uint8_t>((20 + tcp_opts_.size()) / 4));
        h[12] = static_cast<uint8_t>(doff << 4);
        h[13] = tcp_flags_;
        put16(h, 14, window_);
        h.insert(h.end(), tcp_opts_.begin(), tcp_opts_.end());
        break;
      }
      case L4::Udp:
        h.assign(8, 0);
        put16(h, 0, sport_);
        put16(h, 2, dport_);
        put16(h, 4, udp_len_.value_or(static_cast<uint16_t>(8 + payload_.size())));
        break;
      case L4::IcmpEcho:
        h.assign(8, 0);
        if (family_ == Family::V6) h[0] = echo_reply_ ? 129 : 128;
        else h[0] = echo_reply_ ? 0 : 8;
        put16(h, 4, sport_);
        put16(h, 6, dport_);
        break;
      case L4::IcmpAny:
        h.assign(8, 0);
        h[0] = icmp_type_;
        h[1] = icmp_code_;
        put32(h, 4, icmp_rest_);
        break;
      case L4::Raw: h = raw_l4_; break;
      case L4::Icmp6Ns:
        h.assign(8, 0);  // type, code, checksum, reserved
        h[0] = 135;
        h.insert(h.end(), ns_target_.bytes.begin(), ns_target_.bytes.end());
        if (ns_source_mac_) {
          h.push_back(1);  // option: source link-layer address, length 1 (8 bytes)
          h.push_back(1);
          h.insert(h.end(), ns_source_mac_->bytes.begin(), ns_source_mac_->bytes.end());
        }
        break;
    }
    h.insert(h.end(), payload_.begin(), payload_.end());
    return h;
  }

  // Fills the L4 checksum of `pkt` (a complete IP packet: header + L4) in place.
  void finishL4(std::vector<uint8_t>& pkt, size_t l4_off) const {
    if (l4_ == L4::None || l4_ == L4::Raw) return;
    FrameLayout l;
    l.family = *family_;
    l.l3_end = pkt.size();
    l.l4_off = l4_off;
    l.proto = l4Proto();
    auto field = l4ChecksumField(l.proto, l.family);
    if (!field) return;  // ipProto() overrode the protocol: nothing meaningful to checksum
    auto c = l4Checksum(pkt, l);
    if (!c) return;
    uint16_t v = bad_l4_cksum_ ? static_cast<uint16_t>(*c == 0xffff ? 0xfffe : *c + 1) : *c;
    put16(pkt, l4_off + *field, v);
  }

  // The whole IPv4 packet: header, options, L4.
  std::vector<uint8_t> buildIpv4(const std::vector<uint8_t>& l4) const {
    std::vector<uint8_t> p(20, 0);
    size_t hdr_len = 20 + ip_opts_.size();
    p[0] = static_cast<uint8_t>(ip_version_.value_or(4) << 4 |
                                (ihl_.value_or(static_cast<uint8_t>(hdr_len / 4)) & 0x0f));
    p[1] = tos_;
    put16(p, 2, total_len_.value_or(static_cast<uint16_t>(hdr_len + l4.size())));
    put16(p, 4, ip_id_);
    put16(p, 6, static_cast<uint16_t>((df_ ? 0x4000 : 0) | (mf_ ? 0x2000 : 0) | (frag_off_ & 0x1fff)));
    p[8] = ttl_;
    p[9] = l4Proto();
    std::copy(src_ip_.bytes.begin(), src_ip_.bytes.begin() + 4, p.begin() + 12);
    std::copy(dst_ip_.bytes.begin(), dst_ip_.bytes.begin() + 4, p.begin() + 16);
    p.insert(p.end(), ip_opts_.begin(), ip_opts_.end());
    p.insert(p.end(), l4.begin(), l4.end());
    finishL4(p, hdr_len);
    // The checksum covers IHL*4 bytes, whatever IHL says (so a test with an overridden IHL still
    // fails for the reason it means to), bounded by the bytes actually there.
    put16(p, 10, ipv4HeaderChecksum(p, 0));
    if (bad_ip_cksum_) {
      uint16_t c = get16(p, 10);
      put16(p, 10, static_cast<uint16_t>(c == 0xffff ? 0xfffe : c + 1));
    }
    return p;
  }

  // The whole IPv6 packet: header, extension headers, L4.
  std::vector<uint8_t> buildIpv6(const std::vector<uint8_t>& l4) const {
    std::vector<uint8_t> p(40, 0);
    p[0] = static_cast<uint8_t>(ip_version_.value_or(6) << 4 | tos_ >> 4);
    p[1] = static_cast<uint8_t>(tos_ << 4);
    p[6] = exts_.empty() ? l4Proto() : exts_.front().type;
    p[7] = ttl_;
    std::copy(src_ip_.bytes.begin(), src_ip_.bytes.end(), p.begin() + 8);
    std::copy(dst_ip_.bytes.begin(), dst_ip_.bytes.end(), p.begin() + 24);
    for (size_t i = 0; i < exts_.size(); i++) {
      const Ext& e = exts_[i];
      p.push_back(i + 1 < exts_.size() ? exts_[i + 1].type : l4Proto());
      p.push_back(e.len.value_or(static_cast<uint8_t>((e.body.size() + 2) / 8 - 1)));
      p.insert(p.end(), e.body.begin(), e.body.end());
    }
    size_t hdr_len = p.size();
    put16(p, 4, payload_len_.value_or(static_cast<uint16_t>(hdr_len - 40 + l4.size())));
    p.insert(p.end(), l4.begin(), l4.end());
    finishL4(p, hdr_len);
    return p;
  }

  MacAddr src_mac_{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
  MacAddr dst_mac_{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
  std::vector<std::pair<uint16_t, uint16_t>> vlans_;  // (TPID, TCI)
  std::optional<uint16_t> ether_type_;

  std::optional<Family> family_;
  IpAddr src_ip_, dst_ip_;
  uint8_t ttl_ = 64;
  uint8_t tos_ = 0;
  uint16_t ip_id_ = 0;
  bool df_ = false, mf_ = false;
  uint16_t frag_off_ = 0;
  std::vector<uint8_t> ip_opts_;
  std::optional<uint8_t> ihl_, ip_version_, ip_proto_;
  std::optional<uint16_t> total_len_, payload_len_;
  bool bad_ip_cksum_ = false;
  std::vector<Ext> exts_;

  L4 l4_ = L4::None;
  uint16_t sport_ = 0, dport_ = 0;
  uint8_t tcp_flags_ = 0;
  uint32_t seq_ = 1, ack_ = 0;
  uint16_t window_ = 65535;
  std::vector<uint8_t> tcp_opts_;
  std::optional<uint8_t> tcp_doff_;
  std::optional<uint16_t> udp_len_;
  bool echo_reply_ = false;
  uint8_t icmp_type_ = 0, icmp_code_ = 0;
  uint32_t icmp_rest_ = 0;
  std::vector<uint8_t> raw_l4_;
  IpAddr ns_target_;
  std::optional<MacAddr> ns_source_mac_;
  bool bad_l4_cksum_ = false;

  std::vector<uint8_t> payload_;
  size_t pad_to_ = 0;
};

using Frame = std::vector<uint8_t>;

// Headers written field by field, for the expected output of the tests (outer tunnel headers,
// ICMP errors): independent of PacketBuilder's layout code. A test takes them with
// `using namespace test::wire;`.
namespace wire {

inline Frame cat(std::initializer_list<Frame> parts) {
  Frame f;
  for (const auto& p : parts) f.insert(f.end(), p.begin(), p.end());
  return f;
}

inline Frame bytesOf(const IpAddr& a) { return Frame(a.bytes.begin(), a.bytes.begin() + (a.isV4() ? 4 : 16)); }
inline Frame bytesOf(const MacAddr& m) { return Frame(m.bytes.begin(), m.bytes.end()); }

inline Frame ethHdr(const MacAddr& dst, const MacAddr& src, uint16_t type) {
  return cat({bytesOf(dst), bytesOf(src), Frame{uint8_t(type >> 8), uint8_t(type)}});
}

// RFC 791 header without options; its checksum computed here.
inline Frame ipv4Hdr(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint16_t payload_len, uint8_t tos, bool df,
                     uint8_t ttl = 64, uint16_t id = 0) {
  Frame h(20, 0);
  h[0] = 0x45;
  h[1] = tos;
  put16(h, 2, uint16_t(20 + payload_len));
  put16(h, 4, id);
  put16(h, 6, df ? 0x4000 : 0);
  h[8] = ttl;
  h[9] = proto;
  std::copy(src.bytes.begin(), src.bytes.begin() + 4, h.begin() + 12);
  std::copy(dst.bytes.begin(), dst.bytes.begin() + 4, h.begin() + 16);
  put16(h, 10, ipv4HeaderChecksum(h, 0));
  return h;
}

// RFC 8200 fixed header: traffic class `tc`, flow label `flow`.
inline Frame ipv6Hdr(const IpAddr& src, const IpAddr& dst, uint8_t next, uint16_t payload_len, uint8_t tc,
                     uint32_t flow, uint8_t hop = 64) {
  Frame h(40, 0);
  put32(h, 0, (6u << 28) | (uint32_t(tc) << 20) | (flow & 0xfffff));
  put16(h, 4, payload_len);
  h[6] = next;
  h[7] = hop;
  std::copy(src.bytes.begin(), src.bytes.end(), h.begin() + 8);
  std::copy(dst.bytes.begin(), dst.bytes.end(), h.begin() + 24);
  return h;
}

// Checksum field left 0, as the tunnels' outer UDP header (GUE) carries it.
inline Frame udpHdr(uint16_t sport, uint16_t dport, uint16_t len) {
  Frame h(8, 0);
  put16(h, 0, sport);
  put16(h, 2, dport);
  put16(h, 4, len);
  return h;
}

}  // namespace wire

}  // namespace l4lb::test
