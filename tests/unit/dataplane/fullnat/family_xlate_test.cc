// Full NAT across address families (family_xlate.h) through the worker's burst: an IPv4 client
// to an IPv6 backend and an IPv6 client to an IPv4 one, TCP and UDP, both directions, each frame
// out compared byte for byte with the one the packet builder writes (its checksums computed
// independently of the data plane) and its checksums recomputed; the PROXY v2 header of the
// client's family behind a backend of the other; what is not translated, by its counter.
#include "dataplane/fullnat/family_xlate.h"

#include <gtest/gtest.h>

#include "dataplane/fullnat/fullnat_path.h"
#include "worker_fixture.h"

namespace l4lb::dataplane::wtest {
namespace {

// The default test plan (tests/common/topology.h): wan 198.18.0.1/24 and 2001:db8:ff::1/64 with
// the clients behind its gateways, lan 198.19.0.1/24 and 2001:db8:2::1/64 with the backends.
const IpAddr kC4 = ipAddr("198.18.60.7");
const IpAddr kC6 = ipAddr("2001:db8:60::7");
const IpAddr kV4 = ipAddr("198.18.100.1");
const IpAddr kV6 = ipAddr("2001:db8:100::1");
const IpAddr kBe4 = ipAddr("198.19.0.11");
const IpAddr kBe6 = ipAddr("2001:db8:2::11");
const IpAddr kS4 = ipAddr("198.19.0.2");
const IpAddr kS6 = ipAddr("2001:db8:2::2");
constexpr uint16_t kLo = 40000, kHi = 40003;

VipConfig xVip(const IpAddr& vip, uint16_t port, Proto proto, const IpAddr& backend, const MacAddr& mac,
               uint16_t bport, bool proxy = false) {
  return fullNatVip({.vip = vip, .port = port, .proto = proto, .snat = {kS4, kS6}, .lo = kLo, .hi = kHi,
                     .backend = backend, .mac = mac, .bport = bport, .proxy = proxy});
}

// Every VIP's backends are of the other family.
struct Rig {
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<WorkerState> w;
  Rig() {
    Config c = test::topo::topology();
    c.vips.push_back(xVip(kV4, 80, Proto::Tcp, kBe6, kB6Mac, 8080));
    c.vips.push_back(xVip(kV6, 80, Proto::Tcp, kBe4, kB4Mac, 8080));
    c.vips.push_back(xVip(kV4, 53, Proto::Udp, kBe6, kB6Mac, 5353));
    c.vips.push_back(xVip(kV6, 53, Proto::Udp, kBe4, kB4Mac, 5353));
    c.vips.push_back(xVip(kV6, 443, Proto::Tcp, kBe4, kB4Mac, 8443, true));
    s = build(sb, c);
    w = makeWorker();
    std::string err;
    if (s) w->fullnat = FullNatState::create(s->snat_addrs, 0, 1, SOCKET_ID_ANY, err);
    EXPECT_TRUE(s && w->fullnat) << err;
  }
};

void expectChecksums(const Frame& f, const std::string& what) {
  if (get16(f, 12) == test::kEtherTypeIpv4) {
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(f)) << what;
  }
  EXPECT_TRUE(test::l4ChecksumOk(f)) << what;
}

constexpr uint32_t kIsn = 1000;

TEST(FullNatXlate, TcpIpv4ClientToIpv6BackendBothWays) {
  Rig r;
  const Frame syn = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).tos(0x28).df().tcp(1234, 80, kTcpSyn)
                        .tcpSeq(kIsn).tcpOptions({2, 4, 0x05, 0xb4}).build();
  auto o = runOne(*r.w, *r.s, syn);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  const uint16_t sp = get16(o->bytes, 14 + 40);
  EXPECT_GE(sp, kLo);
  EXPECT_LE(sp, kHi);
  const Frame want = PacketBuilder().eth(kLanMac, kB6Mac).ipv6(kS6, kBe6).tos(0x28).ttl(63).tcp(sp, 8080, kTcpSyn)
                         .tcpSeq(kIsn).tcpOptions({2, 4, 0x05, 0xb4}).build();
  expectFrame(o->bytes, want, "client -> backend");
  expectChecksums(o->bytes, "client -> backend");

  const Frame sa = PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kBe6, kS6).tos(0x10).tcp(8080, sp, kTcpSyn | kTcpAck)
                       .tcpSeq(7000, kIsn + 1).payload(33).build();
  auto b = runOne(*r.w, *r.s, sa, 0, kLan);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->port, kWan);
  const Frame want_b = PacketBuilder().eth(kWanMac, kGwMac).ipv4(kV4, kC4).tos(0x10).ttl(63).df().ipId(0)
                           .tcp(80, 1234, kTcpSyn | kTcpAck).tcpSeq(7000, kIsn + 1).payload(33).build();
  expectFrame(b->bytes, want_b, "backend -> client");
  expectChecksums(b->bytes, "backend -> client");

  // The flow keeps its pair; data both ways.
  auto d = runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).df().tcp(1234, 80, kTcpAck)
                                  .tcpSeq(kIsn + 1, 7001).payload(500).build());
  ASSERT_TRUE(d);
  expectFrame(d->bytes, PacketBuilder().eth(kLanMac, kB6Mac).ipv6(kS6, kBe6).ttl(63).tcp(sp, 8080, kTcpAck)
                            .tcpSeq(kIsn + 1, 7001).payload(500).build(), "data");
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatNew), 1u);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatReverse), 1u);
  expectOnlyDrop(*r.w, Drop::Ok, 0);
}

TEST(FullNatXlate, TcpIpv6ClientToIpv4BackendBothWays) {
  Rig r;
  const Frame syn = PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).tos(0xb8).ttl(20).tcp(4321, 80, kTcpSyn)
                        .tcpSeq(kIsn).build();
  auto o = runOne(*r.w, *r.s, syn);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  const uint16_t sp = get16(o->bytes, 14 + 20);
  const Frame want = PacketBuilder().eth(kLanMac, kB4Mac).ipv4(kS4, kBe4).tos(0xb8).ttl(19).df().ipId(0)
                         .tcp(sp, 8080, kTcpSyn).tcpSeq(kIsn).build();
  expectFrame(o->bytes, want, "client -> backend");
  expectChecksums(o->bytes, "client -> backend");

  const Frame sa = PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBe4, kS4).df().ipId(0x1234)
                       .tcp(8080, sp, kTcpSyn | kTcpAck).tcpSeq(9000, kIsn + 1).payload(7).build();
  auto b = runOne(*r.w, *r.s, sa, 0, kLan);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->port, kWan);
  const Frame want_b = PacketBuilder().eth(kWanMac, kGwMac).ipv6(kV6, kC6).ttl(63).tcp(80, 4321, kTcpSyn | kTcpAck)
                           .tcpSeq(9000, kIsn + 1).payload(7).build();
  expectFrame(b->bytes, want_b, "backend -> client");
  expectChecksums(b->bytes, "backend -> client");
  expectOnlyDrop(*r.w, Drop::Ok, 0);
}

// UDP: an IPv4 datagram without a checksum (0) gets one for IPv6, where it is mandatory; the
// IPv6 side's checksum is carried by the session's difference.
TEST(FullNatXlate, UdpIpv4ClientToIpv6BackendBothWays) {
  for (const bool zero : {false, true}) {
    Rig q;
    Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).udp(5555, 53).payload(30).build();
    if (zero) in[14 + 20 + 6] = in[14 + 20 + 7] = 0;
    auto o = runOne(*q.w, *q.s, in);
    ASSERT_TRUE(o);
    const uint16_t sp = get16(o->bytes, 14 + 40);
    const Frame want = PacketBuilder().eth(kLanMac, kB6Mac).ipv6(kS6, kBe6).ttl(63).udp(sp, 5353).payload(30).build();
    expectFrame(o->bytes, want, zero ? "udp out, no checksum in" : "udp out");
    expectChecksums(o->bytes, "udp out");
    const Frame reply = PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kBe6, kS6).udp(5353, sp).payload(41).build();
    auto b = runOne(*q.w, *q.s, reply, 0, kLan);
    ASSERT_TRUE(b);
    const Frame want_b = PacketBuilder().eth(kWanMac, kGwMac).ipv4(kV4, kC4).ttl(63).df().ipId(0).udp(53, 5555)
                             .payload(41).build();
    expectFrame(b->bytes, want_b, "udp back");
    expectChecksums(b->bytes, "udp back");
    expectOnlyDrop(*q.w, Drop::Ok, 0);
  }
}

TEST(FullNatXlate, UdpIpv6ClientToIpv4BackendBothWays) {
  for (const bool zero : {false, true}) {
    Rig r;
    const Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).udp(6666, 53).payload(19).build();
    auto o = runOne(*r.w, *r.s, in);
    ASSERT_TRUE(o);
    const uint16_t sp = get16(o->bytes, 14 + 20);
    const Frame want = PacketBuilder().eth(kLanMac, kB4Mac).ipv4(kS4, kBe4).ttl(63).df().ipId(0).udp(sp, 5353)
                           .payload(19).build();
    expectFrame(o->bytes, want, "udp out");
    expectChecksums(o->bytes, "udp out");
    // The IPv4 backend's reply, with or without a UDP checksum: the client gets one.
    Frame reply = PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBe4, kS4).udp(5353, sp).payload(64).build();
    if (zero) reply[14 + 20 + 6] = reply[14 + 20 + 7] = 0;
    auto b = runOne(*r.w, *r.s, reply, 0, kLan);
    ASSERT_TRUE(b);
    const Frame want_b = PacketBuilder().eth(kWanMac, kGwMac).ipv6(kV6, kC6).ttl(63).udp(53, 6666).payload(64).build();
    expectFrame(b->bytes, want_b, zero ? "udp back, no checksum in" : "udp back");
    expectChecksums(b->bytes, "udp back");
    expectOnlyDrop(*r.w, Drop::Ok, 0);
  }
}

// The PROXY v2 header carries the client's family: an IPv6 client behind an IPv4 backend gets the
// 52-byte IPv6 header in an IPv4 segment, and the backend's SYN-ACK offers the client an MSS
// lowered by 52.
TEST(FullNatXlate, ProxyHeaderOfTheClientsFamily) {
  Rig r;
  constexpr uint32_t L = 52;
  auto syn = runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).tcp(4321, 443, kTcpSyn)
                                    .tcpSeq(kIsn).build());
  ASSERT_TRUE(syn);
  const uint16_t sp = get16(syn->bytes, 14 + 20);
  auto sa = runOne(*r.w, *r.s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBe4, kS4).df()
                                   .tcp(8443, sp, kTcpSyn | kTcpAck).tcpSeq(9000, kIsn + 1)
                                   .tcpOptions({2, 4, 0x05, 0xb4}).build(), 0, kLan);
  ASSERT_TRUE(sa);
  EXPECT_EQ(get16(sa->bytes, 14 + 40 + 22), 1460 - L);
  expectChecksums(sa->bytes, "syn-ack");
  auto ack = runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).tcp(4321, 443, kTcpAck)
                                    .tcpSeq(kIsn + 1, 9001).payload(10).build());
  ASSERT_TRUE(ack);
  Frame want = PacketBuilder().eth(kLanMac, kB4Mac).ipv4(kS4, kBe4).ttl(63).df().ipId(0)
                   .tcp(sp, 8443, kTcpAck).tcpSeq(kIsn + 1, 9001).payload(L + 10).build();
  // The payload: the header (IPv6, STREAM, 36 bytes of addresses), then the client's 10 bytes.
  const Frame prefix = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 36};
  const size_t at = 14 + 20 + 20;
  std::copy(prefix.begin(), prefix.end(), want.begin() + at);
  const Frame c6 = test::wire::bytesOf(kC6), v6 = test::wire::bytesOf(kV6);
  std::copy(c6.begin(), c6.end(), want.begin() + at + 16);
  std::copy(v6.begin(), v6.end(), want.begin() + at + 32);
  test::put16(want, at + 48, 4321);
  test::put16(want, at + 50, 443);
  for (size_t i = 0; i < 10; i++) want[at + L + i] = uint8_t(i);
  test::refreshChecksums(want);
  expectFrame(ack->bytes, want, "ack with the IPv6 header");
  expectChecksums(ack->bytes, "ack with the IPv6 header");
  EXPECT_EQ(ctr(*r.w, Ctr::ProxyHeaderSent), 1u);
  // The backend's ACK of header and data comes back as the client's 10 bytes.
  auto back = runOne(*r.w, *r.s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBe4, kS4).df()
                                     .tcp(8443, sp, kTcpAck).tcpSeq(9001, kIsn + 1 + L + 10).build(), 0, kLan);
  ASSERT_TRUE(back);
  expectFrame(back->bytes, PacketBuilder().eth(kWanMac, kGwMac).ipv6(kV6, kC6).ttl(63).tcp(443, 4321, kTcpAck)
                               .tcpSeq(9001, kIsn + 11).build(), "ack back");
  expectOnlyDrop(*r.w, Drop::Ok, 0);
}

// IPv4 options and IPv6 extension headers are not translated; nor is a frame without the headroom
// IPv6's 20 more bytes need; and such a packet opens no session. Each against its control: the
// same flow without it passes.
TEST(FullNatXlate, OptionsExtensionHeadersAndNoHeadroomAreDropped) {
  Rig r;
  auto syn4 = [](uint16_t cport) {
    return PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).df().tcp(cport, 80, kTcpSyn).tcpSeq(kIsn);
  };
  EXPECT_FALSE(runOne(*r.w, *r.s, syn4(1).ipOptions({1, 1, 1, 0}).build()));  // NOPs and an end
  expectOnlyDrop(*r.w, Drop::FullNatXlateDropped);
  EXPECT_FALSE(runOne(*r.w, *r.s, syn4(2).build(), 0, kWan, /*no_headroom=*/true));
  expectOnlyDrop(*r.w, Drop::FullNatXlateDropped, 2);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatNew), 0u);  // no source pair taken
  EXPECT_TRUE(runOne(*r.w, *r.s, syn4(1).build()));
  auto syn6 = PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).ipv6Ext(test::kIpv6DestOpts)
                  .tcp(4321, 80, kTcpSyn).tcpSeq(kIsn);
  EXPECT_FALSE(runOne(*r.w, *r.s, syn6.build()));
  expectOnlyDrop(*r.w, Drop::FullNatXlateDropped, 3);
  // An IPv6 frame shrinks: no headroom needed.
  EXPECT_TRUE(runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).tcp(4321, 80, kTcpSyn)
                                     .tcpSeq(kIsn).build(), 0, kWan, true));
  expectOnlyDrop(*r.w, Drop::FullNatXlateDropped, 3);
}

// A session is in the index of its client's family and its pair is of the backend's: the sweep
// ends it there, and the pair goes back to its own address's pool.
TEST(FullNatXlate, TheSweepEndsASessionAcrossFamilies) {
  Rig r;
  ASSERT_TRUE(runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kC6, kV6).udp(7777, 53).payload(8).build()));
  const uint32_t a4 = 0;  // kS4, the first of snat_addresses
  ASSERT_EQ(r.s->snat_addrs[a4].addr, kS4);
  EXPECT_EQ(r.w->fullnat->index(true).size(), 1u);
  EXPECT_EQ(r.w->fullnat->index(false).size(), 0u);
  EXPECT_EQ(r.w->fullnat->usage(a4, 0).in_use, 1u);
  const uint32_t later = r.s->timeouts.udp_ms + 10;
  EXPECT_EQ(sweepFullNat(*r.w, later, r.s->timeouts, 1000), 1u);
  EXPECT_EQ(r.w->fullnat->index(true).size(), 0u);
  EXPECT_EQ(r.w->fullnat->usage(a4, later).in_use, 0u);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatEnded), 1u);
}

// Too big once grown: the IPv4 client with DF is told the MTU less the 20 bytes.
TEST(FullNatXlate, TooBigOnceGrownAnswersWithTheSmallerMtu) {
  Rig r;
  ASSERT_TRUE(runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).df().tcp(1234, 80, kTcpSyn)
                                     .tcpSeq(kIsn).build()));
  const uint16_t mtu = r.s->ports[kLan].mtu;
  auto big = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).df().tcp(1234, 80, kTcpAck).tcpSeq(kIsn + 1, 1)
                 .payload(mtu - 40 - 10).build();  // mtu - 10 bytes of IPv4, mtu + 10 of IPv6
  auto o = runOne(*r.w, *r.s, big);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kWan);
  EXPECT_EQ(o->bytes[14 + 9], 1);        // ICMP
  EXPECT_EQ(o->bytes[14 + 20], 3);       // destination unreachable
  EXPECT_EQ(o->bytes[14 + 20 + 1], 4);   // fragmentation needed
  EXPECT_EQ(get16(o->bytes, 14 + 20 + 6), mtu - 20);
  // 10 bytes fewer fit.
  auto fits = runOne(*r.w, *r.s, PacketBuilder().eth(kGwMac, kWanMac).ipv4(kC4, kV4).df().tcp(1234, 80, kTcpAck)
                                     .tcpSeq(kIsn + 1, 1).payload(mtu - 40 - 20).build());
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->bytes.size(), 14u + mtu);
}

}  // namespace
}  // namespace l4lb::dataplane::wtest
