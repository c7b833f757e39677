// Bytes inserted in front of a TCP segment's payload (src/dataplane/fullnat/segment_prefix.h).
// Each case builds the segment before and the segment it must become (the same headers, the
// inserted bytes then the old payload) with the test PacketBuilder, whose checksum code is its
// own, and compares the mbuf's bytes with it exactly: lengths, IPv4 header checksum, TCP
// checksum and payload order at once. Refused cases must leave the mbuf as it was.
#include "dataplane/fullnat/segment_prefix.h"

#include <gtest/gtest.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/fullnat/proxy_v2.h"
#include "dataplane/parser.h"
#include "packet_builder.h"

namespace l4lb::dataplane::fullnat {
namespace {

using test::ipAddr;
using test::PacketBuilder;
using Frame = std::vector<uint8_t>;

rte_mempool* pool() {
  static rte_mempool* p = rte_pktmbuf_pool_create("segment_prefix_test", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                  SOCKET_ID_ANY);
  return p;
}

struct MbufDeleter {
  void operator()(rte_mbuf* m) const { rte_pktmbuf_free(m); }
};
using Mbuf = std::unique_ptr<rte_mbuf, MbufDeleter>;

// `f` in one mbuf with `headroom` bytes before it; or, with `tail` > 0, its last `tail` bytes in
// a second segment.
Mbuf toMbuf(const Frame& f, uint16_t headroom = RTE_PKTMBUF_HEADROOM, size_t tail = 0) {
  Mbuf m(rte_pktmbuf_alloc(pool()));
  if (!m) return m;
  m->data_off = headroom;
  const size_t first = f.size() - tail;
  std::memcpy(rte_pktmbuf_append(m.get(), uint16_t(first)), f.data(), first);
  if (tail > 0) {
    rte_mbuf* seg = rte_pktmbuf_alloc(pool());
    std::memcpy(rte_pktmbuf_append(seg, uint16_t(tail)), f.data() + first, tail);
    if (rte_pktmbuf_chain(m.get(), seg) != 0) rte_pktmbuf_free(seg);
  }
  return m;
}

Frame bytesOf(const rte_mbuf* m) {
  Frame f(rte_pktmbuf_pkt_len(m));
  const void* p = rte_pktmbuf_read(m, 0, uint32_t(f.size()), f.data());
  if (p != f.data()) std::memcpy(f.data(), p, f.size());
  return f;
}

// The builder's payload pattern (byte i = i & 0xff), with `prefix` in front.
Frame payloadWith(const Frame& prefix, size_t n) {
  Frame p = prefix;
  for (size_t i = 0; i < n; i++) p.push_back(uint8_t(i));
  return p;
}

const IpAddr kSrc4 = ipAddr("198.18.0.2");
const IpAddr kDst4 = ipAddr("198.19.0.11");
const IpAddr kSrc6 = ipAddr("2001:db8:5::2");
const IpAddr kDst6 = ipAddr("2001:db8:1::11");

Frame proxy4() {
  Frame b(kProxyV2MaxLen);
  b.resize(writeProxyV2(b.data(), Family::V4, ipAddr("192.0.2.1").bytes.data(), 0x04dc,
                        ipAddr("198.51.100.10").bytes.data(), 0xbb01, true));
  return b;
}

Frame proxy6() {
  Frame b(kProxyV2MaxLen);
  b.resize(writeProxyV2(b.data(), Family::V6, ipAddr("2001:db8::1").bytes.data(), 0x04dc,
                        ipAddr("2001:db8:ffff::a").bytes.data(), 0xbb01, true));
  return b;
}

// One segment's shape; `with` returns its builder with a given payload.
struct Shape {
  std::string name;
  Family family;
  bool vlan = false;
  std::vector<uint8_t> ip_opts;  // IPv4 options
  bool v6_ext = false;           // an IPv6 destination-options header before TCP
  std::vector<uint8_t> tcp_opts;
  size_t payload = 0;
  size_t pad_to = 0;             // Ethernet padding of the frame before insertion

  PacketBuilder with(const Frame& payload_bytes) const {
    PacketBuilder b;
    if (vlan) b.vlan(42);
    if (family == Family::V4) {
      b.ipv4(kSrc4, kDst4).ipId(0x1234).df();
      if (!ip_opts.empty()) b.ipOptions(ip_opts);
    } else {
      b.ipv6(kSrc6, kDst6);
      if (v6_ext) b.ipv6Ext(test::kIpv6DestOpts);
    }
    b.tcp(40000, 8080, 0x18).tcpSeq(0xfffffff0u, 77).tcpOptions(tcp_opts).payload(payload_bytes);
    return b;
  }
};

struct Offsets {
  uint32_t l3, l4;
};

Offsets offsetsOf(const Frame& f) {
  PacketInfo pi;
  EXPECT_EQ(parsePacket(f.data(), uint32_t(f.size()), pi).verdict, Parse::Ok);
  return {pi.l3_off, pi.l4_off};
}

const std::vector<uint8_t> kTs = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};

const std::vector<Shape> kShapes = {
    {.name = "v4 data", .family = Family::V4, .payload = 100},
    {.name = "v4 bare ack", .family = Family::V4},
    {.name = "v4 bare ack padded to 60", .family = Family::V4, .pad_to = 60},
    {.name = "v4 vlan, timestamps, odd payload", .family = Family::V4, .vlan = true, .tcp_opts = kTs, .payload = 333},
    {.name = "v4 with IP options", .family = Family::V4, .ip_opts = {1, 1, 1, 0}, .payload = 17},
    {.name = "v6 data", .family = Family::V6, .payload = 1000},
    {.name = "v6 bare ack", .family = Family::V6, .tcp_opts = kTs},
    {.name = "v6 extension header, vlan", .family = Family::V6, .vlan = true, .v6_ext = true, .payload = 9},
};

TEST(InsertSegmentPrefix, ProxyHeaderBeforeThePayload) {
  for (const Shape& s : kShapes) {
    for (const Frame& prefix : {proxy4(), proxy6(), Frame{0xaa, 0xbb, 0xcc, 0xdd, 0xee}}) {
      const std::string what = s.name + ", " + std::to_string(prefix.size()) + " bytes";
      PacketBuilder in = s.with(payloadWith({}, s.payload));
      if (s.pad_to != 0) in.padTo(s.pad_to);
      const Frame before = in.build();
      const Offsets o = offsetsOf(before);
      Mbuf m = toMbuf(before);
      const uint16_t data_off = m->data_off;
      ASSERT_TRUE(insertSegmentPrefix(m.get(), o.l3, o.l4, s.family, prefix.data(), uint16_t(prefix.size()))) << what;
      const Frame after = bytesOf(m.get());
      const Frame want = s.with(payloadWith(prefix, s.payload)).build();
      EXPECT_EQ(after, want) << what;
      EXPECT_EQ(size_t(m->data_off), data_off - prefix.size()) << what;  // moved into the headroom
      EXPECT_EQ(rte_pktmbuf_pkt_len(m.get()), want.size()) << what;
      EXPECT_EQ(rte_pktmbuf_data_len(m.get()), want.size()) << what;
      EXPECT_TRUE(test::l4ChecksumOk(after)) << what;
      if (s.family == Family::V4) {
        EXPECT_TRUE(test::ipv4HeaderChecksumOk(after)) << what;
      }
      PacketInfo pi;
      EXPECT_EQ(parsePacket(after.data(), uint32_t(after.size()), pi).verdict, Parse::Ok) << what;
    }
  }
}

TEST(InsertSegmentPrefix, HeadroomOfExactlyTheLengthIsEnough) {
  const Shape s{.name = "v4", .family = Family::V4, .payload = 10};
  const Frame before = s.with(payloadWith({}, 10)).build();
  const Frame prefix = proxy4();
  Mbuf m = toMbuf(before, uint16_t(prefix.size()));
  const Offsets o = offsetsOf(before);
  ASSERT_TRUE(insertSegmentPrefix(m.get(), o.l3, o.l4, Family::V4, prefix.data(), uint16_t(prefix.size())));
  EXPECT_EQ(rte_pktmbuf_headroom(m.get()), 0);
  EXPECT_EQ(bytesOf(m.get()), s.with(payloadWith(prefix, 10)).build());
}

TEST(InsertSegmentPrefix, ZeroLengthChangesNothing) {
  const Frame before = kShapes[0].with(payloadWith({}, 100)).build();
  Mbuf m = toMbuf(before);
  const Offsets o = offsetsOf(before);
  EXPECT_TRUE(insertSegmentPrefix(m.get(), o.l3, o.l4, Family::V4, nullptr, 0));
  EXPECT_EQ(bytesOf(m.get()), before);
}

// Every refusal leaves the mbuf exactly as it was: bytes, lengths, data offset.
void expectRefused(Mbuf& m, uint32_t l3, uint32_t l4, Family fam, const std::string& what) {
  const Frame before = bytesOf(m.get());
  const uint16_t data_off = m->data_off;
  const Frame prefix = proxy4();
  EXPECT_FALSE(insertSegmentPrefix(m.get(), l3, l4, fam, prefix.data(), uint16_t(prefix.size()))) << what;
  EXPECT_EQ(bytesOf(m.get()), before) << what;
  EXPECT_EQ(m->data_off, data_off) << what;
  EXPECT_EQ(rte_pktmbuf_pkt_len(m.get()), before.size()) << what;
}

TEST(InsertSegmentPrefix, RefusesWhatItCannotDoAndLeavesTheMbuf) {
  const Frame v4 = kShapes[0].with(payloadWith({}, 100)).build();  // l3 14, l4 34
  const Frame v6 = kShapes[5].with(payloadWith({}, 100)).build();  // l3 14, l4 54
  {
    Mbuf m = toMbuf(v4, RTE_PKTMBUF_HEADROOM, 40);
    ASSERT_EQ(m->nb_segs, 2);
    expectRefused(m, 14, 34, Family::V4, "chained mbuf");
  }
  {
    Mbuf m = toMbuf(v4, 27);
    expectRefused(m, 14, 34, Family::V4, "headroom one short");
  }
  {
    Mbuf m = toMbuf(v4);
    rte_mbuf* clone = rte_pktmbuf_clone(m.get(), pool());
    ASSERT_NE(clone, nullptr);
    expectRefused(m, 14, 34, Family::V4, "shared (refcnt 2)");
    Mbuf c(clone);
    expectRefused(c, 14, 34, Family::V4, "indirect");
  }
  struct {
    std::string what;
    Frame frame;
    uint32_t l3, l4;
    Family fam;
  } bad[] = {
      {"l4 before l3", v4, 34, 14, Family::V4},
      {"IPv4 header shorter than 20 before l4", v4, 14, 30, Family::V4},
      {"IPv6 header shorter than 40 before l4", v6, 14, 34, Family::V6},
      {"TCP header past the frame", test::truncate(v4, 50), 14, 34, Family::V4},
      {"l4 far past the frame", v4, 14, 0xfffffff0u, Family::V4},
      {"IP length past the frame", test::truncate(v4, 100), 14, 34, Family::V4},
      {"IPv6 length past the frame", test::truncate(v6, 120), 14, 54, Family::V6},
      {"TCP options past the IP packet",
       PacketBuilder().ipv4(kSrc4, kDst4).tcp(1, 2, 0x10).tcpDataOffset(15).build(), 14, 34, Family::V4},
      {"TCP data offset below 5",
       PacketBuilder().ipv4(kSrc4, kDst4).tcp(1, 2, 0x10).tcpDataOffset(4).payload(20).build(), 14, 34, Family::V4},
  };
  for (auto& b : bad) {
    Mbuf m = toMbuf(b.frame);
    expectRefused(m, b.l3, b.l4, b.fam, b.what);
  }
}

}  // namespace
}  // namespace l4lb::dataplane::fullnat
