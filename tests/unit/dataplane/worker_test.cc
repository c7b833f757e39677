// Worker (processBurst) end to end on mbufs, without ports: golden output bytes for every
// forwarding mode (expected frames built independently with the test PacketBuilder or by hand for
// outer headers, and checked with its own checksum code) and one test per drop verdict.
#include "mode_fixture.h"
#include "worker_fixture.h"

namespace l4lb::dataplane {
namespace {

using namespace wtest;  // NOLINT(google-build-using-namespace): the shared fixture
using namespace test::wire;  // NOLINT(google-build-using-namespace): expected headers

// ---------------------------------------------------------------------------------------------
// (c) Forwarding: golden bytes

Frame ipPacketOf(const Frame& frame, size_t l3_off = 14) {
  auto l = test::locateAt(frame, l3_off);
  return Frame(frame.begin() + std::ptrdiff_t(l3_off), frame.begin() + std::ptrdiff_t(l->l3_end));
}

// vips[0] = 192.0.2.1:80/tcp -> 10.0.0.11 (:8080 for NAT); vips[1] = [2001:db8:1::1]:53/udp ->
// fd00::11 (:5353 for NAT). Both on lan.
Config fwdConfig(FwdMode mode) {
  return withTwoVips(topology(), {kVip4, kB4, kB4Mac, kVip6, kB6, kB6Mac}, mode);
}

constexpr uint16_t kCport4 = 40000, kCport6 = 40001;

PacketBuilder clientTcp4(uint16_t payload = 100) {
  PacketBuilder b;
  b.eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).tos(0x28).ipId(0x1234).df().tcp(kCport4, 80, kTcpSyn);
  b.tcpSeq(1000, 0).payload(payload);
  return b;
}
PacketBuilder clientUdp6(uint16_t payload = 60) {
  PacketBuilder b;
  b.eth(kClientMac, kWanMac).ipv6(kClient6, kVip6).tos(0x28).udp(kCport6, 53).payload(payload);
  return b;
}

struct Golden {
  Frame in4, in6;
  Frame want4, want6;
};

Golden golden(FwdMode mode, const Frame& in4, const Frame& in6) {
  Golden g{in4, in6, {}, {}};
  const Frame ip4 = ipPacketOf(in4, in4[12] == 0x81 ? 18 : 14), ip6 = ipPacketOf(in6, in6[12] == 0x81 ? 18 : 14);
  const uint32_t h4 = flowHash4(kClient4, kVip4, kCport4, 80, kProtoTcp);
  const uint32_t h6 = flowHash6(kClient6, kVip6, kCport6, 53, kProtoUdp);
  switch (mode) {
    case FwdMode::Dsr:
      g.want4 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ip4});
      g.want6 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ip6});
      break;
    case FwdMode::Ipip:
      g.want4 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 4, uint16_t(ip4.size()), 0x28, true), ip4});
      g.want6 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 41, uint16_t(ip6.size()), 0x28, h6), ip6});
      break;
    case FwdMode::Gue: {
      const uint16_t l4 = uint16_t(8 + ip4.size()), l6 = uint16_t(8 + ip6.size());
      g.want4 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 17, l4, 0x28, true),
                     udpHdr(uint16_t(0x8000 | (h4 & 0x7fff)), 6080, l4), ip4});  // UDP checksum 0 (IPv4)
      g.want6 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 17, l6, 0x28, h6),
                     udpHdr(uint16_t(0x8000 | (h6 & 0x7fff)), 6080, l6), ip6});
      auto l = test::locate(g.want6);
      test::put16(g.want6, 14 + 40 + 6, *test::l4Checksum(g.want6, *l));
      break;
    }
    case FwdMode::Nat: {
      auto b4 = clientTcp4(uint16_t(ip4.size() - 40));
      b4.eth(kLanMac, kB4Mac).ipv4(kClient4, kB4).ttl(63).tcp(kCport4, 8080, kTcpSyn);
      g.want4 = b4.build();
      auto b6 = clientUdp6(uint16_t(ip6.size() - 48));
      b6.eth(kLanMac, kB6Mac).ipv6(kClient6, kB6).ttl(63).udp(kCport6, 5353);
      g.want6 = b6.build();
      break;
    }
    case FwdMode::FullNat:
      ADD_FAILURE() << "full NAT has its own suite (fullnat_path_test.cc)";
      break;
  }
  return g;
}

// Checksums of every layer of an output frame, by the builder's independent code.
void expectChecksums(FwdMode mode, const Frame& f, Family outer, const std::string& what) {
  if (mode == FwdMode::Dsr || mode == FwdMode::Nat) {
    if (outer == Family::V4) {
      EXPECT_TRUE(test::ipv4HeaderChecksumOk(f)) << what;
    }
    EXPECT_TRUE(test::l4ChecksumOk(f)) << what;
    return;
  }
  const size_t ip = outer == Family::V4 ? 20 : 40;
  const size_t inner = 14 + ip + (mode == FwdMode::Gue ? 8 : 0);
  if (outer == Family::V4) {
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(f, 14)) << what;
  }
  if (mode == FwdMode::Gue && outer == Family::V6) {
    EXPECT_TRUE(test::l4ChecksumOk(f)) << what << " outer UDP";
  }
  if (mode == FwdMode::Gue && outer == Family::V4) {
    EXPECT_EQ(get16(f, 14 + 20 + 6), 0) << what;
  }
  auto l = test::locateAt(f, inner);
  ASSERT_TRUE(l) << what;
  if (l->family == Family::V4) {
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(f, inner)) << what;
  }
  EXPECT_TRUE(test::l4ChecksumOkAt(f, inner)) << what << " inner L4";
}

class Forwarding : public test::PerMode<Forwarding> {
 public:
  static Config config(FwdMode m) { return fwdConfig(m); }
  static std::unique_ptr<WorkerState> worker() { return makeWorker(); }
};

TEST_P(Forwarding, GoldenTcp4AndUdp6) {
  Golden g = golden(mode, clientTcp4().build(), clientUdp6().build());
  auto o4 = runOne(*w, *s, g.in4);
  auto o6 = runOne(*w, *s, g.in6);
  ASSERT_TRUE(o4 && o6);
  EXPECT_EQ(o4->port, kLan);
  EXPECT_EQ(o6->port, kLan);
  expectFrame(o4->bytes, g.want4, "tcp4");
  expectFrame(o6->bytes, g.want6, "udp6");
  expectChecksums(mode, o4->bytes, Family::V4, "tcp4");
  expectChecksums(mode, o6->bytes, Family::V6, "udp6");
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 2u);
}

TEST_P(Forwarding, VlanTaggedInputLeavesUntagged) {
  Golden g = golden(mode, clientTcp4().vlan(100).build(), clientUdp6().vlan(200, test::kEtherTypeVlan, 5).build());
  ASSERT_EQ(get16(g.in4, 12), 0x8100);
  auto o4 = runOne(*w, *s, g.in4);
  auto o6 = runOne(*w, *s, g.in6);
  ASSERT_TRUE(o4 && o6);
  expectFrame(o4->bytes, g.want4, "tcp4 vlan");
  expectFrame(o6->bytes, g.want6, "udp6 vlan");
  expectChecksums(mode, o4->bytes, Family::V4, "tcp4 vlan");
  expectChecksums(mode, o6->bytes, Family::V6, "udp6 vlan");
}

TEST_P(Forwarding, EthernetPaddingTrimmed) {
  // 54-byte IPv4 TCP (no payload) padded to 64; 62-byte IPv6 UDP padded to 80 (padding bytes 0xee
  // would show up if copied; the builder pads with zeros, so also compare lengths).
  const Frame in4 = clientTcp4(0).padTo(64).build();
  const Frame in6 = clientUdp6(0).padTo(80).build();
  ASSERT_EQ(in4.size(), 64u);
  Golden g = golden(mode, in4, in6);
  auto o4 = runOne(*w, *s, in4);
  auto o6 = runOne(*w, *s, in6);
  ASSERT_TRUE(o4 && o6);
  expectFrame(o4->bytes, g.want4, "tcp4 padded");
  expectFrame(o6->bytes, g.want6, "udp6 padded");
  if (mode == FwdMode::Ipip) {
    EXPECT_EQ(o4->bytes.size(), 14u + 20 + 40);
    EXPECT_EQ(get16(o4->bytes, 16), 40 + 20);  // outer total length
  }
  if (mode == FwdMode::Dsr || mode == FwdMode::Nat) {
    EXPECT_EQ(o4->bytes.size(), 54u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, Forwarding,
                         ::testing::Values(FwdMode::Dsr, FwdMode::Ipip, FwdMode::Gue, FwdMode::Nat),
                         [](const auto& p) { return std::string(toString(p.param)); });

// Tunnels across families: IPv4 VIP to an IPv6 backend (RFC 2473, next header 4) and IPv6 VIP
// to an IPv4 backend (RFC 4213 style, protocol 41, DF set: IPv6 is never fragmented en route).
TEST(Tunnel, CrossFamilyGolden) {
  for (FwdMode mode : {FwdMode::Ipip, FwdMode::Gue}) {
    SCOPED_TRACE(std::string(toString(mode)));
    Config c = fwdConfig(mode);
    c.vips[0].backends[0] = makeBackend(kB6, kB6Mac);
    c.vips[1].backends[0] = makeBackend(kB4, kB4Mac);
    SnapshotBuilder sb;
    auto s = build(sb, c);
    ASSERT_TRUE(s);
    auto w = makeWorker();
    const Frame in4 = clientTcp4().build(), in6 = clientUdp6().build();
    const Frame ip4 = ipPacketOf(in4), ip6 = ipPacketOf(in6);
    const uint32_t h4 = flowHash4(kClient4, kVip4, kCport4, 80, kProtoTcp);
    const uint32_t h6 = flowHash6(kClient6, kVip6, kCport6, 53, kProtoUdp);
    Frame want4, want6;
    if (mode == FwdMode::Ipip) {
      want4 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 4, uint16_t(ip4.size()), 0x28, h4), ip4});
      // Outer IPv4 ID 1: the worker's second tunnelled packet (RFC 6864 counter).
      want6 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 41, uint16_t(ip6.size()), 0x28, true, 64, 1), ip6});
    } else {
      const uint16_t l4 = uint16_t(8 + ip4.size()), l6 = uint16_t(8 + ip6.size());
      want4 = cat({ethHdr(kB6Mac, kLanMac, 0x86dd), ipv6Hdr(kLan6, kB6, 17, l4, 0x28, h4),
                   udpHdr(uint16_t(0x8000 | (h4 & 0x7fff)), 6080, l4), ip4});
      test::put16(want4, 14 + 40 + 6, *test::l4Checksum(want4, *test::locate(want4)));
      want6 = cat({ethHdr(kB4Mac, kLanMac, 0x0800), ipv4Hdr(kLan4, kB4, 17, l6, 0x28, true, 64, 1),
                   udpHdr(uint16_t(0x8000 | (h6 & 0x7fff)), 6080, l6), ip6});
    }
    auto o4 = runOne(*w, *s, in4);
    auto o6 = runOne(*w, *s, in6);
    ASSERT_TRUE(o4 && o6);
    expectFrame(o4->bytes, want4, "tcp4 in v6");
    expectFrame(o6->bytes, want6, "udp6 in v4");
    expectChecksums(mode, o4->bytes, Family::V6, "tcp4 in v6");
    expectChecksums(mode, o6->bytes, Family::V4, "udp6 in v4");
    // The too-big threshold follows the outer family: 40 (+8) bytes for an IPv6 outer header.
    const uint16_t room = uint16_t(1500 - 40 - (mode == FwdMode::Gue ? 8 : 0));
    auto fits = runOne(*w, *s, clientTcp4(uint16_t(room - 40)).build());
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->port, kLan);
    auto icmp = runOne(*w, *s, clientTcp4(uint16_t(room - 39)).build());
    ASSERT_TRUE(icmp);
    EXPECT_EQ(icmp->port, kWan);
    EXPECT_EQ(icmp->bytes[14 + 20], 3);
    EXPECT_EQ(get16(icmp->bytes, 14 + 20 + 6), room);
  }
}

TEST(Gue, SourcePortStablePerFlowAndInUpperHalf) {
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(FwdMode::Gue));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  // One flow: SYN, ACK, data of other sizes: one source port.
  std::set<uint16_t> one;
  const std::vector<std::pair<uint8_t, int>> pkts = {{kTcpSyn, 0}, {kTcpAck, 0}, {kTcpAck, 500}, {uint8_t(kTcpAck | kTcpFin), 1}};
  for (auto [flags, len] : pkts) {
    auto o = runOne(*w, *s, clientTcp4(uint16_t(len)).tcp(kCport4, 80, flags).build());
    ASSERT_TRUE(o);
    one.insert(get16(o->bytes, 34));
  }
  EXPECT_EQ(one.size(), 1u);
  // Many flows: all in 32768..65535, and spread.
  std::set<uint16_t> ports;
  for (uint32_t i = 0; i < 200; i++) {
    auto o = runOne(*w, *s, tcpTo(clientAddr(i), uint16_t(3000 + i)));
    ASSERT_TRUE(o);
    const uint16_t sp = get16(o->bytes, 34);
    EXPECT_GE(sp, 32768);
    EXPECT_EQ(get16(o->bytes, 36), 6080);
    ports.insert(sp);
  }
  EXPECT_GT(ports.size(), 190u);
}

TEST(Nat, ReverseRewrittenToVip) {
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(FwdMode::Nat));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  const uint8_t synack = kTcpSyn | kTcpAck;
  const Frame in4 = PacketBuilder()
                        .eth(kB4Mac, kLanMac)
                        .ipv4(kB4, kClient4)
                        .ipId(7)
                        .df()
                        .tcp(8080, kCport4, synack)
                        .tcpSeq(5000, 1001)
                        .payload(50)
                        .build();
  const Frame want4 = PacketBuilder()
                          .eth(kWanMac, kGwMac)
                          .ipv4(kVip4, kClient4)
                          .ttl(63)
                          .ipId(7)
                          .df()
                          .tcp(80, kCport4, synack)
                          .tcpSeq(5000, 1001)
                          .payload(50)
                          .build();
  const Frame in6 = PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kB6, kClient6).udp(5353, kCport6).payload(33).build();
  const Frame want6 =
      PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).ttl(63).udp(53, kCport6).payload(33).build();
  auto o4 = runOne(*w, *s, in4, 0, kLan);
  auto o6 = runOne(*w, *s, in6, 0, kLan);
  ASSERT_TRUE(o4 && o6);
  EXPECT_EQ(o4->port, kWan);
  EXPECT_EQ(o6->port, kWan);
  expectFrame(o4->bytes, want4, "reverse tcp4");
  expectFrame(o6->bytes, want6, "reverse udp6");
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o4->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o4->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o6->bytes));
  EXPECT_EQ(ctr(*w, Ctr::NatReverse), 2u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 0u);  // stateless
  EXPECT_EQ(w->flows4->size(), 0u);
  // A reply from the wrong source port is not ours: no open relay.
  runOne(*w, *s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kClient4).tcp(8081, kCport4, kTcpAck).build(), 0, kLan);
  expectOnlyDrop(*w, Drop::NoVip);
}

TEST(Nat, TtlDecrementAndExpiry) {
  SnapshotBuilder sb;
  auto s = build(sb, fwdConfig(FwdMode::Nat));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  auto o = runOne(*w, *s, clientTcp4().ttl(2).build());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->bytes[14 + 8], 1);
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  EXPECT_FALSE(runOne(*w, *s, clientTcp4().ttl(1).build()));
  EXPECT_FALSE(runOne(*w, *s, clientTcp4().ttl(0).build()));
  EXPECT_FALSE(runOne(*w, *s, clientUdp6().ttl(1).build()));
  // Reverse direction too.
  EXPECT_FALSE(runOne(*w, *s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kClient4).ttl(1).tcp(8080, kCport4, kTcpAck).build(), 0, kLan));
  expectOnlyDrop(*w, Drop::TtlExceeded, 4);
  // DSR and tunnels do not touch the TTL.
  auto sd = build(sb, fwdConfig(FwdMode::Dsr));
  auto od = runOne(*w, *sd, clientTcp4().ttl(1).build());
  ASSERT_TRUE(od);
  EXPECT_EQ(od->bytes[14 + 8], 1);
}

TEST(Nat, UdpChecksumCornerCases) {
  SnapshotBuilder sb;
  Config c = fwdConfig(FwdMode::Nat);
  c.vips.push_back(c.vips[1]);
  c.vips[2].address = ipAddr("192.0.2.2");
  c.vips[2].backends[0] = makeBackend(ipAddr("10.0.0.12"), kB6Mac, 1, 5353);
  auto s = build(sb, c);
  ASSERT_TRUE(s);
  auto w = makeWorker();
  // IPv4 UDP without checksum stays without one; with one, it stays valid.
  Frame nock = PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, ipAddr("192.0.2.2")).udp(1111, 53).payload(20).build();
  test::put16(nock, 14 + 20 + 6, 0);
  auto o = runOne(*w, *s, nock);
  ASSERT_TRUE(o);
  EXPECT_EQ(get16(o->bytes, 14 + 20 + 6), 0);
  EXPECT_EQ(get16(o->bytes, 14 + 20 + 2), 5353);
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o->bytes));
  // Many source ports: every rewritten checksum verifies and is never 0.
  for (uint16_t sp = 1; sp < 600; sp++) {
    auto r = runOne(*w, *s, PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, ipAddr("192.0.2.2")).udp(sp, 53).payload(sp % 7).build());
    ASSERT_TRUE(r);
    ASSERT_TRUE(test::l4ChecksumOk(r->bytes)) << sp;
  }
}

// ---------------------------------------------------------------------------------------------
// (d) Drop verdicts, one per test

struct DropFixture : ::testing::Test {
  void SetUp() override {
    s = build(sb, fwdConfig(FwdMode::Ipip));
    ASSERT_TRUE(s);
    w = makeWorker();
  }
  // Sends one frame, expects it dropped for reason `d` and nothing else counted as a drop.
  void expectDropped(const Frame& f, Drop d, const Snapshot* snap = nullptr, uint16_t ingress = kWan) {
    auto out = run(*w, snap ? *snap : *s, {f}, 0, ingress);
    EXPECT_TRUE(out.empty()) << "expected drop " << toString(d);
    expectOnlyDrop(*w, d);
    EXPECT_EQ(ctr(*w, Ctr::RxPackets), 1u);
    EXPECT_EQ(ctr(*w, Ctr::RxBytes), f.size());
  }
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<WorkerState> w;
};

TEST_F(DropFixture, TooShort) { expectDropped(Frame(10, 0xab), Drop::TooShort); }

TEST_F(DropFixture, TooShortIpHeader) {
  Frame f = clientTcp4().build();
  f.resize(14 + 12);
  expectDropped(f, Drop::TooShort);
}

TEST_F(DropFixture, NotIp) {
  expectDropped(PacketBuilder().eth(kClientMac, kWanMac).etherType(test::kEtherTypeArp).payload(28).build(), Drop::NotIp);
}

TEST_F(DropFixture, BadIpHeader) { expectDropped(clientTcp4().badIpChecksum().build(), Drop::BadIpHeader); }

TEST_F(DropFixture, BadLength) { expectDropped(clientTcp4().ipTotalLength(1000).build(), Drop::BadLength); }

TEST_F(DropFixture, Fragment) { expectDropped(clientTcp4().mf().build(), Drop::Fragment); }

TEST_F(DropFixture, UnsupportedProto) {
  expectDropped(PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, kVip4).l4Raw(test::kIpProtoGre, {0, 0, 0x08, 0}).build(),
                Drop::UnsupportedProto);
}

TEST_F(DropFixture, Icmp) {
  // Echo to a VIP is answered (slow_path_test.cc); to another address, on a port without an
  // exception path, it is still counted here.
  expectDropped(PacketBuilder().eth(kClientMac, kWanMac).ipv4(kClient4, ipAddr("192.0.2.99")).icmpEcho(1, 1).payload(8).build(),
                Drop::Icmp);
}

TEST_F(DropFixture, NoVip) {
  // Wrong address, wrong port, wrong protocol: all not VIPs.
  expectDropped(tcpTo(kClient4, 1000, kTcpSyn, 80, ipAddr("192.0.2.99")), Drop::NoVip);
  run(*w, *s, {tcpTo(kClient4, 1000, kTcpSyn, 81), udpTo(kClient4, 1000, 80)});
  expectOnlyDrop(*w, Drop::NoVip, 3);
}

TEST_F(DropFixture, NoBackendEmptyVip) {
  Config c = fwdConfig(FwdMode::Ipip);
  c.vips[0].backends.clear();
  auto empty = build(sb, c);
  ASSERT_TRUE(empty);
  expectDropped(clientTcp4().build(), Drop::NoBackend, empty.get());
  EXPECT_EQ(w->flows4->size(), 0u);
}

TEST_F(DropFixture, NoBackendAllUnhealthy) {
  Snapshot down = *s;
  for (auto& b : down.backends) b.state = BackendState::Unhealthy;
  for (auto& v : down.vips) std::fill(v.maglev.begin(), v.maglev.end(), kNoBackend);
  // Established under the healthy snapshot, then every backend fails.
  ASSERT_TRUE(runOne(*w, *s, clientTcp4().build()));
  EXPECT_FALSE(runOne(*w, down, clientTcp4().tcp(kCport4, 80, kTcpAck).build()));
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), 1u);
  EXPECT_FALSE(runOne(*w, down, tcpTo(kClient4, 999)));
  expectOnlyDrop(*w, Drop::NoBackend, 2);
  // Round robin with an empty sequence, too.
  Config c = schedConfig(Scheduler::RoundRobin, {1});
  c.vips[0].backends.clear();
  auto rr = build(sb, c);
  ASSERT_TRUE(rr);
  EXPECT_FALSE(runOne(*w, *rr, tcpTo(kClient4, 999)));
  expectOnlyDrop(*w, Drop::NoBackend, 3);
}

TEST_F(DropFixture, TtlExceeded) {
  auto nat = build(sb, fwdConfig(FwdMode::Nat));
  expectDropped(clientTcp4().ttl(1).build(), Drop::TtlExceeded, nat.get());
}

TEST_F(DropFixture, TooBigWithoutDfFragmentedOnOuterHeader) {
  // 1481-byte IPv4 packet + 20 bytes of IPIP > 1500, DF clear: fragmented on the outer header
  // (outer_frag.h) into two fragments to the backend, each within the MTU.
  const Frame f = clientTcp4(1441).df(false).build();
  ASSERT_EQ(get16(f, 16), 1481);
  auto out = run(*w, *s, {f});
  ASSERT_EQ(out.size(), 2u);
  Frame payload;
  for (size_t i = 0; i < out.size(); i++) {
    const Frame& o = out[i].bytes;
    EXPECT_EQ(out[i].port, kLan);
    EXPECT_LE(o.size() - 14, 1500u);
    EXPECT_EQ(get16(o, 16), o.size() - 14);
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(o, 14));
    EXPECT_EQ(get16(o, 20), (i == 0 ? 0x2000 : 0) | uint16_t(payload.size() / 8));  // MF, offset; DF clear
    payload.insert(payload.end(), o.begin() + 34, o.end());
  }
  EXPECT_EQ(get16(out[0].bytes, 18), get16(out[1].bytes, 18));  // one outer ID
  EXPECT_EQ(payload, ipPacketOf(f));                              // the inner packet, whole
  EXPECT_EQ(ctr(*w, Ctr::TunnelFragmented), 1u);
  expectOnlyDrop(*w, Drop::Ok, 0);
  // One byte less fits exactly: one frame, not fragmented.
  ASSERT_TRUE(runOne(*w, *s, clientTcp4(1440).df(false).tcp(kCport4 + 1, 80, kTcpSyn).build()));
  EXPECT_EQ(ctr(*w, Ctr::TunnelFragmented), 1u);
}

TEST_F(DropFixture, TooBigWithoutDfNoFragmentPools) {
  // Without outer-fragment mbufs the packet is a counted frag_out_nomem drop.
  w->outer_frag = {};
  const Frame f = clientTcp4(1441).df(false).build();
  expectDropped(f, Drop::FragOutNomem);
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 0u);
  EXPECT_EQ(ctr(*w, Ctr::TunnelFragmented), 0u);
}

TEST_F(DropFixture, OuterFragmentsBoundedByTxBatch) {
  // A burst of kBurst packets that each need 4 outer fragments (1940-byte inner packets, lan
  // MTU 576: 552 bytes per fragment): fragments may fill a port's batch only up to
  // kTxBatchCap - kBurst; past that each packet is one tx_full drop, and the batch never
  // overflows (a sanitizer build would catch a write past TxBatch::pkts).
  Config c = fwdConfig(FwdMode::Ipip);
  c.ports[1].mtu = 576;
  auto small = build(sb, c);
  ASSERT_TRUE(small);
  std::vector<Frame> frames;
  for (uint16_t i = 0; i < kBurst; i++)
    frames.push_back(clientTcp4(1900).df(false).tcp(uint16_t(kCport4 + i), 80, kTcpSyn).build());
  ASSERT_EQ(get16(frames[0], 16), 1940);
  auto out = run(*w, *small, frames);
  const size_t fragmented = (kTxBatchCap - kBurst) / 4;  // 24 packets of 4 fragments
  ASSERT_LT(fragmented, size_t(kBurst));                 // the bound is reached
  EXPECT_EQ(out.size(), 4 * fragmented);
  for (const auto& o : out) EXPECT_LE(o.bytes.size() - 14, 576u);
  EXPECT_EQ(ctr(*w, Ctr::TunnelFragmented), fragmented);
  expectOnlyDrop(*w, Drop::TxFull, kBurst - fragmented);
}

TEST_F(DropFixture, NoRoute) {
  Config c = fwdConfig(FwdMode::Nat);
  c.ports[0].gateway4.reset();
  auto nat = build(sb, c);
  ASSERT_TRUE(nat);
  expectDropped(PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kClient4).tcp(8080, kCport4, kTcpAck).build(), Drop::NoRoute,
                nat.get(), kLan);
}

TEST_F(DropFixture, NoHeadroom) {
  auto out = run(*w, *s, {clientTcp4().build()}, 0, kWan, /*no_headroom=*/true);
  EXPECT_TRUE(out.empty());
  expectOnlyDrop(*w, Drop::NoHeadroom);
}

TEST_F(DropFixture, RxCountersAndMixedBurst) {
  std::vector<Frame> fs = {clientTcp4().build(), Frame(10, 0), clientUdp6().build(), clientTcp4().mf().build(),
                           tcpTo(kClient4, 1, kTcpSyn, 9)};
  uint64_t bytes = 0;
  for (auto& f : fs) bytes += f.size();
  auto out = run(*w, *s, fs);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(ctr(*w, Ctr::RxPackets), 5u);
  EXPECT_EQ(ctr(*w, Ctr::RxBytes), bytes);
  EXPECT_EQ(w->counters.totalDrops(), 3u);
  EXPECT_EQ(w->counters.get(Drop::TooShort), 1u);
  EXPECT_EQ(w->counters.get(Drop::Fragment), 1u);
  EXPECT_EQ(w->counters.get(Drop::NoVip), 1u);
  // TX is counted by workerMain when the NIC accepts the packets, not by processBurst.
  EXPECT_EQ(ctr(*w, Ctr::TxPackets), 0u);
}

// ICMP "fragmentation needed" for DF IPv4 over the tunnel MTU: golden reply.
TEST_F(DropFixture, IcmpTooBigIpv4) {
  const Frame in = clientTcp4(1460).tcp(kCport4, 80, kTcpAck).build();  // 1500-byte IP packet, DF
  ASSERT_EQ(get16(in, 16), 1500);
  auto out = run(*w, *s, {in});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kWan);  // back where it came from
  const Frame quote(in.begin() + 14, in.begin() + 14 + 548);
  Frame icmp = {3, 4, 0, 0, 0, 0, uint8_t(1480 >> 8), uint8_t(1480 & 0xff)};
  icmp.insert(icmp.end(), quote.begin(), quote.end());
  test::put16(icmp, 2, test::checksumFromSum(test::onesSum(icmp)));
  const Frame want = cat({ethHdr(kClientMac, kWanMac, 0x0800),
                          ipv4Hdr(kVip4, kClient4, kProtoIcmp, uint16_t(icmp.size()), 0, false), icmp});
  ASSERT_EQ(want.size(), 14u + 576);
  expectFrame(out[0].bytes, want, "icmp too big v4");
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(out[0].bytes));
  EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 1u);
  expectOnlyDrop(*w, Drop::TooBig);  // the original packet is not forwarded
}

TEST_F(DropFixture, IcmpTooBigIpv4Gue) {
  auto gue = build(sb, fwdConfig(FwdMode::Gue));
  auto out = run(*w, *gue, {clientTcp4(1460 - 7).build()});  // 1493 + 28 > 1500
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes[14 + 20], 3);
  EXPECT_EQ(get16(out[0].bytes, 14 + 20 + 6), 1500 - 28);
  // 1472 fits exactly.
  auto fits = run(*w, *gue, {clientTcp4(1432).build()});
  ASSERT_EQ(fits.size(), 1u);
  EXPECT_EQ(fits[0].port, kLan);
}

TEST_F(DropFixture, IcmpTooBigIpv6) {
  const Frame in = clientUdp6(1432).build();  // 1480-byte IPv6 packet; + 40 > 1500
  ASSERT_EQ(in.size(), 14u + 1480);
  auto out = run(*w, *s, {in});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kWan);
  const Frame quote(in.begin() + 14, in.begin() + 14 + 1232);
  Frame icmp = {2, 0, 0, 0, 0, 0, uint8_t(1460 >> 8), uint8_t(1460 & 0xff)};
  icmp.insert(icmp.end(), quote.begin(), quote.end());
  Frame want = cat({ethHdr(kClientMac, kWanMac, 0x86dd), ipv6Hdr(kVip6, kClient6, kProtoIcmp6, uint16_t(icmp.size()), 0, 0),
                    icmp});
  auto l = test::locate(want);
  test::put16(want, 14 + 40 + 2, *test::l4Checksum(want, *l));
  ASSERT_EQ(want.size(), 14u + 1280);
  expectFrame(out[0].bytes, want, "icmpv6 packet too big");
  EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 1u);
  expectOnlyDrop(*w, Drop::TooBig);
}

TEST_F(DropFixture, IcmpTooBigFromVlanInput) {
  // Tagged input: the reply is untagged, and quotes the IP packet (not the tag).
  const Frame in = clientTcp4(1460).vlan(7).build();
  auto out = run(*w, *s, {in});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].bytes.size(), 14u + 576);
  EXPECT_EQ(get16(out[0].bytes, 12), 0x0800);
  EXPECT_TRUE(std::equal(in.begin() + 18, in.begin() + 18 + 548, out[0].bytes.begin() + 14 + 28));
  EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));
}

}  // namespace
}  // namespace l4lb::dataplane
