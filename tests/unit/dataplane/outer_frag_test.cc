// Outer-header fragmentation (outer_frag.h): fragments of a tunnelled frame carry the frame's
// Ethernet header and a valid copy of its outer IPv4 header (same ID, offset and MF in order,
// DF clear, correct checksum), each fits the MTU, and together they carry the original IP
// payload byte for byte; the original mbuf is freed, every mbuf goes back to its pool; an empty
// pool or too many fragments leave the frame to the caller with the reason.
#include "dataplane/outer_frag.h"

#include <gtest/gtest.h>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <vector>

#include "burst_harness.h"
#include "packet_builder.h"

namespace l4lb::dataplane {
namespace {

using test::Frame;
using test::get16;
using test::ipAddr;
using test::macAddr;
using test::PacketBuilder;

// An IPIP frame: [eth][outer IPv4, DF clear, ID 0x4242][inner IPv4 UDP with `payload` bytes].
Frame tunnelFrame(uint16_t payload) {
  PacketBuilder inner;
  inner.ipv4(ipAddr("198.18.100.7"), ipAddr("198.18.200.1")).ipId(0x1234).df(false).udp(40000, 53).payload(payload);
  const Frame built = inner.build();
  const Frame in(built.begin() + 14, built.end());  // the IP packet
  PacketBuilder outer;
  outer.eth(macAddr("02:00:00:00:00:20"), macAddr("02:00:00:00:01:01"))
      .ipv4(ipAddr("198.19.0.1"), ipAddr("198.19.0.11"))
      .ipId(0x4242)
      .df(false)
      .l4Raw(4, in);
  return outer.build();
}

struct Pools {
  OuterFragPools p{test::outerFragPools()};
  unsigned direct0 = rte_mempool_avail_count(p.direct), indirect0 = rte_mempool_avail_count(p.indirect),
           burst0 = rte_mempool_avail_count(test::burstPool());
  void expectAllBack() const {
    EXPECT_EQ(rte_mempool_avail_count(p.direct), direct0);
    EXPECT_EQ(rte_mempool_avail_count(p.indirect), indirect0);
    EXPECT_EQ(rte_mempool_avail_count(test::burstPool()), burst0);
  }
};

Frame bytesOf(const rte_mbuf* m) {
  Frame f(rte_pktmbuf_pkt_len(m));
  const void* p = rte_pktmbuf_read(m, 0, uint32_t(f.size()), f.data());
  if (p != f.data()) std::memcpy(f.data(), p, f.size());
  return f;
}

TEST(OuterFrag, FragmentCount) {
  EXPECT_EQ(outerFragCount(1500, 1500), 1u);
  EXPECT_EQ(outerFragCount(1501, 1500), 2u);   // 1480 + 1 payload bytes
  EXPECT_EQ(outerFragCount(1940 + 20, 576), 4u);  // 552 per fragment
  EXPECT_EQ(outerFragCount(1500, 27), 0u);
}

TEST(OuterFrag, FragmentsCarryTheFrameWithValidHeaders) {
  for (uint16_t mtu : {uint16_t(576), uint16_t(1000), uint16_t(1500)}) {
    SCOPED_TRACE(mtu);
    Pools pools;
    const Frame in = tunnelFrame(1400 - 28);  // a 1400-byte inner packet, 1420 outer
    ASSERT_EQ(get16(in, 16), 1420);
    rte_mbuf* m = test::frameToMbuf(in);
    ASSERT_NE(m, nullptr);
    rte_mbuf* out[kMaxOuterFrags];
    const OuterFragResult r = fragmentOuter(m, mtu, pools.p, out, kMaxOuterFrags);
    ASSERT_EQ(r.drop, Drop::Ok);
    ASSERT_EQ(r.n, outerFragCount(1420, mtu));
    Frame payload;
    for (uint16_t i = 0; i < r.n; i++) {
      const Frame f = bytesOf(out[i]);
      EXPECT_EQ(Frame(f.begin(), f.begin() + 14), Frame(in.begin(), in.begin() + 14));  // Ethernet
      EXPECT_LE(f.size() - 14, mtu);
      EXPECT_EQ(get16(f, 16), f.size() - 14);
      EXPECT_EQ(get16(f, 18), 0x4242);
      const bool last = i + 1 == r.n;
      EXPECT_EQ(get16(f, 20), (last ? 0 : 0x2000) | uint16_t(payload.size() / 8));  // DF clear
      if (!last) {
        EXPECT_EQ((f.size() - 34) % 8, 0u);
      }
      EXPECT_TRUE(test::ipv4HeaderChecksumOk(f, 14));
      // The rest of the header as in the original (version, TOS, TTL, protocol, addresses).
      EXPECT_EQ(Frame(f.begin() + 22, f.begin() + 24), Frame(in.begin() + 22, in.begin() + 24));
      EXPECT_EQ(Frame(f.begin() + 26, f.begin() + 34), Frame(in.begin() + 26, in.begin() + 34));
      EXPECT_EQ(f[14], in[14]);
      EXPECT_EQ(f[15], in[15]);
      payload.insert(payload.end(), f.begin() + 34, f.end());
    }
    EXPECT_EQ(payload, Frame(in.begin() + 34, in.end()));
    for (uint16_t i = 0; i < r.n; i++) rte_pktmbuf_free(out[i]);
    pools.expectAllBack();  // the original went with its last reference
  }
}

TEST(OuterFrag, TooManyFragmentsLeaveTheFrame) {
  Pools pools;
  const Frame in = tunnelFrame(1400 - 28);
  rte_mbuf* m = test::frameToMbuf(in);
  ASSERT_NE(m, nullptr);
  rte_mbuf* out[kMaxOuterFrags];
  const OuterFragResult r = fragmentOuter(m, 576, pools.p, out, 2);  // needs 3
  EXPECT_EQ(r.drop, Drop::TooBig);
  EXPECT_EQ(bytesOf(m), in);  // given back as it came
  rte_pktmbuf_free(m);
  pools.expectAllBack();
}

TEST(OuterFrag, EmptyPoolIsFragOutNomem) {
  // A direct pool with one mbuf: the second fragment finds it empty. Negative control: with a
  // pool that has room the same frame fragments.
  rte_mempool* tiny = rte_pktmbuf_pool_create("outer_frag_tiny", 1, 0, 0, RTE_PKTMBUF_HEADROOM + 64, SOCKET_ID_ANY);
  ASSERT_NE(tiny, nullptr);
  Pools pools;
  const Frame in = tunnelFrame(1400 - 28);
  rte_mbuf* m = test::frameToMbuf(in);
  ASSERT_NE(m, nullptr);
  rte_mbuf* out[kMaxOuterFrags];
  OuterFragResult r = fragmentOuter(m, 1000, {tiny, pools.p.indirect}, out, kMaxOuterFrags);
  EXPECT_EQ(r.drop, Drop::FragOutNomem);
  EXPECT_EQ(bytesOf(m), in);
  EXPECT_EQ(rte_mempool_avail_count(tiny), 1u);  // what was taken went back
  r = fragmentOuter(m, 1000, {nullptr, pools.p.indirect}, out, kMaxOuterFrags);
  EXPECT_EQ(r.drop, Drop::FragOutNomem);
  r = fragmentOuter(m, 1000, pools.p, out, kMaxOuterFrags);
  ASSERT_EQ(r.drop, Drop::Ok);
  EXPECT_EQ(r.n, 2);
  for (uint16_t i = 0; i < r.n; i++) rte_pktmbuf_free(out[i]);
  pools.expectAllBack();
  rte_mempool_free(tiny);
}

}  // namespace
}  // namespace l4lb::dataplane
