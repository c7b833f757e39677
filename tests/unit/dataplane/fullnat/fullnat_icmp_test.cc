// ICMP translation for full NAT through the worker's burst (processBurst on mbufs): errors from
// the backend's side reach the client from the VIP about the client's own packet, errors from
// the client's side reach the backend from the source address about the backend's packet, with
// the quoted sequence numbers back in the receiver's space and every checksum valid; what has
// no session, or too short a quote, is a counted drop.
#include "dataplane/fullnat/fullnat_icmp.h"

#include <gtest/gtest.h>

#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/fullnat/proxy_v2.h"
#include "worker_fixture.h"

namespace l4lb::dataplane::wtest {
namespace {

const IpAddr kSnat4 = ipAddr("198.18.3.2");
const IpAddr kSnat6 = ipAddr("2001:db8:3::2");
const IpAddr kRouter4 = ipAddr("198.18.0.9");  // a router on the client's path
const IpAddr kRouter6 = ipAddr("2001:db8:ff::9");
const IpAddr kBackRouter4 = ipAddr("198.18.0.10");  // a router on the backends' side
const IpAddr kBackRouter6 = ipAddr("2001:db8:ff::a");
constexpr uint16_t kLo = 40000, kHi = 40003;
constexpr uint16_t kCport4 = 1234, kCport6 = 5353;
constexpr uint32_t kIsn = 0xfffffff0;  // the client's ISN: its later bytes wrap past 2^32
constexpr uint32_t kProxy4 = fullnat::kProxyV2Len4;

// TCP 192.0.2.1:80 -> 10.0.0.11:8080 (PROXY v2 when `proxy`), UDP [2001:db8:1::1]:53 -> fd00::11.
Config icmpConfig(bool proxy) {
  Config c = topology();
  c.vips.push_back(fullNatVip({.vip = kVip4, .port = 80, .snat = {kSnat4}, .lo = kLo, .hi = kHi, .backend = kB4,
                               .mac = kB4Mac, .bport = 8080, .proxy = proxy}));
  c.vips.push_back(fullNatVip({.vip = kVip6, .port = 53, .proto = Proto::Udp, .snat = {kSnat6}, .lo = kLo, .hi = kHi,
                               .backend = kB6, .mac = kB6Mac}));
  return c;
}

struct Rig {
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s;
  std::unique_ptr<WorkerState> w;
  explicit Rig(bool proxy = true) {
    s = build(sb, icmpConfig(proxy));
    w = makeWorker();
    std::string err;
    if (s) w->fullnat = FullNatState::create(s->snat_addrs, 0, 1, SOCKET_ID_ANY, err);
    EXPECT_TRUE(s && w->fullnat) << err;
  }
  // Opens the TCP session (client SYN) and returns its source port.
  uint16_t openTcp() {
    auto o = runOne(*w, *s,
                    PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).df().tcp(kCport4, 80, kTcpSyn)
                        .tcpSeq(kIsn, 0).build());
    EXPECT_TRUE(o);
    return o ? get16(o->bytes, 14 + 20) : 0;
  }
  // Opens the UDP session over IPv6 and returns its source port.
  uint16_t openUdp6() {
    auto o = runOne(*w, *s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).udp(kCport6, 53).payload(30)
                                .build());
    EXPECT_TRUE(o);
    return o ? get16(o->bytes, 14 + 40) : 0;
  }
};

Frame ipOf(const Frame& frame) { return Frame(frame.begin() + 14, frame.end()); }

// A TCP segment as an IPv4 quote (the whole packet, or its first `cut` bytes).
Frame tcpQuote4(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                uint32_t ack, size_t cut = 0) {
  Frame ip = ipOf(PacketBuilder().ipv4(src, dst).df().ipId(0x4242).ttl(63).tcp(sport, dport, flags)
                      .tcpSeq(seq, ack).payload(60).build());
  if (cut != 0) ip.resize(cut);
  return ip;
}

Frame udpQuote6(const IpAddr& src, const IpAddr& dst, uint16_t sport, uint16_t dport) {
  return ipOf(PacketBuilder().ipv6(src, dst).ttl(63).udp(sport, dport).payload(30).build());
}

// Every checksum of an IPv4 error: outer header, ICMP, quoted header, quoted TCP.
void expectChecksums4(const Frame& f, bool whole_quote) {
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(f));
  EXPECT_TRUE(test::l4ChecksumOk(f));               // ICMP
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(f, 14 + 28));  // quoted IPv4 header
  if (whole_quote) {
    EXPECT_TRUE(test::l4ChecksumOkAt(f, 14 + 28));  // quoted TCP
  }
}

// Fragmentation needed from a router on the backends' side, about a segment the balancer sent
// the backend: the client gets it from the VIP, about its own segment (its sequence number, not
// the one moved by the PROXY header), with the MTU as reported.
TEST(FullNatIcmp, FragNeededFromTheBackendSideReachesTheClientFromTheVip) {
  Rig r;
  const uint16_t sp = r.openTcp();
  const uint32_t client_seq = kIsn + 1 + 100;  // past the first segment: moved by the header
  const Frame q = tcpQuote4(kSnat4, kB4, sp, 8080, kTcpAck, client_seq + kProxy4, 777);
  const Frame in = PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBackRouter4, kSnat4).ttl(64).icmp(3, 4, 1400)
                       .payload(q).build();
  auto o = runOne(*r.w, *r.s, in, 0, kLan);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kWan);
  const Frame want = PacketBuilder().eth(kWanMac, kGwMac).ipv4(kVip4, kClient4).ttl(63).icmp(3, 4, 1400)
                         .payload(tcpQuote4(kClient4, kVip4, kCport4, 80, kTcpAck, client_seq, 777)).build();
  expectFrame(o->bytes, want, "frag needed to the client");
  expectChecksums4(o->bytes, true);
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 1u);
  EXPECT_EQ(r.w->counters.totalDrops(), 0u);

  // A quote of the SYN and one of the segment that carried the header (at ISN + 1), cut to the
  // IP header and 8 bytes: both keep their sequence number (the same in the two spaces); the
  // quoted TCP checksum is not in the quote.
  for (uint32_t seq : {kIsn, kIsn + 1}) {
    const uint8_t flags = seq == kIsn ? kTcpSyn : kTcpAck;
    const Frame cut = tcpQuote4(kSnat4, kB4, sp, 8080, flags, seq, 0, 28);
    auto c = runOne(*r.w, *r.s,
                    PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBackRouter4, kSnat4).ttl(64).icmp(3, 4, 1400)
                        .payload(cut).build(),
                    0, kLan);
    ASSERT_TRUE(c);
    const Frame w2 = PacketBuilder().eth(kWanMac, kGwMac).ipv4(kVip4, kClient4).ttl(63).icmp(3, 4, 1400)
                         .payload(tcpQuote4(kClient4, kVip4, kCport4, 80, flags, seq, 0, 28)).build();
    expectFrame(c->bytes, w2, "short quote");
    expectChecksums4(c->bytes, false);
  }
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 3u);
}

// ICMPv6 packet too big from the backends' side, about a UDP datagram: to the client from the
// VIP, the quote as the client sent it, the ICMPv6 checksum over the new pseudo-header.
TEST(FullNatIcmp, PacketTooBigFromTheBackendSideReachesTheClientFromTheVip) {
  Rig r;
  const uint16_t sp = r.openUdp6();
  const Frame in = PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kBackRouter6, kSnat6).ttl(64).icmp(2, 0, 1280)
                       .payload(udpQuote6(kSnat6, kB6, sp, 53)).build();
  auto o = runOne(*r.w, *r.s, in, 0, kLan);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kWan);
  const Frame want = PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).ttl(63).icmp(2, 0, 1280)
                         .payload(udpQuote6(kClient6, kVip6, kCport6, 53)).build();
  expectFrame(o->bytes, want, "packet too big to the client");
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));               // ICMPv6
  EXPECT_TRUE(test::l4ChecksumOkAt(o->bytes, 14 + 48));    // quoted UDP
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 1u);
  EXPECT_EQ(r.w->counters.totalDrops(), 0u);
}

// From the client's side, IPv4: fragmentation needed about a segment the balancer sent the
// client (VIP -> client) reaches the backend from the source address, about the backend's own
// segment: its ACK back in the backend's space (raised by the header's length).
TEST(FullNatIcmp, FragNeededFromTheClientSideReachesTheBackend) {
  Rig r;
  const uint16_t sp = r.openTcp();
  const uint32_t ack_client = kIsn + 1 + 50;
  const Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).ttl(64).icmp(3, 4, 1300)
                       .payload(tcpQuote4(kVip4, kClient4, 80, kCport4, kTcpAck, 9000, ack_client)).build();
  auto o = runOne(*r.w, *r.s, in);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  const Frame want = PacketBuilder().eth(kLanMac, kB4Mac).ipv4(kSnat4, kB4).ttl(63).icmp(3, 4, 1300)
                         .payload(tcpQuote4(kB4, kSnat4, 8080, sp, kTcpAck, 9000, ack_client + kProxy4)).build();
  expectFrame(o->bytes, want, "frag needed to the backend");
  expectChecksums4(o->bytes, true);
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 1u);
  EXPECT_EQ(r.w->counters.totalDrops(), 0u);
}

// From the client's side, IPv6: a time exceeded about a UDP reply reaches the backend.
TEST(FullNatIcmp, TimeExceededFromTheClientSideReachesTheBackendV6) {
  Rig r;
  const uint16_t sp = r.openUdp6();
  const Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv6(kRouter6, kVip6).ttl(64).icmp(3, 0, 0)
                       .payload(udpQuote6(kVip6, kClient6, 53, kCport6)).build();
  auto o = runOne(*r.w, *r.s, in);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  const Frame want = PacketBuilder().eth(kLanMac, kB6Mac).ipv6(kSnat6, kB6).ttl(63).icmp(3, 0, 0)
                         .payload(udpQuote6(kB6, kSnat6, 53, sp)).build();
  expectFrame(o->bytes, want, "time exceeded to the backend");
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  EXPECT_TRUE(test::l4ChecksumOkAt(o->bytes, 14 + 48));
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 1u);
}

// Without PROXY v2 the sequence numbers are the same on both sides: only the tuple changes.
TEST(FullNatIcmp, WithoutProxyTheSequenceStays) {
  Rig r(false);
  const uint16_t sp = r.openTcp();
  const Frame in = PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBackRouter4, kSnat4).ttl(64).icmp(11, 0, 0)
                       .payload(tcpQuote4(kSnat4, kB4, sp, 8080, kTcpAck, kIsn + 500, 42)).build();
  auto o = runOne(*r.w, *r.s, in, 0, kLan);
  ASSERT_TRUE(o);
  const Frame want = PacketBuilder().eth(kWanMac, kGwMac).ipv4(kVip4, kClient4).ttl(63).icmp(11, 0, 0)
                         .payload(tcpQuote4(kClient4, kVip4, kCport4, 80, kTcpAck, kIsn + 500, 42)).build();
  expectFrame(o->bytes, want, "time exceeded to the client");
  expectChecksums4(o->bytes, true);
}

// Parameter problems are translated as the other errors, their pointer into the quote as it is
// (no header changes length): from the clients' side over IPv4, from the backends' over IPv6.
TEST(FullNatIcmp, ParameterProblemsAreTranslatedBothWays) {
  Rig r(false);
  const uint16_t sp4 = r.openTcp();
  const uint16_t sp6 = r.openUdp6();
  const uint32_t ptr4 = 0x14000000;  // pointer 20: the quoted TCP header's first byte
  auto o = runOne(*r.w, *r.s,
                  PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).ttl(64).icmp(12, 0, ptr4)
                      .payload(tcpQuote4(kVip4, kClient4, 80, kCport4, kTcpAck, 9000, 5000)).build());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kLan);
  expectFrame(o->bytes,
              PacketBuilder().eth(kLanMac, kB4Mac).ipv4(kSnat4, kB4).ttl(63).icmp(12, 0, ptr4)
                  .payload(tcpQuote4(kB4, kSnat4, 8080, sp4, kTcpAck, 9000, 5000)).build(),
              "parameter problem to the backend");
  expectChecksums4(o->bytes, true);
  auto o6 = runOne(*r.w, *r.s,
                   PacketBuilder().eth(kB6Mac, kLanMac).ipv6(kBackRouter6, kSnat6).ttl(64).icmp(4, 0, 40)
                       .payload(udpQuote6(kSnat6, kB6, sp6, 53)).build(),
                   0, kLan);
  ASSERT_TRUE(o6);
  EXPECT_EQ(o6->port, kWan);
  expectFrame(o6->bytes,
              PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).ttl(63).icmp(4, 0, 40)
                  .payload(udpQuote6(kClient6, kVip6, kCport6, 53)).build(),
              "parameter problem to the client");
  EXPECT_TRUE(test::l4ChecksumOk(o6->bytes));
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 2u);
  EXPECT_EQ(r.w->counters.totalDrops(), 0u);
}

// Each worker owns its share of a source address's ports: an error about another worker's
// pair is counted, not translated (worker 1 of 2 owns the odd offsets from the range's start).
TEST(FullNatIcmp, AnotherWorkersPairIsACountedDrop) {
  Rig r;
  std::string err;
  r.w->index = 1;
  r.w->fullnat = FullNatState::create(r.s->snat_addrs, 1, 2, SOCKET_ID_ANY, err);
  ASSERT_TRUE(r.w->fullnat) << err;
  const uint16_t sp = r.openTcp();
  EXPECT_EQ((sp - kLo) % 2, 1);
  auto err4 = [](uint16_t port) {
    return PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBackRouter4, kSnat4).ttl(64).icmp(3, 4, 1400)
        .payload(tcpQuote4(kSnat4, kB4, port, 8080, kTcpAck, 1, 2)).build();
  };
  EXPECT_FALSE(runOne(*r.w, *r.s, err4(uint16_t(sp - 1)), 0, kLan));
  expectOnlyDrop(*r.w, Drop::FullNatWrongWorker);
  EXPECT_TRUE(runOne(*r.w, *r.s, err4(sp), 0, kLan));  // its own pair (the control)
}

// No session for the quote, either side: counted, nothing sent. The same errors with the
// session open are forwarded (the control).
TEST(FullNatIcmp, NoSessionIsACountedDrop) {
  Rig r;
  auto fromBackend = [](uint16_t sp, uint16_t bport) {
    return PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBackRouter4, kSnat4).ttl(64).icmp(3, 4, 1400)
        .payload(tcpQuote4(kSnat4, kB4, sp, bport, kTcpAck, 1, 2)).build();
  };
  const Frame fromClient = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).ttl(64).icmp(3, 4, 1300)
                               .payload(tcpQuote4(kVip4, kClient4, 80, kCport4, kTcpAck, 1, 2)).build();
  EXPECT_FALSE(runOne(*r.w, *r.s, fromBackend(kLo, 8080), 0, kLan));
  EXPECT_FALSE(runOne(*r.w, *r.s, fromClient));
  EXPECT_FALSE(runOne(*r.w, *r.s, fromBackend(9, 8080), 0, kLan));  // not a pool port
  expectOnlyDrop(*r.w, Drop::FullNatNoSession, 3);
  const uint16_t sp = r.openTcp();
  EXPECT_FALSE(runOne(*r.w, *r.s, fromBackend(sp, 8081), 0, kLan));  // the pair's, another backend port
  expectOnlyDrop(*r.w, Drop::FullNatNoSession, 4);
  EXPECT_TRUE(runOne(*r.w, *r.s, fromBackend(sp, 8080), 0, kLan));
  EXPECT_TRUE(runOne(*r.w, *r.s, fromClient));
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 2u);
  // An expired session is no session.
  EXPECT_FALSE(runOne(*r.w, *r.s, fromBackend(sp, 8080), 3'600'000, kLan));
  expectOnlyDrop(*r.w, Drop::FullNatNoSession, 5);
}

// A quote without the 8 bytes of ports, and a quoted later fragment (no ports either): refused.
TEST(FullNatIcmp, TruncatedQuoteIsACountedDrop) {
  Rig r;
  const uint16_t sp = r.openTcp();
  auto err = [](const Frame& q) {
    return PacketBuilder().eth(kB4Mac, kLanMac).ipv4(kBackRouter4, kSnat4).ttl(64).icmp(3, 4, 1400).payload(q).build();
  };
  EXPECT_FALSE(runOne(*r.w, *r.s, err(tcpQuote4(kSnat4, kB4, sp, 8080, kTcpAck, 1, 2, 24)), 0, kLan));
  expectOnlyDrop(*r.w, Drop::BadIcmpQuote);
  // A later fragment (offset 16 x 8 bytes) of a datagram the balancer sent the backend.
  const Frame frag = ipOf(PacketBuilder().ipv4(kSnat4, kB4).ttl(63).fragOffset(16).l4Raw(kProtoTcp, Frame(40, 0xab)).build());
  EXPECT_FALSE(runOne(*r.w, *r.s, err(frag), 0, kLan));
  EXPECT_EQ(ctr(*r.w, Ctr::IcmpErrorForwarded), 0u);
  EXPECT_EQ(r.w->counters.get(Drop::IcmpQuoteFragment), 1u);
  // The whole quote is forwarded (the control).
  EXPECT_TRUE(runOne(*r.w, *r.s, err(tcpQuote4(kSnat4, kB4, sp, 8080, kTcpAck, 1, 2)), 0, kLan));
}

}  // namespace
}  // namespace l4lb::dataplane::wtest
