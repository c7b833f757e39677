// Full NAT through the worker's burst (processBurst on mbufs): sessions, source pairs, the
// rewrite in both directions, exhaustion and quiet time, and the PROXY v2 header with its
// sequence translation.
#include "dataplane/fullnat/fullnat_path.h"

#include <gtest/gtest.h>

#include "worker_fixture.h"

namespace l4lb::dataplane::wtest {
namespace {

const IpAddr kSnat4 = ipAddr("10.0.0.2");
const IpAddr kSnat6 = ipAddr("fd00::2");
constexpr uint16_t kLo = 40000, kHi = 40003;  // four pairs per address
constexpr uint32_t kQuietMs = 5000;

Config fullNatConfig(bool proxy, uint16_t lo = kLo, uint16_t hi = kHi) {
  Config c = topology();
  c.vips.push_back(fullNatVip({.vip = kVip4, .port = 80, .snat = {kSnat4}, .lo = lo, .hi = hi, .quiet_ms = kQuietMs,
                               .backend = kB4, .mac = kB4Mac, .bport = 8080, .proxy = proxy}));
  c.vips.push_back(fullNatVip({.vip = kVip6, .port = 53, .proto = Proto::Udp, .snat = {kSnat6}, .lo = lo, .hi = hi,
                               .quiet_ms = kQuietMs, .backend = kB6, .mac = kB6Mac}));
  return c;
}

struct Rig {
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<WorkerState> w;
  explicit Rig(bool proxy = false, uint16_t lo = kLo, uint16_t hi = kHi) {
    s = build(sb, fullNatConfig(proxy, lo, hi));
    w = makeWorker();
    std::string err;
    if (s) w->fullnat = FullNatState::create(s->snat_addrs, 0, 1, SOCKET_ID_ANY, err);
    EXPECT_TRUE(s && w->fullnat) << err;
  }
};

constexpr uint32_t kIsn = 0xfffffff0;  // the client's ISN: its first bytes wrap past 2^32

PacketBuilder client4(uint16_t cport, uint8_t flags, uint32_t seq, uint32_t ack = 0, uint16_t payload = 0) {
  PacketBuilder b;
  b.eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).df().tcp(cport, 80, flags).tcpSeq(seq, ack);
  if (payload) b.payload(payload);
  return b;
}

PacketBuilder backend4(uint16_t snat_port, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t payload = 0) {
  PacketBuilder b;
  b.eth(kB4Mac, kLanMac).ipv4(kB4, kSnat4).df().tcp(8080, snat_port, flags).tcpSeq(seq, ack);
  if (payload) b.payload(payload);
  return b;
}

uint32_t seqOf(const Frame& f) { return uint32_t(get16(f, 14 + 20 + 4)) << 16 | get16(f, 14 + 20 + 6); }
uint32_t ackOf(const Frame& f) { return uint32_t(get16(f, 14 + 20 + 8)) << 16 | get16(f, 14 + 20 + 10); }
uint16_t sportOf(const Frame& f) { return get16(f, 14 + 20); }

void expectChecksums(const Frame& f, const std::string& what) {
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(f)) << what;
  EXPECT_TRUE(test::l4ChecksumOk(f)) << what;
}

TEST(FullNat, SynLeavesFromAPairAndTheReplyGoesBackFromTheVip) {
  Rig r;
  auto o = runOne(*r.w, *r.s, client4(1234, kTcpSyn, kIsn).build());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  const uint16_t sp = sportOf(o->bytes);
  EXPECT_GE(sp, kLo);
  EXPECT_LE(sp, kHi);
  const Frame want = PacketBuilder()
                         .eth(kLanMac, kB4Mac)
                         .ipv4(kSnat4, kB4)
                         .ttl(63)
                         .df()
                         .tcp(sp, 8080, kTcpSyn)
                         .tcpSeq(kIsn, 0)
                         .build();
  expectFrame(o->bytes, want, "client -> backend");
  expectChecksums(o->bytes, "client -> backend");

  auto back = runOne(*r.w, *r.s, backend4(sp, kTcpSyn | kTcpAck, 777, kIsn + 1).payload(20).build(), 0, kLan);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->port, kWan);
  const Frame want_back = PacketBuilder()
                              .eth(kWanMac, kGwMac)
                              .ipv4(kVip4, kClient4)
                              .ttl(63)
                              .df()
                              .tcp(80, 1234, kTcpSyn | kTcpAck)
                              .tcpSeq(777, kIsn + 1)
                              .payload(20)
                              .build();
  expectFrame(back->bytes, want_back, "backend -> client");
  expectChecksums(back->bytes, "backend -> client");
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatNew), 1u);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatReverse), 1u);

  // The rest of the flow keeps its pair.
  auto again = runOne(*r.w, *r.s, client4(1234, kTcpAck, kIsn + 1, 778, 10).build());
  ASSERT_TRUE(again);
  EXPECT_EQ(sportOf(again->bytes), sp);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatNew), 1u);
}

// The replies go to the MAC the first frame came from: a group (multicast) source MAC opens no
// session, so nothing is ever sent to it.
TEST(FullNat, GroupSourceMacOpensNoSession) {
  Rig r;
  Frame syn = client4(1234, kTcpSyn, kIsn).build();
  syn[6] = 0x01;  // 01:00:00:00:00:fe
  EXPECT_FALSE(runOne(*r.w, *r.s, syn));
  expectOnlyDrop(*r.w, Drop::FullNatUnsupported);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatNew), 0u);
  // The same SYN from the gateway's (individual) MAC opens one, on the first pair.
  auto o = runOne(*r.w, *r.s, client4(1234, kTcpSyn, kIsn).build());
  ASSERT_TRUE(o);
  EXPECT_EQ(sportOf(o->bytes), kLo);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatNew), 1u);
}

TEST(FullNat, OnlyASynOpensASession) {
  Rig r;
  runOne(*r.w, *r.s, client4(1234, kTcpAck, 5, 6, 10).build());
  expectOnlyDrop(*r.w, Drop::FullNatNoSession);
}

TEST(FullNat, ABackendPacketNeedsItsSession) {
  Rig r;
  // No flow holds the pair.
  runOne(*r.w, *r.s, backend4(kLo, kTcpAck, 1, 2).build(), 0, kLan);
  expectOnlyDrop(*r.w, Drop::FullNatNoSession);
  auto o = runOne(*r.w, *r.s, client4(1234, kTcpSyn, 100).build());
  ASSERT_TRUE(o);
  const uint16_t sp = sportOf(o->bytes);
  // From the right pair but another backend port: not the session's backend, not relayed.
  auto bad = backend4(sp, kTcpAck, 1, 2);
  bad.tcp(8081, sp, kTcpAck);
  runOne(*r.w, *r.s, bad.build(), 0, kLan);
  expectOnlyDrop(*r.w, Drop::FullNatNoSession, 2);
}

TEST(FullNat, ExhaustionDropsNewFlowsOnlyAndPairsComeBackAfterTheQuietTime) {
  Rig r;
  std::set<uint16_t> pairs;
  for (uint16_t cp = 1; cp <= 4; cp++) {
    auto o = runOne(*r.w, *r.s, client4(cp, kTcpSyn, 100).build(), 10);
    ASSERT_TRUE(o);
    pairs.insert(sportOf(o->bytes));
  }
  EXPECT_EQ(pairs.size(), 4u);  // never a pair twice
  EXPECT_FALSE(runOne(*r.w, *r.s, client4(5, kTcpSyn, 100).build(), 10));
  expectOnlyDrop(*r.w, Drop::SnatExhausted);
  // Established flows go on.
  for (uint16_t cp = 1; cp <= 4; cp++) EXPECT_TRUE(runOne(*r.w, *r.s, client4(cp, kTcpAck, 101, 1, 5).build(), 20));
  expectOnlyDrop(*r.w, Drop::SnatExhausted);

  // Flow 1 closes: after tcp_fin_timeout the sweep ends it, and its pair waits out the quiet time.
  ASSERT_TRUE(runOne(*r.w, *r.s, client4(1, kTcpFin | kTcpAck, 106, 1).build(), 30));
  const uint32_t t_end = 30 + r.s->timeouts.tcp_fin_ms + 1;
  // The other three are kept alive.
  for (uint16_t cp = 2; cp <= 4; cp++) ASSERT_TRUE(runOne(*r.w, *r.s, client4(cp, kTcpAck, 106, 1).build(), t_end - 5));
  sweepFullNat(*r.w, t_end, r.s->timeouts, 100);
  EXPECT_EQ(ctr(*r.w, Ctr::FullNatEnded), 1u);
  EXPECT_EQ(r.w->fullnat->usage(0, t_end).quiet, 1u);
  EXPECT_FALSE(runOne(*r.w, *r.s, client4(6, kTcpSyn, 100).build(), t_end + kQuietMs - 1));
  expectOnlyDrop(*r.w, Drop::SnatExhausted, 2);
  auto o = runOne(*r.w, *r.s, client4(6, kTcpSyn, 100).build(), t_end + kQuietMs);
  ASSERT_TRUE(o);
  EXPECT_EQ(r.w->fullnat->usage(0, t_end + kQuietMs).in_use, 4u);
}

TEST(FullNat, UdpIpv6BothWays) {
  Rig r;
  const Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).udp(5555, 53).payload(30).build();
  auto o = runOne(*r.w, *r.s, in);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  const uint16_t sp = get16(o->bytes, 14 + 40);
  const Frame want = PacketBuilder().eth(kLanMac, kB6Mac).ipv6(kSnat6, kB6).ttl(63).udp(sp, 53).payload(30).build();
  expectFrame(o->bytes, want, "udp6 out");
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  const Frame reply = PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kB6, kSnat6).udp(53, sp).payload(40).build();
  auto b = runOne(*r.w, *r.s, reply, 0, kLan);
  ASSERT_TRUE(b);
  const Frame want_b = PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).ttl(63).udp(53, 5555).payload(40).build();
  expectFrame(b->bytes, want_b, "udp6 back");
  EXPECT_TRUE(test::l4ChecksumOk(b->bytes));
}

TEST(FullNat, ArpIsAnsweredForASourceAddress) {
  Rig r;
  // ARP request for 10.0.0.2 from the backend.
  Frame arp = PacketBuilder().eth(kB4Mac, macAddr("ff:ff:ff:ff:ff:ff")).etherType(0x0806).build();
  const uint8_t body[] = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 1, 1, 10, 0, 0, 11, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2};
  arp.insert(arp.end(), std::begin(body), std::end(body));
  auto o = runOne(*r.w, *r.s, arp, 0, kLan);
  ASSERT_TRUE(o);
  EXPECT_EQ(ctr(*r.w, Ctr::ArpReply), 1u);
}

// PROXY v2: the header sits at ISN + 1 .. ISN + 28 of the backend's sequence space.
TEST(FullNatProxy, HeaderGoesOnTheHandshakeAckAndOnEverySegmentAtIsnPlusOne) {
  Rig r(true);
  constexpr uint32_t L = 28;
  auto syn = runOne(*r.w, *r.s, client4(1234, kTcpSyn, kIsn).build());
  ASSERT_TRUE(syn);
  EXPECT_EQ(seqOf(syn->bytes), kIsn);  // the SYN keeps the ISN
  const uint16_t sp = sportOf(syn->bytes);

  // SYN-ACK with MSS 1460: the client is offered 1460 - 28.
  auto sa = backend4(sp, kTcpSyn | kTcpAck, 5000, kIsn + 1);
  sa.tcpOptions({2, 4, 0x05, 0xb4});
  auto synack = runOne(*r.w, *r.s, sa.build(), 0, kLan);
  ASSERT_TRUE(synack);
  EXPECT_EQ(ackOf(synack->bytes), kIsn + 1);
  EXPECT_EQ(get16(synack->bytes, 14 + 20 + 22), 1460 - L);
  expectChecksums(synack->bytes, "syn-ack");

  // The handshake's last ACK carries the header, from ISN + 1.
  auto ack = runOne(*r.w, *r.s, client4(1234, kTcpAck, kIsn + 1, 5001).build());
  ASSERT_TRUE(ack);
  ASSERT_EQ(ack->bytes.size(), 14u + 20 + 20 + L);
  EXPECT_EQ(seqOf(ack->bytes), kIsn + 1);
  const Frame sig = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 12};
  EXPECT_EQ(Frame(ack->bytes.begin() + 54, ack->bytes.begin() + 70), sig);
  EXPECT_EQ(Frame(ack->bytes.begin() + 70, ack->bytes.begin() + 74), test::wire::bytesOf(kClient4));
  EXPECT_EQ(Frame(ack->bytes.begin() + 74, ack->bytes.begin() + 78), test::wire::bytesOf(kVip4));
  EXPECT_EQ(get16(ack->bytes, 78), 1234);
  EXPECT_EQ(get16(ack->bytes, 80), 80);
  expectChecksums(ack->bytes, "ack with header");

  // The first data segment (here a retransmission of ISN + 1) carries it again, then its data.
  auto first = runOne(*r.w, *r.s, client4(1234, kTcpAck | 0x08, kIsn + 1, 5001, 100).build());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->bytes.size(), 14u + 20 + 20 + L + 100);
  EXPECT_EQ(seqOf(first->bytes), kIsn + 1);
  expectChecksums(first->bytes, "first data");
  // A later segment moves up by the header's length (across the wrap).
  auto later = runOne(*r.w, *r.s, client4(1234, kTcpAck, kIsn + 101, 5001, 50).build());
  ASSERT_TRUE(later);
  EXPECT_EQ(later->bytes.size(), 14u + 20 + 20 + 50);
  EXPECT_EQ(seqOf(later->bytes), kIsn + 101 + L);
  expectChecksums(later->bytes, "later data");
  EXPECT_EQ(ctr(*r.w, Ctr::ProxyHeaderSent), 2u);

  // The backend's ACKs: of part of the header -> ISN + 1; of header and data -> the data only.
  auto a1 = runOne(*r.w, *r.s, backend4(sp, kTcpAck, 5001, kIsn + 1 + 10).build(), 0, kLan);
  ASSERT_TRUE(a1);
  EXPECT_EQ(ackOf(a1->bytes), kIsn + 1);
  auto a2 = runOne(*r.w, *r.s, backend4(sp, kTcpAck, 5001, kIsn + 1 + L + 100).build(), 0, kLan);
  ASSERT_TRUE(a2);
  EXPECT_EQ(ackOf(a2->bytes), kIsn + 101);
  expectChecksums(a2->bytes, "ack back");
}

TEST(FullNatProxy, WithoutTheHeaderNothingMoves) {
  Rig r(false);
  auto syn = runOne(*r.w, *r.s, client4(1234, kTcpSyn, kIsn).build());
  ASSERT_TRUE(syn);
  auto ack = runOne(*r.w, *r.s, client4(1234, kTcpAck, kIsn + 1, 5001).build());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->bytes.size(), 14u + 20 + 20);
  EXPECT_EQ(seqOf(ack->bytes), kIsn + 1);
  EXPECT_EQ(ctr(*r.w, Ctr::ProxyHeaderSent), 0u);
}

// The source addresses are answered (ARP, ND, echo) on the backends' side only: on the clients'
// side an answer would give the clients the pool's addresses, and its echo reply would leave
// toward them from a source address.
TEST(FullNat, SourceAddressesAnsweredOnlyTowardTheBackends) {
  Rig r;
  const MacAddr bcast = macAddr("ff:ff:ff:ff:ff:ff");
  auto arp = runOne(*r.w, *r.s, PacketBuilder().eth(kB4Mac, bcast).arp(1, kB4Mac, kB4, MacAddr{}, kSnat4).padTo(60).build(),
                    0, kLan);
  ASSERT_TRUE(arp);
  EXPECT_EQ(arp->port, kLan);
  auto echo = runOne(*r.w, *r.s, PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kB4, kSnat4).icmpEcho(1, 2).payload(8).build(),
                     0, kLan);
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->port, kLan);
  auto na = runOne(*r.w, *r.s,
                   PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kB6, test::solicitedNode(kSnat6)).ttl(255)
                       .neighborSolicit(kSnat6, kB6Mac).build(), 0, kLan);
  ASSERT_TRUE(na);
  EXPECT_EQ(na->port, kLan);
  EXPECT_EQ(ctr(*r.w, Ctr::ArpReply), 1u);
  EXPECT_EQ(ctr(*r.w, Ctr::EchoReply), 1u);

  const std::vector<Frame> wan = {
      PacketBuilder().eth(kGwMac, bcast).arp(1, kGwMac, ipAddr("203.0.113.254"), MacAddr{}, kSnat4).padTo(60).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kSnat4).icmpEcho(1, 2).payload(8).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kSnat6).icmpEcho(1, 2).payload(8).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, test::solicitedNode(kSnat6)).ttl(255)
          .neighborSolicit(kSnat6, kGwMac).build(),
  };
  EXPECT_TRUE(run(*r.w, *r.s, wan).empty());
  EXPECT_EQ(ctr(*r.w, Ctr::ArpReply), 1u);
  EXPECT_EQ(ctr(*r.w, Ctr::EchoReply), 1u);
  // The echo requests (to the balancer's address: not relayed) and the solicitation (no kernel
  // path in this topology); the ARP request stays not_ip.
  EXPECT_EQ(r.w->counters.get(Drop::Icmp), 3u);
  EXPECT_EQ(r.w->counters.get(Drop::NotIp), 1u);
}

}  // namespace
}  // namespace l4lb::dataplane::wtest
