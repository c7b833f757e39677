// parsePacket: one test per drop verdict, exact PacketInfo for every accepted shape, a truncation
// sweep and a byte-flip fuzz loop. Frames are copied into exactly-sized heap buffers before
// parsing, so AddressSanitizer reports any read past the end of the frame.
#include "dataplane/parser.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "packet_builder.h"

namespace l4lb::dataplane {
namespace {

using test::ipAddr;
using test::PacketBuilder;
using test::truncate;

const IpAddr kClient4 = ipAddr("198.18.0.1");
const IpAddr kVip4 = ipAddr("198.18.1.10");
const IpAddr kClient6 = ipAddr("2001:db8::1");
const IpAddr kVip6 = ipAddr("2001:db8:1::10");

// Parses a copy of `frame` whose heap allocation ends exactly at the last byte.
ParseResult parse(const std::vector<uint8_t>& frame, PacketInfo& info) {
  std::vector<uint8_t> exact(frame.begin(), frame.end());
  return parsePacket(exact.data(), static_cast<uint32_t>(exact.size()), info);
}

ParseResult verdict(const std::vector<uint8_t>& frame) {
  PacketInfo info;
  return parse(frame, info);
}

// The same with the mbuf's offload flags (kRxIpCksumGood: the NIC checked the IPv4 header checksum).
ParseResult verdictWithFlags(const std::vector<uint8_t>& frame, uint64_t ol_flags, PacketInfo& info) {
  std::vector<uint8_t> exact(frame.begin(), frame.end());
  return parsePacket(exact.data(), static_cast<uint32_t>(exact.size()), info, ol_flags);
}

// gtest prints Drop as a number otherwise. A verdict and a drop reason by name: "parse ok",
// "parse fragment", or "drop <reason>" (a drop reason names Parse::Drop with that reason).
std::string name(Drop d) { return "drop " + std::string(toString(d)); }
std::string name(Parse p) { return p == Parse::Ok ? "parse ok" : p == Parse::Fragment ? "parse fragment" : "parse drop"; }
std::string name(ParseResult r) { return r.verdict == Parse::Drop ? name(r.reason) : name(r.verdict); }

#define EXPECT_VERDICT(frame, expected) EXPECT_EQ(name(verdict(frame)), name(expected))

void expectInfo(const PacketInfo& got, const PacketInfo& want) {
  EXPECT_EQ(got.l3_off, want.l3_off);
  EXPECT_EQ(got.l4_off, want.l4_off);
  EXPECT_EQ(got.l3_len, want.l3_len);
  EXPECT_EQ(got.family, want.family);
  EXPECT_EQ(got.proto, want.proto);
  EXPECT_EQ(got.ttl, want.ttl);
  EXPECT_EQ(got.tcp_flags, want.tcp_flags);
  EXPECT_EQ(got.df, want.df);
  EXPECT_EQ(got.has_vlan, want.has_vlan);
  EXPECT_EQ(got.sport_be, want.sport_be);
  EXPECT_EQ(got.dport_be, want.dport_be);
  EXPECT_EQ(got.saddr_off, want.saddr_off);
  EXPECT_EQ(got.daddr_off, want.daddr_off);
}

// Parses, expects Ok and checks the addresses found at saddr_off / daddr_off.
PacketInfo parseOk(const std::vector<uint8_t>& frame, const IpAddr& src, const IpAddr& dst) {
  PacketInfo info;
  ParseResult d = parse(frame, info);
  EXPECT_EQ(name(d), name(Parse::Ok));
  if (d.verdict != Parse::Ok) return info;
  size_t alen = src.isV4() ? 4 : 16;
  EXPECT_LE(info.daddr_off + alen, frame.size());
  if (info.daddr_off + alen > frame.size()) return info;
  EXPECT_EQ(std::memcmp(frame.data() + info.saddr_off, src.bytes.data(), alen), 0);
  EXPECT_EQ(std::memcmp(frame.data() + info.daddr_off, dst.bytes.data(), alen), 0);
  return info;
}

PacketBuilder v4Tcp() { return PacketBuilder().ipv4(kClient4, kVip4).tcp(40000, 80, kTcpSyn); }
PacketBuilder v6Tcp() { return PacketBuilder().ipv6(kClient6, kVip6).tcp(40000, 443, kTcpSyn); }

// ---------------------------------------------------------------------------------------------
// TooShort

TEST(ParserTooShort, Ethernet) {
  auto frame = v4Tcp().build();
  for (size_t n = 0; n < 14; n++) EXPECT_VERDICT(truncate(frame, n), Drop::TooShort) << n;
}

TEST(ParserTooShort, VlanTag) {
  auto frame = v4Tcp().vlan(100).build();
  for (size_t n = 14; n < 18; n++) EXPECT_VERDICT(truncate(frame, n), Drop::TooShort) << n;
}

TEST(ParserTooShort, Ipv4Header) {
  auto frame = v4Tcp().build();
  EXPECT_VERDICT(truncate(frame, 14 + 19), Drop::TooShort);
  EXPECT_VERDICT(truncate(frame, 14), Drop::TooShort);
  auto tagged = v4Tcp().vlan(7).build();
  EXPECT_VERDICT(truncate(tagged, 18 + 19), Drop::TooShort);
}

TEST(ParserTooShort, Ipv6Header) {
  auto frame = v6Tcp().build();
  EXPECT_VERDICT(truncate(frame, 14 + 39), Drop::TooShort);
  EXPECT_VERDICT(truncate(frame, 14), Drop::TooShort);
}

TEST(ParserTooShort, Ipv4OptionsBeyondFrame) {
  // IHL 7 announces 8 option bytes; the frame ends after 4 of them.
  auto frame = PacketBuilder().ipv4(kClient4, kVip4).ipOptions({1, 1, 1, 1, 1, 1, 1, 1})
                   .udp(5353, 53).build();
  EXPECT_VERDICT(truncate(frame, 14 + 24), Drop::TooShort);
  // IHL 15 (60 bytes) over a 20-byte header followed by only 8 bytes of UDP.
  auto lying = PacketBuilder().ipv4(kClient4, kVip4).ihl(15).udp(5353, 53).build();
  ASSERT_EQ(lying.size(), 14u + 20 + 8);
  EXPECT_VERDICT(lying, Drop::TooShort);
}

// ---------------------------------------------------------------------------------------------
// NotIp

TEST(ParserNotIp, Arp) {
  auto arp = PacketBuilder().etherType(test::kEtherTypeArp).payload(28).build();
  EXPECT_VERDICT(arp, Drop::NotIp);
  auto tagged_arp = PacketBuilder().vlan(10).etherType(test::kEtherTypeArp).payload(28).build();
  EXPECT_VERDICT(tagged_arp, Drop::NotIp);
}

TEST(ParserNotIp, QinQ) {
  // 802.1ad S-tag outside, C-tag inside.
  auto frame = v4Tcp().vlan(100, test::kEtherTypeQinQ).vlan(200).build();
  EXPECT_VERDICT(frame, Drop::NotIp);
  // 802.1Q tag followed by an 802.1ad tag.
  auto inner_ad = v4Tcp().vlan(100).vlan(200, test::kEtherTypeQinQ).build();
  EXPECT_VERDICT(inner_ad, Drop::NotIp);
}

TEST(ParserNotIp, DoubleTag) {
  auto frame = v4Tcp().vlan(100).vlan(200).build();
  EXPECT_VERDICT(frame, Drop::NotIp);
}

// ---------------------------------------------------------------------------------------------
// BadIpHeader

TEST(ParserBadIpHeader, VersionMismatch) {
  EXPECT_VERDICT(v4Tcp().ipVersion(6).build(), Drop::BadIpHeader);
  EXPECT_VERDICT(v4Tcp().ipVersion(5).build(), Drop::BadIpHeader);
  EXPECT_VERDICT(v6Tcp().ipVersion(4).build(), Drop::BadIpHeader);
  // An IPv4 packet behind the IPv6 ethertype.
  EXPECT_VERDICT(v4Tcp().etherType(test::kEtherTypeIpv6).payload(40).build(), Drop::BadIpHeader);
}

// With the builder's checksum (over 20 bytes) an IHL below 5 also fails the header checksum, so
// that alone would not show the IHL check at work. Each IHL is also tried with the checksum out
// of the way: the NIC's CKSUM_GOOD flag, and a header whose first IHL*4 bytes sum to 0xffff (for
// IHL 1 and 2 the checksum field lies beyond them: the total length or the ID is set instead; for
// IHL 0 no sum over nothing is valid, so only the flag covers it). Untagged and tagged, so both
// the straight-line IPv4 path and the general one see them.
std::vector<uint8_t> withIhlAndItsChecksum(std::vector<uint8_t> frame, size_t l3_off, uint8_t ihl) {
  frame[l3_off] = uint8_t(0x40 | ihl);
  const size_t len = size_t(ihl) * 4;
  const size_t field = len > 10 ? 10 : len > 4 ? 4 : 2;  // checksum, ID or total length
  frame[l3_off + field] = frame[l3_off + field + 1] = 0;
  const uint16_t c = test::checksumFromSum(test::onesSum(std::span(frame).subspan(l3_off, len)));
  frame[l3_off + field] = uint8_t(c >> 8);
  frame[l3_off + field + 1] = uint8_t(c);
  return frame;
}

TEST(ParserBadIpHeader, IhlBelowFive) {
  PacketInfo info;
  for (bool vlan : {false, true}) {
    const size_t l3_off = vlan ? 18 : 14;
    const auto good = (vlan ? v4Tcp().vlan(5) : v4Tcp()).build();
    for (uint8_t ihl = 0; ihl < 5; ihl++) {
      SCOPED_TRACE(testing::Message() << "IHL " << int(ihl) << (vlan ? ", tagged" : ""));
      auto frame = good;
      frame[l3_off] = uint8_t(0x40 | ihl);
      EXPECT_VERDICT(frame, Drop::BadIpHeader);
      EXPECT_EQ(name(verdictWithFlags(frame, kRxIpCksumGood, info)), name(Drop::BadIpHeader));
      if (ihl == 0) continue;
      frame = withIhlAndItsChecksum(good, l3_off, ihl);
      ASSERT_EQ(test::foldSum(test::onesSum(std::span(frame).subspan(l3_off, ihl * 4))), 0xffff);
      EXPECT_VERDICT(frame, Drop::BadIpHeader);
    }
  }
}

TEST(ParserBadIpHeader, BadChecksum) {
  EXPECT_VERDICT(v4Tcp().badIpChecksum().build(), Drop::BadIpHeader);
  // The checksum covers the options: flip an option byte of an otherwise valid header.
  auto frame = v4Tcp().ipOptions({0x94, 0x04, 0x00, 0x00}).build();  // router alert
  ASSERT_EQ(name(verdict(frame)), name(Parse::Ok));
  frame[14 + 22] ^= 0x01;
  EXPECT_VERDICT(frame, Drop::BadIpHeader);
}

TEST(ParserBadIpHeader, HopByHopNotFirst) {
  auto frame = v6Tcp().ipv6Ext(test::kIpv6DestOpts).ipv6Ext(test::kIpv6HopByHop).build();
  EXPECT_VERDICT(frame, Drop::BadIpHeader);
  auto second_hbh = v6Tcp().ipv6Ext(test::kIpv6HopByHop).ipv6Ext(test::kIpv6HopByHop).build();
  EXPECT_VERDICT(second_hbh, Drop::BadIpHeader);
}

// More than kMaxIpv6ExtHeaders (8): its own reason, ipv6_ext_limit (fail closed: no port read).
TEST(ParserIpv6ExtLimit, AtAndPastTheLimit) {
  for (uint8_t proto : {kProtoTcp, kProtoUdp, kProtoIcmp6}) {
    SCOPED_TRACE(int(proto));
    auto chain = [&](int n) {
      PacketBuilder b = PacketBuilder().ipv6(kClient6, kVip6);
      for (int i = 0; i < n; i++)
        b.ipv6Ext(i == 0 ? test::kIpv6HopByHop : i % 2 ? test::kIpv6Routing : test::kIpv6DestOpts);
      if (proto == kProtoTcp) b.tcp(1234, 80, kTcpSyn);
      else if (proto == kProtoUdp) b.udp(1234, 53);
      else b.icmp(2, 0, 1280).payload(48);
      return b.build();
    };
    PacketInfo info;
    ASSERT_EQ(name(parse(chain(8), info)), name(Parse::Ok));  // 8 headers: the limit
    EXPECT_EQ(info.l4_off, 14 + 40 + 8 * 8);
    EXPECT_EQ(info.proto, proto);
    EXPECT_VERDICT(chain(9), Drop::Ipv6ExtLimit);  // 9
    EXPECT_VERDICT(chain(20), Drop::Ipv6ExtLimit);
  }
}

// ---------------------------------------------------------------------------------------------
// BadLength

TEST(ParserBadLength, Ipv4TotalLengthBeyondFrame) {
  auto frame = v4Tcp().payload(10).ipTotalLength(20 + 20 + 11).build();
  EXPECT_VERDICT(frame, Drop::BadLength);
  // Also when Ethernet padding would cover it: the frame, not the padding rule, is the limit.
  auto padded = v4Tcp().ipTotalLength(61).padTo(60).build();
  EXPECT_VERDICT(padded, Drop::BadLength);
}

TEST(ParserBadLength, Ipv4TotalLengthBelowHeader) {
  EXPECT_VERDICT(v4Tcp().ipTotalLength(19).build(), Drop::BadLength);
  EXPECT_VERDICT(v4Tcp().ipTotalLength(0).build(), Drop::BadLength);
  EXPECT_VERDICT(v4Tcp().ipOptions({1, 1, 1, 1}).ipTotalLength(23).build(), Drop::BadLength);
}

TEST(ParserBadLength, Ipv6PayloadLengthBeyondFrame) {
  auto frame = v6Tcp().payload(10).ipv6PayloadLength(31).build();
  EXPECT_VERDICT(frame, Drop::BadLength);
}

TEST(ParserBadLength, Ipv6ExtensionHeaderBeyondPayload) {
  // Hop-by-hop header claims 48 bytes; only 8 + 20 (TCP) follow the IPv6 header.
  auto frame = v6Tcp().ipv6Ext(test::kIpv6HopByHop, {}, 5).build();
  EXPECT_VERDICT(frame, Drop::BadLength);
  // The ext header fits the frame but not the payload length (rest is Ethernet padding).
  auto cut = PacketBuilder().ipv6(kClient6, kVip6).ipv6Ext(test::kIpv6DestOpts)
                 .ipv6PayloadLength(4).build();
  EXPECT_VERDICT(cut, Drop::BadLength);
  // Routing header (16 bytes) when the payload ends 8 bytes into it.
  auto routing = PacketBuilder().ipv6(kClient6, kVip6).ipv6Ext(test::kIpv6Routing,
                                                                std::vector<uint8_t>(14, 0))
                     .ipv6PayloadLength(8).padTo(14 + 40 + 16).build();
  EXPECT_VERDICT(routing, Drop::BadLength);
}

TEST(ParserBadLength, Ipv6ExtensionHeaderCutBeforeItsLength) {
  // The IP packet (and the frame) ends 0 or 1 bytes into an extension header: its next-header
  // and length bytes must not be read (AddressSanitizer checks this; the frame is exact).
  for (uint16_t plen : {0, 1, 7}) {
    auto frame = PacketBuilder().ipv6(kClient6, kVip6).ipv6Ext(test::kIpv6HopByHop)
                     .ipv6PayloadLength(plen).build();
    EXPECT_VERDICT(truncate(frame, 14 + 40 + plen), Drop::BadLength) << plen;
  }
}

TEST(ParserBadLength, TcpDataOffsetBelowFive) {
  for (uint8_t doff = 0; doff < 5; doff++) {
    EXPECT_VERDICT(v4Tcp().payload(20).tcpDataOffset(doff).build(), Drop::BadLength);
  }
  EXPECT_VERDICT(v6Tcp().tcpDataOffset(4).build(), Drop::BadLength);
}

TEST(ParserBadLength, TcpDataOffsetBeyondIpLength) {
  EXPECT_VERDICT(v4Tcp().payload(10).tcpDataOffset(15).build(), Drop::BadLength);  // 60 > 30
  EXPECT_VERDICT(v6Tcp().tcpDataOffset(6).build(), Drop::BadLength);                // 24 > 20
  // One byte short of the 24 bytes announced, then exactly enough.
  EXPECT_VERDICT(v4Tcp().tcpDataOffset(6).payload(3).build(), Drop::BadLength);
  EXPECT_VERDICT(v4Tcp().tcpDataOffset(6).payload(4).build(), Parse::Ok);
  // Data offset 6 fits the frame (padding) but not the IP packet.
  EXPECT_VERDICT(v4Tcp().tcpDataOffset(6).padTo(80).build(), Drop::BadLength);
}

TEST(ParserBadLength, TcpHeaderShorterThan20) {
  auto frame = PacketBuilder().ipv4(kClient4, kVip4).l4Raw(kProtoTcp, std::vector<uint8_t>(19, 0x50))
                   .build();
  EXPECT_VERDICT(frame, Drop::BadLength);
}

TEST(ParserBadLength, UdpLengthZero) {
  EXPECT_VERDICT(PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).payload(4).udpLength(0).build(),
                 Drop::BadLength);
  EXPECT_VERDICT(PacketBuilder().ipv6(kClient6, kVip6).udp(5353, 53).udpLength(0).build(),
                 Drop::BadLength);
}

TEST(ParserBadLength, UdpLengthNotPayload) {
  auto base = PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).payload(12);
  EXPECT_VERDICT(PacketBuilder(base).udpLength(19).build(), Drop::BadLength);
  EXPECT_VERDICT(PacketBuilder(base).udpLength(21).build(), Drop::BadLength);
  EXPECT_VERDICT(PacketBuilder(base).udpLength(7).build(), Drop::BadLength);
  // Matching the frame (with padding) instead of the IP payload is wrong too.
  EXPECT_VERDICT(PacketBuilder(base).padTo(80).udpLength(80 - 14 - 20).build(), Drop::BadLength);
  auto v6 = PacketBuilder().ipv6(kClient6, kVip6).udp(5353, 53).payload(12).udpLength(21).build();
  EXPECT_VERDICT(v6, Drop::BadLength);
  // Fewer than 8 bytes of UDP header.
  auto stub = PacketBuilder().ipv4(kClient4, kVip4).l4Raw(kProtoUdp, {0, 53, 0, 53, 0, 7, 0})
                  .build();
  EXPECT_VERDICT(stub, Drop::BadLength);
}

TEST(ParserBadLength, ShortIcmp) {
  auto v4 = PacketBuilder().ipv4(kClient4, kVip4).l4Raw(kProtoIcmp, {8, 0, 0, 0, 0, 1, 0}).build();
  EXPECT_VERDICT(v4, Drop::BadLength);
  auto v6 = PacketBuilder().ipv6(kClient6, kVip6).l4Raw(kProtoIcmp6, {128, 0, 0, 0}).build();
  EXPECT_VERDICT(v6, Drop::BadLength);
  // Padding does not count as ICMP bytes.
  auto padded = PacketBuilder().ipv4(kClient4, kVip4).l4Raw(kProtoIcmp, {8, 0, 0, 0}).padTo(60)
                    .build();
  EXPECT_VERDICT(padded, Drop::BadLength);
}

// ---------------------------------------------------------------------------------------------
// Fragment

TEST(ParserFragment, MoreFragments) {
  EXPECT_VERDICT(v4Tcp().mf().build(), Parse::Fragment);
  EXPECT_VERDICT(v4Tcp().df().mf().build(), Parse::Fragment);
}

TEST(ParserFragment, NonZeroOffset) {
  EXPECT_VERDICT(v4Tcp().fragOffset(185).build(), Parse::Fragment);
  EXPECT_VERDICT(v4Tcp().fragOffset(1).build(), Parse::Fragment);
  EXPECT_VERDICT(v4Tcp().fragOffset(0x1fff).build(), Parse::Fragment);
}

TEST(ParserFragment, Ipv6FragmentHeader) {
  EXPECT_VERDICT(v6Tcp().ipv6Fragment(0, true).build(), Parse::Fragment);
  EXPECT_VERDICT(v6Tcp().ipv6Ext(test::kIpv6HopByHop).ipv6Fragment(100, false).build(),
                 Parse::Fragment);
}

// An atomic fragment (offset 0, M clear) is a whole packet (RFC 6946): parsed past the header.
TEST(ParserFragment, Ipv6AtomicFragmentIsWhole) {
  PacketInfo info;
  ASSERT_EQ(name(parse(v6Tcp().ipv6Fragment(0, false).build(), info)), name(Parse::Ok));
  EXPECT_EQ(info.l4_off, 14 + 40 + 8);
  EXPECT_EQ(ntohs(info.dport_be), 443);
}

TEST(ParserFragment, Ipv4FirstFragmentHasPorts) {
  PacketInfo info;
  ASSERT_EQ(name(parse(v4Tcp().mf().ipId(0xbeef).payload(64).build(), info)), name(Parse::Fragment));
  EXPECT_EQ(info.frag, FragKind::First);
  EXPECT_EQ(info.frag_id, 0xbeefu);
  EXPECT_EQ(info.frag_proto, kProtoTcp);
  EXPECT_EQ(info.proto, kProtoTcp);
  EXPECT_EQ(ntohs(info.sport_be), 40000);
  EXPECT_EQ(ntohs(info.dport_be), 80);
  EXPECT_EQ(info.tcp_flags, kTcpSyn);
  EXPECT_EQ(info.l3_off, 14);
  EXPECT_EQ(info.l4_off, 34);
  EXPECT_EQ(info.l3_len, 20 + 20 + 64);
  EXPECT_EQ(info.family, Family::V4);
}

// The UDP length of a first fragment is the whole datagram's, larger than what this fragment holds.
TEST(ParserFragment, Ipv4FirstUdpFragmentLengthIsTheDatagrams) {
  PacketInfo info;
  auto f = PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).udpLength(1480).payload(24).mf().ipId(7).build();
  ASSERT_EQ(name(parse(f, info)), name(Parse::Fragment));
  EXPECT_EQ(info.frag, FragKind::First);
  EXPECT_EQ(ntohs(info.dport_be), 53);
  // Unfragmented, the same length field is wrong.
  EXPECT_VERDICT(PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).udpLength(1480).payload(24).build(),
                 Drop::BadLength);
}

// A first fragment too short for its TCP header: the L4 verdict, not Fragment.
TEST(ParserFragment, FirstFragmentWithCutL4HeaderIsBadLength) {
  auto f = PacketBuilder().ipv4(kClient4, kVip4).l4Raw(kProtoTcp, std::vector<uint8_t>(12, 0)).mf().build();
  EXPECT_VERDICT(f, Drop::BadLength);
}

TEST(ParserFragment, Ipv4LaterFragmentHasNoPorts) {
  PacketInfo info;
  ASSERT_EQ(name(parse(v4Tcp().fragOffset(185).ipId(0x1234).build(), info)), name(Parse::Fragment));
  EXPECT_EQ(info.frag, FragKind::Later);
  EXPECT_EQ(info.frag_id, 0x1234u);
  EXPECT_EQ(info.frag_proto, kProtoTcp);
  EXPECT_EQ(info.proto, kProtoTcp);
  EXPECT_EQ(info.sport_be, 0);
  EXPECT_EQ(info.dport_be, 0);
  EXPECT_EQ(info.tcp_flags, 0);
  EXPECT_EQ(info.l4_off, 34);
  EXPECT_EQ(info.saddr_off, 26);
  EXPECT_EQ(info.daddr_off, 30);
  // The checksum-offload flag takes the same path (the fast parser hands fragments over).
  PacketInfo info2;
  ASSERT_EQ(name(verdictWithFlags(v4Tcp().fragOffset(3).ipId(9).build(), kRxIpCksumGood, info2)), name(Parse::Fragment));
  EXPECT_EQ(info2.frag, FragKind::Later);
  EXPECT_EQ(info2.frag_id, 9u);
}

TEST(ParserFragment, Ipv6FirstFragmentHasPorts) {
  PacketInfo info;
  ASSERT_EQ(name(parse(v6Tcp().ipv6Fragment(0, true, 0xdeadbeef).build(), info)), name(Parse::Fragment));
  EXPECT_EQ(info.frag, FragKind::First);
  EXPECT_EQ(info.frag_id, 0xdeadbeefu);
  EXPECT_EQ(info.frag_proto, kProtoTcp);
  EXPECT_EQ(info.proto, kProtoTcp);
  EXPECT_EQ(ntohs(info.dport_be), 443);
  EXPECT_EQ(info.l4_off, 14 + 40 + 8);
  EXPECT_EQ(info.family, Family::V6);
}

TEST(ParserFragment, Ipv6LaterFragmentHasNoPorts) {
  PacketInfo info;
  ASSERT_EQ(name(parse(v6Tcp().ipv6Fragment(100, false, 77).build(), info)), name(Parse::Fragment));
  EXPECT_EQ(info.frag, FragKind::Later);
  EXPECT_EQ(info.frag_id, 77u);
  EXPECT_EQ(info.frag_proto, kProtoTcp);
  EXPECT_EQ(info.dport_be, 0);
  EXPECT_EQ(info.l4_off, 14 + 40 + 8);
  EXPECT_EQ(info.saddr_off, 22);
  EXPECT_EQ(info.daddr_off, 38);
}

TEST(ParserFragment, Ipv6TwoFragmentHeadersAreBad) {
  EXPECT_VERDICT(v6Tcp().ipv6Fragment(0, true, 1).ipv6Fragment(0, true, 2).build(), Drop::BadIpHeader);
  // A fragment header cut short by the payload length.
  EXPECT_VERDICT(PacketBuilder().ipv6(kClient6, kVip6).l4Raw(test::kIpv6Fragment, {6, 0, 0, 0}).build(),
                 Drop::BadLength);
}

// ---------------------------------------------------------------------------------------------
// UnsupportedProto

TEST(ParserUnsupportedProto, GreAndSctp) {
  std::vector<uint8_t> gre = {0x00, 0x00, 0x08, 0x00};
  std::vector<uint8_t> sctp(12, 0);
  EXPECT_VERDICT(PacketBuilder().ipv4(kClient4, kVip4).l4Raw(test::kIpProtoGre, gre).payload(20).build(),
                 Drop::UnsupportedProto);
  EXPECT_VERDICT(PacketBuilder().ipv4(kClient4, kVip4).l4Raw(test::kIpProtoSctp, sctp).build(),
                 Drop::UnsupportedProto);
  EXPECT_VERDICT(PacketBuilder().ipv6(kClient6, kVip6).l4Raw(test::kIpProtoSctp, sctp).build(),
                 Drop::UnsupportedProto);
  EXPECT_VERDICT(PacketBuilder().ipv6(kClient6, kVip6).ipv6Ext(test::kIpv6DestOpts)
                     .l4Raw(test::kIpProtoGre, gre).build(),
                 Drop::UnsupportedProto);
}

TEST(ParserUnsupportedProto, IcmpInTheWrongFamily) {
  auto icmp6_in_v4 = PacketBuilder().ipv4(kClient4, kVip4).l4Raw(kProtoIcmp6, std::vector<uint8_t>(8, 0))
                         .build();
  EXPECT_VERDICT(icmp6_in_v4, Drop::UnsupportedProto);
  auto icmp_in_v6 = PacketBuilder().ipv6(kClient6, kVip6).l4Raw(kProtoIcmp, std::vector<uint8_t>(8, 0))
                        .build();
  EXPECT_VERDICT(icmp_in_v6, Drop::UnsupportedProto);
}

TEST(ParserUnsupportedProto, Ipv6NoNextHeader) {
  EXPECT_VERDICT(PacketBuilder().ipv6(kClient6, kVip6).build(), Drop::UnsupportedProto);
}

// ---------------------------------------------------------------------------------------------
// Accepted frames: every PacketInfo field.

TEST(ParserOk, Ipv4Tcp) {
  auto frame = v4Tcp().ttl(17).tcpSeq(1000, 0).payload(100).build();
  auto info = parseOk(frame, kClient4, kVip4);
  expectInfo(info, {.l3_off = 14, .l4_off = 34, .l3_len = 140, .family = Family::V4,
                    .proto = kProtoTcp, .ttl = 17, .tcp_flags = kTcpSyn, .df = false,
                    .has_vlan = false, .sport_be = htons(40000), .dport_be = htons(80),
                    .saddr_off = 26, .daddr_off = 30});
}

TEST(ParserOk, Ipv4TcpAllFlagBits) {
  // The whole flags byte (CWR, ECE, URG, ACK, PSH, RST, SYN, FIN) comes through untouched.
  auto frame = PacketBuilder().ipv4(kClient4, kVip4).tcp(1, 2, 0xff).build();
  auto info = parseOk(frame, kClient4, kVip4);
  EXPECT_EQ(info.tcp_flags, 0xff);
  EXPECT_EQ(info.sport_be, htons(1));
  EXPECT_EQ(info.dport_be, htons(2));
}

TEST(ParserOk, Ipv4WithOptions) {
  // Router alert (4 bytes) + 4 NOPs: IHL 7.
  auto frame = PacketBuilder().ipv4(kClient4, kVip4).ipOptions({0x94, 0x04, 0, 0, 1, 1, 1, 1})
                   .tcp(40000, 80, kTcpAck).tcpOptions({2, 4, 0x05, 0xb4}).payload(3).build();
  auto info = parseOk(frame, kClient4, kVip4);
  expectInfo(info, {.l3_off = 14, .l4_off = 42, .l3_len = 28 + 24 + 3, .family = Family::V4,
                    .proto = kProtoTcp, .ttl = 64, .tcp_flags = kTcpAck, .df = false,
                    .has_vlan = false, .sport_be = htons(40000), .dport_be = htons(80),
                    .saddr_off = 26, .daddr_off = 30});
  // Largest header: IHL 15.
  auto max = PacketBuilder().ipv4(kClient4, kVip4).ipOptions(std::vector<uint8_t>(40, 1))
                 .udp(5353, 53).build();
  info = parseOk(max, kClient4, kVip4);
  expectInfo(info, {.l3_off = 14, .l4_off = 74, .l3_len = 68, .family = Family::V4,
                    .proto = kProtoUdp, .ttl = 64, .tcp_flags = 0, .df = false, .has_vlan = false,
                    .sport_be = htons(5353), .dport_be = htons(53), .saddr_off = 26,
                    .daddr_off = 30});
}

TEST(ParserOk, VlanTagged) {
  auto frame = v4Tcp().vlan(100, test::kEtherTypeVlan, 5).df().payload(1).build();
  auto info = parseOk(frame, kClient4, kVip4);
  expectInfo(info, {.l3_off = 18, .l4_off = 38, .l3_len = 41, .family = Family::V4,
                    .proto = kProtoTcp, .ttl = 64, .tcp_flags = kTcpSyn, .df = true,
                    .has_vlan = true, .sport_be = htons(40000), .dport_be = htons(80),
                    .saddr_off = 30, .daddr_off = 34});
  auto v6 = PacketBuilder().vlan(4094).ipv6(kClient6, kVip6).udp(5353, 53).build();
  info = parseOk(v6, kClient6, kVip6);
  expectInfo(info, {.l3_off = 18, .l4_off = 58, .l3_len = 48, .family = Family::V6,
                    .proto = kProtoUdp, .ttl = 64, .tcp_flags = 0, .df = true, .has_vlan = true,
                    .sport_be = htons(5353), .dport_be = htons(53), .saddr_off = 26,
                    .daddr_off = 42});
}

TEST(ParserOk, Ipv6Tcp) {
  auto frame = v6Tcp().ttl(3).tcpSeq(7, 9).payload(64).build();
  auto info = parseOk(frame, kClient6, kVip6);
  expectInfo(info, {.l3_off = 14, .l4_off = 54, .l3_len = 40 + 20 + 64, .family = Family::V6,
                    .proto = kProtoTcp, .ttl = 3, .tcp_flags = kTcpSyn, .df = true,
                    .has_vlan = false, .sport_be = htons(40000), .dport_be = htons(443),
                    .saddr_off = 22, .daddr_off = 38});
}

TEST(ParserOk, Ipv6Udp) {
  auto frame = PacketBuilder().ipv6(kClient6, kVip6).ttl(255).udp(5353, 53).payload(4).build();
  auto info = parseOk(frame, kClient6, kVip6);
  expectInfo(info, {.l3_off = 14, .l4_off = 54, .l3_len = 40 + 12, .family = Family::V6,
                    .proto = kProtoUdp, .ttl = 255, .tcp_flags = 0, .df = true,
                    .has_vlan = false, .sport_be = htons(5353), .dport_be = htons(53),
                    .saddr_off = 22, .daddr_off = 38});
}

TEST(ParserOk, Ipv6ExtensionHeaderChain) {
  // Hop-by-hop (8 bytes), routing (16 bytes), destination options (24 bytes), then TCP.
  auto frame = v6Tcp()
                   .ipv6Ext(test::kIpv6HopByHop)
                   .ipv6Ext(test::kIpv6Routing, std::vector<uint8_t>(14, 0))
                   .ipv6Ext(test::kIpv6DestOpts, std::vector<uint8_t>(22, 0))
                   .payload(5)
                   .build();
  auto info = parseOk(frame, kClient6, kVip6);
  expectInfo(info, {.l3_off = 14, .l4_off = 54 + 48, .l3_len = 40 + 48 + 20 + 5,
                    .family = Family::V6, .proto = kProtoTcp, .ttl = 64, .tcp_flags = kTcpSyn,
                    .df = true, .has_vlan = false, .sport_be = htons(40000),
                    .dport_be = htons(443), .saddr_off = 22, .daddr_off = 38});
}

TEST(ParserOk, IcmpEcho) {
  auto frame = PacketBuilder().ipv4(kClient4, kVip4).icmpEcho(0x1234, 1).payload(56).build();
  auto info = parseOk(frame, kClient4, kVip4);
  expectInfo(info, {.l3_off = 14, .l4_off = 34, .l3_len = 20 + 8 + 56, .family = Family::V4,
                    .proto = kProtoIcmp, .ttl = 64, .tcp_flags = 0, .df = false,
                    .has_vlan = false, .sport_be = 0, .dport_be = 0, .saddr_off = 26,
                    .daddr_off = 30});
}

TEST(ParserOk, Icmp6Echo) {
  auto frame = PacketBuilder().ipv6(kClient6, kVip6).icmpEcho(0x1234, 1).build();
  auto info = parseOk(frame, kClient6, kVip6);
  expectInfo(info, {.l3_off = 14, .l4_off = 54, .l3_len = 48, .family = Family::V6,
                    .proto = kProtoIcmp6, .ttl = 64, .tcp_flags = 0, .df = true,
                    .has_vlan = false, .sport_be = 0, .dport_be = 0, .saddr_off = 22,
                    .daddr_off = 38});
}

TEST(ParserOk, EthernetPadding) {
  // 54-byte TCP SYN padded to the Ethernet minimum (60, or 64 with the FCS left on).
  for (size_t len : {60u, 64u}) {
    auto frame = v4Tcp().padTo(len).build();
    ASSERT_EQ(frame.size(), len);
    auto info = parseOk(frame, kClient4, kVip4);
    expectInfo(info, {.l3_off = 14, .l4_off = 34, .l3_len = 40, .family = Family::V4,
                      .proto = kProtoTcp, .ttl = 64, .tcp_flags = kTcpSyn, .df = false,
                      .has_vlan = false, .sport_be = htons(40000), .dport_be = htons(80),
                      .saddr_off = 26, .daddr_off = 30});
    // UDP's length must match the IP payload, not the padded frame.
    auto udp = PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).payload(2).padTo(len).build();
    EXPECT_EQ(parseOk(udp, kClient4, kVip4).l3_len, 30);
  }
}

TEST(ParserOk, DontFragment) {
  auto frame = v4Tcp().df().build();
  auto info = parseOk(frame, kClient4, kVip4);
  EXPECT_TRUE(info.df);
  EXPECT_FALSE(parseOk(v4Tcp().build(), kClient4, kVip4).df);
}

TEST(ParserOk, OversizedFrameConsidersFirst64K) {
  // A small IPv4 packet in a frame longer than 65535 bytes is fine (the rest is padding).
  auto small = v4Tcp().padTo(70000).build();
  EXPECT_EQ(parseOk(small, kClient4, kVip4).l3_len, 40);
  // An IPv6 packet of 65575 bytes would not fit l3_len's 16 bits: it lies beyond 64 KiB.
  auto jumbo = PacketBuilder().ipv6(kClient6, kVip6).udp(5353, 53).payload(65535 - 8).build();
  ASSERT_EQ(jumbo.size(), 14u + 40 + 65535);
  EXPECT_VERDICT(jumbo, Drop::BadLength);
}

TEST(Parser, DropLeavesOutputUntouched) {
  PacketInfo info;
  info.l3_off = 0xabcd;
  info.proto = 0x77;
  EXPECT_EQ(name(parse(v4Tcp().badIpChecksum().build(), info)), name(Drop::BadIpHeader));
  EXPECT_EQ(info.l3_off, 0xabcd);
  EXPECT_EQ(info.proto, 0x77);
}

// ---------------------------------------------------------------------------------------------
// The builder's own checksums, against values computed independently (Python struct/socket).

TEST(PacketBuilder, GoldenChecksums) {
  auto syn = PacketBuilder().ipv4(kClient4, kVip4).df().tcp(40000, 80, kTcpSyn).build();
  ASSERT_EQ(syn.size(), 54u);
  EXPECT_EQ(test::get16(syn, 14 + 10), 0xada0);
  EXPECT_EQ(test::get16(syn, 34 + 16), 0x8621);
  auto udp6 = PacketBuilder().ipv6(kClient6, kVip6).udp(5353, 53).payload(4).build();
  EXPECT_EQ(test::get16(udp6, 54 + 6), 0x8d30);
}

TEST(PacketBuilder, ChecksumHelpers) {
  std::vector<std::vector<uint8_t>> frames = {
      v4Tcp().payload(33).build(),
      v4Tcp().vlan(5).ipOptions({1, 1, 1, 1}).tcpOptions({2, 4, 5, 0xb4}).payload(7).build(),
      PacketBuilder().ipv4(kClient4, kVip4).udp(1, 2).payload(9).padTo(60).build(),
      PacketBuilder().ipv4(kClient4, kVip4).icmpEcho(1, 2).payload(11).build(),
      v6Tcp().ipv6Ext(test::kIpv6HopByHop).payload(5).build(),
      PacketBuilder().ipv6(kClient6, kVip6).udp(1, 2).payload(3).build(),
      PacketBuilder().ipv6(kClient6, kVip6).icmpEcho(1, 2).payload(3).build(),
  };
  for (size_t i = 0; i < frames.size(); i++) {
    auto& f = frames[i];
    auto layout = test::locate(f);
    ASSERT_TRUE(layout) << i;
    if (layout->family == Family::V4) {
      EXPECT_TRUE(test::ipv4HeaderChecksumOk(f)) << i;
    }
    EXPECT_TRUE(test::l4ChecksumOk(f)) << i;
    // Rewrite the destination port: the L4 checksum breaks, refreshChecksums repairs it.
    if (layout->proto != kProtoIcmp && layout->proto != kProtoIcmp6) {
      f[*layout->l4_off + 3] ^= 0x40;
      EXPECT_FALSE(test::l4ChecksumOk(f)) << i;
      test::refreshChecksums(f);
      EXPECT_TRUE(test::l4ChecksumOk(f)) << i;
    }
  }
  EXPECT_FALSE(test::ipv4HeaderChecksumOk(v4Tcp().badIpChecksum().build()));
  EXPECT_FALSE(test::l4ChecksumOk(v4Tcp().badL4Checksum().build()));
  EXPECT_FALSE(test::l4ChecksumOk(v6Tcp().badL4Checksum().build()));
  auto ttl = v4Tcp().build();
  ttl[14 + 8]--;
  EXPECT_FALSE(test::ipv4HeaderChecksumOk(ttl));
  test::refreshChecksums(ttl);
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(ttl));
}

// ---------------------------------------------------------------------------------------------
// Robustness

std::vector<std::vector<uint8_t>> validFrames() {
  return {
      v4Tcp().payload(10).build(),
      v4Tcp().vlan(42).ipOptions({0x94, 0x04, 0, 0}).tcpOptions({2, 4, 5, 0xb4}).build(),
      PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).payload(3).build(),
      PacketBuilder().ipv4(kClient4, kVip4).icmpEcho(1, 1).build(),
      v6Tcp().payload(2).build(),
      PacketBuilder().vlan(9).ipv6(kClient6, kVip6).ipv6Ext(test::kIpv6HopByHop)
          .ipv6Ext(test::kIpv6Routing, std::vector<uint8_t>(14, 0)).ipv6Ext(test::kIpv6DestOpts)
          .udp(5353, 53).payload(1).build(),
      PacketBuilder().ipv6(kClient6, kVip6).icmpEcho(1, 1).build(),
  };
}

TEST(ParserRobustness, EveryTruncationIsDropped) {
  for (const auto& frame : validFrames()) {
    ASSERT_EQ(name(verdict(frame)), name(Parse::Ok));
    for (size_t n = 0; n < frame.size(); n++) {
      PacketInfo info;
      EXPECT_NE(parse(truncate(frame, n), info).verdict, Parse::Ok) << "len " << n << " of " << frame.size();
    }
  }
}

TEST(ParserRobustness, ByteFlipFuzz) {
  auto bases = validFrames();
  bases.push_back(v4Tcp().padTo(64).build());
  bases.push_back(PacketBuilder().ipv6(kClient6, kVip6).udp(1, 2).padTo(80).build());
  std::mt19937 rng(20240611);
  size_t ok = 0;
  size_t verdicts[size_t(Drop::Count)] = {};
  for (int iter = 0; iter < 20000; iter++) {
    std::vector<uint8_t> f = bases[rng() % bases.size()];
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; k++) {
      // Mostly the headers (the first 80 bytes), where the parser looks.
      size_t pos = rng() % std::min<size_t>(f.size(), rng() % 4 ? 80 : f.size());
      f[pos] = static_cast<uint8_t>(rng() % 3 ? rng() : f[pos] ^ (1u << (rng() % 8)));
    }
    if (rng() % 8 == 0) f.resize(rng() % (f.size() + 1));
    PacketInfo info;
    ParseResult d = parse(f, info);
    ASSERT_LT(size_t(d.reason), size_t(Drop::Count));
    verdicts[size_t(d.reason)]++;  // Ok and Fragment have their own slots (ParseResult::reason)
    if (d.verdict != Parse::Ok) continue;
    ok++;
    ASSERT_TRUE(info.l3_off == 14 || info.l3_off == 18) << iter;
    ASSERT_LE(info.l4_off, info.l3_off + info.l3_len) << iter;
    ASSERT_LE(info.l3_off + info.l3_len, f.size()) << iter;
    size_t alen = info.family == Family::V4 ? 4 : 16;
    ASSERT_LE(info.daddr_off + alen, info.l4_off) << iter;
    size_t l4_min = info.proto == kProtoTcp ? 20 : 8;
    ASSERT_LE(info.l4_off + l4_min, info.l3_off + info.l3_len) << iter;
  }
  // The loop must exercise both sides.
  EXPECT_GT(ok, 1000u);
  EXPECT_GT(verdicts[size_t(Drop::BadIpHeader)], 100u);
  EXPECT_GT(verdicts[size_t(Drop::BadLength)], 100u);
}


// ---------------------------------------------------------------------------------------------
// Receive offload flags: the IPv4 header checksum is skipped only on RTE_MBUF_F_RX_IP_CKSUM_GOOD.

TEST(ParserOffload, ChecksumSkippedOnlyWhenTheNicSaysGood) {
  const uint64_t bad = uint64_t(1) << 4;  // RTE_MBUF_F_RX_IP_CKSUM_BAD
  ASSERT_EQ(kRxIpCksumMask, kRxIpCksumGood | bad);
  for (const auto& frame : {v4Tcp().badIpChecksum().build(),
                            v4Tcp().ipOptions({0x94, 0x04, 0x00, 0x00}).badIpChecksum().build(),
                            PacketBuilder().vlan(7).ipv4(kClient4, kVip4).udp(5353, 53).payload(3).badIpChecksum().build()}) {
    PacketInfo info;
    EXPECT_EQ(name(verdictWithFlags(frame, kRxIpCksumGood, info)), name(Parse::Ok));
    // Unknown (0), bad, and "none" (both bits: not correct in the packet) keep the check.
    for (uint64_t f : {uint64_t(0), bad, kRxIpCksumMask, ~kRxIpCksumMask})
      EXPECT_EQ(name(verdictWithFlags(frame, f, info)), name(Drop::BadIpHeader)) << f;
  }
  // Only the checksum: every other rule still applies with the flag.
  PacketInfo info;
  EXPECT_EQ(name(verdictWithFlags(v4Tcp().mf().build(), kRxIpCksumGood, info)), name(Parse::Fragment));
  EXPECT_EQ(name(verdictWithFlags(v4Tcp().ihl(4).build(), kRxIpCksumGood, info)), name(Drop::BadIpHeader));
  EXPECT_EQ(name(verdictWithFlags(v4Tcp().tcpDataOffset(4).build(), kRxIpCksumGood, info)), name(Drop::BadLength));
  auto ok = v4Tcp().ttl(9).badIpChecksum().build();
  ASSERT_EQ(name(verdictWithFlags(ok, kRxIpCksumGood, info)), name(Parse::Ok));
  expectInfo(info, {.l3_off = 14, .l4_off = 34, .l3_len = 40, .family = Family::V4, .proto = kProtoTcp,
                    .ttl = 9, .tcp_flags = kTcpSyn, .df = false, .has_vlan = false, .sport_be = htons(40000),
                    .dport_be = htons(80), .saddr_off = 26, .daddr_off = 30});
}

// The straight-line IPv4 path (untagged, IHL 5, TCP/UDP) leaves fields it does not set as the
// general path does: a UDP packet after a TCP one gets tcp_flags 0 and has_vlan false.
TEST(ParserOk, Ipv4UdpAfterTaggedTcpResetsEveryField) {
  PacketInfo info;
  ASSERT_EQ(name(parse(PacketBuilder().vlan(5).ipv4(kClient4, kVip4).tcp(1, 2, kTcpAck | kTcpFin).df().build(), info)),
            name(Parse::Ok));
  ASSERT_TRUE(info.has_vlan);
  auto frame = PacketBuilder().ipv4(kClient4, kVip4).udp(5353, 53).payload(7).ttl(3).build();
  ASSERT_EQ(name(parse(frame, info)), name(Parse::Ok));
  expectInfo(info, {.l3_off = 14, .l4_off = 34, .l3_len = 35, .family = Family::V4, .proto = kProtoUdp,
                    .ttl = 3, .tcp_flags = 0, .df = false, .has_vlan = false, .sport_be = htons(5353),
                    .dport_be = htons(53), .saddr_off = 26, .daddr_off = 30});
}

// Drops decided on the straight-line path leave the output untouched too.
TEST(Parser, FastPathDropsLeaveOutputUntouched) {
  // (A fragment is not in the list: Parse::Fragment fills `out`, see ParserFragment.)
  for (const auto& frame : {v4Tcp().tcpDataOffset(4).build(),
                            PacketBuilder().ipv4(kClient4, kVip4).udp(1, 2).udpLength(9).build(),
                            v4Tcp().ipTotalLength(19).build()}) {
    PacketInfo info;
    info.l3_off = 0xabcd;
    info.proto = 0x77;
    EXPECT_NE(parse(frame, info).verdict, Parse::Ok);
    EXPECT_EQ(info.l3_off, 0xabcd);
    EXPECT_EQ(info.proto, 0x77);
  }
}

}  // namespace
}  // namespace l4lb::dataplane
