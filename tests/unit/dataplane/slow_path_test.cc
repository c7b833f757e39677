// The worker's slow path (src/dataplane/slow_path.cc) through processBurst: ARP / ND / echo
// replies for VIPs, ICMP errors about VIP flows sent to the flow's backend in every forwarding
// mode, the exception path to and from the kernel, and one test per new drop reason. Expected
// frames are built independently with the test PacketBuilder (or by hand for outer headers) and
// compared byte for byte.
#include "dataplane/worker.h"

#include <gtest/gtest.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <optional>
#include <string>
#include <vector>

#include "burst_harness.h"
#include "mode_fixture.h"
#include "control/snapshot_builder.h"
#include "packet_builder.h"
#include "topology.h"

namespace l4lb::dataplane {
namespace {

using namespace test::topo;  // NOLINT(google-build-using-namespace): tests/common/topology.h
using namespace test::wire;  // NOLINT(google-build-using-namespace): expected headers

// Port 0 "wan" faces the clients (behind a gateway), port 1 "lan" holds the backends; the
// kernel fixtures add port 2, the tap of wan.
const MacAddr kTapMac = macAddr("02:00:00:00:00:30");
const MacAddr kB4Mac = macAddr("02:00:00:00:01:01");
const MacAddr kB6Mac = macAddr("02:00:00:00:01:02");
const MacAddr kBroadcast = macAddr("ff:ff:ff:ff:ff:ff");
const IpAddr kWan4 = ipAddr("198.18.0.1");
const IpAddr kWan6 = ipAddr("2001:db8:ff::1");
const IpAddr kGw4 = ipAddr("198.18.0.254");
const IpAddr kGw6 = ipAddr("2001:db8:ff::fe");
const IpAddr kRouter4 = ipAddr("198.18.0.9");  // a router on the client's path
const IpAddr kRouter6 = ipAddr("2001:db8:ff::9");
const IpAddr kClient4 = ipAddr("198.19.7.1");
const IpAddr kClient6 = ipAddr("2001:db8:100::7");
const IpAddr kVip4 = ipAddr("198.18.1.10");
const IpAddr kVip6 = ipAddr("2001:db8:1::10");
const IpAddr kB4 = ipAddr("198.18.2.11");
const IpAddr kB6 = ipAddr("2001:db8:2::11");
const IpAddr kLan4 = ipAddr("198.18.2.1");
const IpAddr kLan6 = ipAddr("2001:db8:2::1");
constexpr uint16_t kTap = 2;  // kWan, kLan: test::topo
constexpr uint16_t kCport4 = 40000, kCport6 = 40001;

// ---------------------------------------------------------------------------------------------
// Plumbing (tests/common/burst_harness.h)

using Out = test::SentFrame;

std::unique_ptr<WorkerState> makeWorker() { return test::makeBurstWorker("et", 1024, 1024); }

std::vector<Out> run(WorkerState& w, const Snapshot& s, const std::vector<Frame>& frames, uint16_t ingress = kWan,
                     uint32_t now = 0) {
  return test::runBursts(w, s, frames, ingress, now);
}

std::optional<Out> runOne(WorkerState& w, const Snapshot& s, const Frame& f, uint16_t ingress = kWan) {
  auto out = run(w, s, {f}, ingress);
  EXPECT_LE(out.size(), 1u);
  if (out.empty()) return std::nullopt;
  return out[0];
}

using test::ctr;  // tests/common/burst_harness.h
using test::expectFrame;
using test::expectOnlyDrop;

// The IP packet inside a frame built by PacketBuilder (untagged).
Frame ipOf(const Frame& frame) { return Frame(frame.begin() + 14, frame.end()); }

// Traffic class 0, hop limit 64.
Frame ipv6Hdr(const IpAddr& src, const IpAddr& dst, uint8_t next, uint16_t payload_len, uint32_t flow) {
  return test::wire::ipv6Hdr(src, dst, next, payload_len, 0, flow);
}

BackendConfig makeBackend(const IpAddr& a, const MacAddr& mac, uint16_t port = 0) {
  return test::topo::makeBackend(a, mac, 1, port);
}

Config topology() {
  return test::topo::topology({.lan4 = "198.18.2.1/24"});
}

// vips[0] = 198.18.1.10:80/tcp -> 198.18.2.11 (:8080 for NAT); vips[1] = [2001:db8:1::10]:53/udp
// -> 2001:db8:2::11 (:5353 for NAT).
Config fwdConfig(FwdMode mode, Scheduler sched = Scheduler::Maglev) {
  return withTwoVips(topology(), {kVip4, kB4, kB4Mac, kVip6, kB6, kB6Mac}, mode, sched);
}

// The snapshot with wan's exception path: port 2 is wan's tap (the daemon will create a real
// net_tap; here it is only a port index).
std::unique_ptr<Snapshot> withKernel(const Snapshot& s) {
  auto k = std::make_unique<Snapshot>(s);
  SnapPort tap;
  tap.port_id = 2;
  tap.name = "wan-tap";
  tap.mac = kTapMac;
  tap.is_kernel = true;
  tap.kernel_port = kWan;
  k->ports.push_back(tap);
  k->ports[kWan].kernel_port = kTap;
  k->port_index_by_id.resize(3, -1);
  k->port_index_by_id[2] = kTap;
  return k;
}

struct Fixture : ::testing::Test {
  void SetUp() override {
    s = build(sb, fwdConfig(FwdMode::Dsr));
    ASSERT_TRUE(s);
    k = withKernel(*s);
    w = makeWorker();
  }
  SnapshotBuilder sb;
  std::unique_ptr<Snapshot> s, k;
  std::unique_ptr<WorkerState> w;
};

// ---------------------------------------------------------------------------------------------
// ARP (RFC 826)

Frame arpRequest(const IpAddr& target) {
  return PacketBuilder().eth(kGwMac, kBroadcast).arp(1, kGwMac, kGw4, MacAddr{}, target).padTo(60).build();
}

TEST_F(Fixture, ArpRequestForVipGetsReplyFromPortMac) {
  for (const Snapshot* snap : {s.get(), k.get()}) {  // with or without an exception path
    auto o = runOne(*w, *snap, arpRequest(kVip4));
    ASSERT_TRUE(o);
    EXPECT_EQ(o->port, kWan);
    const Frame want = PacketBuilder().eth(kWanMac, kGwMac).arp(2, kWanMac, kVip4, kGwMac, kGw4).build();
    ASSERT_EQ(want.size(), 42u);
    expectFrame(o->bytes, want, "arp reply");
  }
  EXPECT_EQ(ctr(*w, Ctr::ArpReply), 2u);
  EXPECT_EQ(ctr(*w, Ctr::ToKernel), 0u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST_F(Fixture, ArpNotAnsweredWithoutKernelPathStaysNotIp) {
  // For the port's own address, a gratuitous ARP for the VIP, a tagged request, an ARP reply,
  // a truncated request: none is answered; without an exception path they stay not_ip.
  Frame tagged = PacketBuilder().eth(kGwMac, kBroadcast).vlan(7).arp(1, kGwMac, kGw4, MacAddr{}, kVip4).build();
  Frame truncated = test::truncate(arpRequest(kVip4), 14 + 27);
  std::vector<Frame> fs = {arpRequest(kWan4),
                           PacketBuilder().eth(kGwMac, kBroadcast).arp(1, kGwMac, kVip4, MacAddr{}, kVip4).build(),
                           tagged,
                           PacketBuilder().eth(kGwMac, kWanMac).arp(2, kGwMac, kGw4, kWanMac, kVip4).build(),
                           truncated};
  EXPECT_TRUE(run(*w, *s, fs).empty());
  expectOnlyDrop(*w, Drop::NotIp, fs.size());
  EXPECT_EQ(ctr(*w, Ctr::ArpReply), 0u);
}

// ---------------------------------------------------------------------------------------------
// Neighbour discovery (RFC 4861)

IpAddr solicitedNode(const IpAddr& a) {
  IpAddr m = ipAddr("ff02::1:ff00:0");
  std::copy(a.bytes.begin() + 13, a.bytes.end(), m.bytes.begin() + 13);
  return m;
}
MacAddr multicastMac(const IpAddr& a) {
  return MacAddr{{0x33, 0x33, a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]}};
}

PacketBuilder ns(const IpAddr& target, bool slla = true) {
  Frame body = bytesOf(target);
  if (slla) body = cat({body, Frame{1, 1}, bytesOf(kGwMac)});
  PacketBuilder b;
  b.eth(kGwMac, multicastMac(solicitedNode(target))).ipv6(kGw6, solicitedNode(target)).ttl(255).icmp(135, 0, 0);
  b.payload(body);
  return b;
}

Frame naFor(const IpAddr& target, const MacAddr& dst_mac, const IpAddr& dst, uint32_t flags) {
  return PacketBuilder()
      .eth(kWanMac, dst_mac)
      .ipv6(target, dst)
      .ttl(255)
      .icmp(136, 0, flags)
      .payload(cat({bytesOf(target), Frame{2, 1}, bytesOf(kWanMac)}))
      .build();
}

TEST_F(Fixture, NeighbourSolicitationForVipGetsSolicitedOverrideAdvert) {
  for (const Snapshot* snap : {s.get(), k.get()}) {
    auto o = runOne(*w, *snap, ns(kVip6).build());
    ASSERT_TRUE(o);
    EXPECT_EQ(o->port, kWan);
    const Frame want = naFor(kVip6, kGwMac, kGw6, 0x60000000);  // S and O, not R
    ASSERT_EQ(want.size(), 14u + 40 + 32);
    expectFrame(o->bytes, want, "neighbour advertisement");
    EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  }
  // Unicast solicitation (unreachability detection) without the source option: same answer.
  auto o = runOne(*w, *s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kGw6, kVip6).ttl(255).icmp(135, 0, 0)
                              .payload(bytesOf(kVip6)).build());
  ASSERT_TRUE(o);
  expectFrame(o->bytes, naFor(kVip6, kGwMac, kGw6, 0x60000000), "NUD advertisement");
  EXPECT_EQ(ctr(*w, Ctr::NdReply), 3u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST_F(Fixture, DuplicateAddressDetectionGetsAllNodesAdvert) {
  // RFC 4862 §5.4.3 / RFC 4861 §7.2.4: to ff02::1, Solicited clear.
  auto o = runOne(*w, *s, PacketBuilder().eth(kGwMac, multicastMac(solicitedNode(kVip6)))
                              .ipv6(ipAddr("::"), solicitedNode(kVip6)).ttl(255).icmp(135, 0, 0)
                              .payload(bytesOf(kVip6)).build());
  ASSERT_TRUE(o);
  expectFrame(o->bytes, naFor(kVip6, macAddr("33:33:00:00:00:01"), ipAddr("ff02::1"), 0x20000000), "DAD advert");
  EXPECT_EQ(ctr(*w, Ctr::NdReply), 1u);
}

TEST_F(Fixture, BadNd) {
  // Every RFC 4861 §7.1.1 rule, for a VIP target.
  Frame bad_ck = ns(kVip6).badL4Checksum().build();
  Frame bad_opt = ns(kVip6, false).payload(cat({bytesOf(kVip6), Frame{1, 0, 0, 0, 0, 0, 0, 0}})).build();
  Frame long_opt = ns(kVip6, false).payload(cat({bytesOf(kVip6), Frame{1, 2, 0, 0, 0, 0, 0, 0}})).build();
  Frame dad_slla = PacketBuilder().eth(kGwMac, kWanMac).ipv6(ipAddr("::"), solicitedNode(kVip6)).ttl(255)
                       .icmp(135, 0, 0).payload(cat({bytesOf(kVip6), Frame{1, 1}, bytesOf(kGwMac)})).build();
  Frame dad_unicast = PacketBuilder().eth(kGwMac, kWanMac).ipv6(ipAddr("::"), kVip6).ttl(255).icmp(135, 0, 0)
                          .payload(bytesOf(kVip6)).build();
  const std::vector<Frame> fs = {ns(kVip6).ttl(254).build(), ns(kVip6).icmp(135, 1, 0).build(), bad_ck, bad_opt,
                                 long_opt, dad_slla, dad_unicast};
  EXPECT_TRUE(run(*w, *s, fs).empty());
  expectOnlyDrop(*w, Drop::BadNd, fs.size());
  EXPECT_EQ(ctr(*w, Ctr::NdReply), 0u);
}

TEST_F(Fixture, NeighbourSolicitationForOtherTargetIsNotOurs) {
  // For the port's own address: the kernel's (or icmp without an exception path).
  const Frame f = ns(kWan6).build();
  EXPECT_TRUE(run(*w, *s, {f}).empty());
  expectOnlyDrop(*w, Drop::Icmp);
  auto o = runOne(*w, *k, f);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kTap);
  expectFrame(o->bytes, f, "NS to kernel");
  EXPECT_EQ(ctr(*w, Ctr::NdReply), 0u);
}

// ---------------------------------------------------------------------------------------------
// Echo (RFC 792, RFC 4443 §4.1)

TEST_F(Fixture, EchoRequestToVipV4) {
  const Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).tos(0x28).ipId(0x77).ttl(57)
                       .icmpEcho(0x1234, 7).payload(40).build();
  const Frame want = PacketBuilder().eth(kWanMac, kGwMac).ipv4(kVip4, kClient4).tos(0x28).df()
                         .icmpEcho(0x1234, 7, true).payload(40).build();
  auto o = runOne(*w, *s, in);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kWan);
  expectFrame(o->bytes, want, "echo reply v4");
  EXPECT_TRUE(test::ipv4HeaderChecksumOk(o->bytes));
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  // IP options are not echoed; Ethernet padding is not either.
  auto opt = runOne(*w, *s, PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).ipOptions({0x94, 0x04, 0, 0})
                                .icmpEcho(1, 2).payload(4).padTo(60).build());
  ASSERT_TRUE(opt);
  expectFrame(opt->bytes, PacketBuilder().eth(kWanMac, kGwMac).ipv4(kVip4, kClient4).df().icmpEcho(1, 2, true)
                              .payload(4).build(), "echo reply, options and padding dropped");
  EXPECT_EQ(ctr(*w, Ctr::EchoReply), 2u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST_F(Fixture, EchoRequestToVipV6) {
  const Frame in = PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).tos(0xb8).ttl(50)
                       .icmpEcho(9, 1).payload(56).build();
  const Frame want = PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).tos(0xb8).icmpEcho(9, 1, true)
                         .payload(56).build();
  auto o = runOne(*w, *k, in);  // the exception path does not take it
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, kWan);
  expectFrame(o->bytes, want, "echo reply v6");
  EXPECT_TRUE(test::l4ChecksumOk(o->bytes));
  auto ext = runOne(*w, *s, PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).ipv6Ext(test::kIpv6DestOpts)
                                .icmpEcho(9, 2).payload(8).build());
  ASSERT_TRUE(ext);
  expectFrame(ext->bytes, PacketBuilder().eth(kWanMac, kGwMac).ipv6(kVip6, kClient6).icmpEcho(9, 2, true).payload(8)
                              .build(), "echo reply v6 without the extension header");
  EXPECT_EQ(ctr(*w, Ctr::EchoReply), 2u);
  EXPECT_EQ(ctr(*w, Ctr::ToKernel), 0u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST_F(Fixture, BadIcmpEcho) {
  const std::vector<Frame> fs = {
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).icmpEcho(1, 1).payload(8).badL4Checksum().build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).icmpEcho(1, 1).payload(8).badL4Checksum().build()};
  EXPECT_TRUE(run(*w, *k, fs).empty());
  expectOnlyDrop(*w, Drop::BadIcmp, 2);
  EXPECT_EQ(ctr(*w, Ctr::EchoReply), 0u);
}

TEST_F(Fixture, IcmpToVipNotHandledStaysIcmpDrop) {
  // A tagged echo request (replies are only made untagged), a timestamp request, an echo reply:
  // to a VIP address, so never the kernel's.
  const std::vector<Frame> fs = {
      PacketBuilder().eth(kGwMac, kWanMac).vlan(5).ipv4(kClient4, kVip4).icmpEcho(1, 1).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).icmp(13, 0, 0).payload(12).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).icmpEcho(1, 1, true).build()};
  EXPECT_TRUE(run(*w, *k, fs).empty());
  expectOnlyDrop(*w, Drop::Icmp, 3);
}

// ---------------------------------------------------------------------------------------------
// ICMP errors about a VIP flow

// What the VIP's side sent (VIP:vport -> client:cport), as the error quotes it.
Frame quotedV4(const IpAddr& src, uint16_t sport, size_t quote_len = SIZE_MAX) {
  Frame ip = ipOf(PacketBuilder().ipv4(src, kClient4).df().ipId(0x4242).tcp(sport, kCport4, kTcpAck | kTcpSyn)
                      .tcpSeq(5000, 1001).payload(60).build());
  if (ip.size() > quote_len) ip.resize(quote_len);
  return ip;
}
Frame quotedV6(const IpAddr& src, uint16_t sport) {
  return ipOf(PacketBuilder().ipv6(src, kClient6).udp(sport, kCport6).payload(30).build());
}

// Fragmentation needed (next-hop MTU 1400) from a router on the client's path, to the VIP.
PacketBuilder fragNeeded(const Frame& quote) {
  PacketBuilder b;
  b.eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).ttl(64).icmp(3, 4, 1400).payload(quote);
  return b;
}
PacketBuilder packetTooBig(const Frame& quote) {
  PacketBuilder b;
  b.eth(kGwMac, kWanMac).ipv6(kRouter6, kVip6).ttl(64).icmp(2, 0, 1280).payload(quote);
  return b;
}

Frame clientSyn4() {
  return PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).tcp(kCport4, 80, kTcpSyn).payload(10).build();
}
Frame clientUdp6() {
  return PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).udp(kCport6, 53).payload(10).build();
}

// What the backend must receive for the ICMP error `in` (whose IP packet is `ip`), in `mode`.
// `outer_id`: the worker's outer IPv4 ID counter at that packet (tunnels).
Frame expectedError(FwdMode mode, const Frame& in, Family f, uint16_t outer_id) {
  const Frame ip = ipOf(in);
  const bool v4 = f == Family::V4;
  const MacAddr& bmac = v4 ? kB4Mac : kB6Mac;
  const uint16_t et = v4 ? 0x0800 : 0x86dd;
  const uint32_t h =
      v4 ? flowHash(kClient4, kVip4, kCport4, 80, kProtoTcp) : flowHash(kClient6, kVip6, kCport6, 53, kProtoUdp);
  switch (mode) {
    case FwdMode::Dsr: return cat({ethHdr(bmac, kLanMac, et), ip});
    case FwdMode::Ipip:
      if (v4) {
        return cat({ethHdr(bmac, kLanMac, et), ipv4Hdr(kLan4, kB4, 4, uint16_t(ip.size()), 0, false, 64, outer_id), ip});
      }
      return cat({ethHdr(bmac, kLanMac, et), ipv6Hdr(kLan6, kB6, 41, uint16_t(ip.size()), h), ip});
    case FwdMode::Gue: {
      const uint16_t l = uint16_t(8 + ip.size());
      const Frame udp = udpHdr(uint16_t(0x8000 | (h & 0x7fff)), 6080, l);
      if (v4) return cat({ethHdr(bmac, kLanMac, et), ipv4Hdr(kLan4, kB4, 17, l, 0, false, 64, outer_id), udp, ip});
      Frame g = cat({ethHdr(bmac, kLanMac, et), ipv6Hdr(kLan6, kB6, 17, l, h), udp, ip});
      test::put16(g, 14 + 40 + 6, *test::l4Checksum(g, *test::locate(g)));
      return g;
    }
    case FwdMode::Nat:
      // Built from scratch: the error as if it had been about the backend's own packet.
      if (v4) {
        return PacketBuilder().eth(kLanMac, bmac).ipv4(kRouter4, kB4).ttl(63).icmp(3, 4, 1400)
            .payload(quotedV4(kB4, 8080, ip.size() - 28)).build();
      }
      return PacketBuilder().eth(kLanMac, bmac).ipv6(kRouter6, kB6).ttl(63).icmp(2, 0, 1280)
          .payload(quotedV6(kB6, 5353)).build();
    case FwdMode::FullNat:
      break;  // not in the per-mode suites: full NAT has its own (fullnat_path_test.cc)
  }
  ADD_FAILURE() << "no expected error for mode " << toString(mode);
  return {};
}

class IcmpError : public test::PerMode<IcmpError> {
 public:
  static Config config(FwdMode m) { return fwdConfig(m); }
  static std::unique_ptr<WorkerState> worker() { return makeWorker(); }
};

TEST_P(IcmpError, FragNeededAndPacketTooBigReachTheFlowsBackend) {
  // The flows exist; tunnels used outer IPv4 IDs 0 and 1 (the counter moves for IPv6 outers too).
  ASSERT_EQ(run(*w, *s, {clientSyn4(), clientUdp6()}).size(), 2u);
  // A whole quoted packet and a minimal one (IP header + 8 bytes).
  const Frame full4 = fragNeeded(quotedV4(kVip4, 80)).build();
  const Frame short4 = fragNeeded(quotedV4(kVip4, 80, 28)).build();
  const Frame full6 = packetTooBig(quotedV6(kVip6, 53)).build();
  auto out = run(*w, *s, {full4, short4, full6});
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) EXPECT_EQ(o.port, kLan);
  expectFrame(out[0].bytes, expectedError(mode, full4, Family::V4, 2), "frag needed, whole quote");
  expectFrame(out[1].bytes, expectedError(mode, short4, Family::V4, 3), "frag needed, 28-byte quote");
  expectFrame(out[2].bytes, expectedError(mode, full6, Family::V6, 0), "packet too big");
  if (mode == FwdMode::Nat) {
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(out[0].bytes));
    EXPECT_TRUE(test::l4ChecksumOk(out[0].bytes));  // ICMP
    EXPECT_TRUE(test::ipv4HeaderChecksumOk(out[0].bytes, 14 + 28));  // quoted header
    EXPECT_TRUE(test::l4ChecksumOkAt(out[0].bytes, 14 + 28));        // quoted TCP
    EXPECT_TRUE(test::l4ChecksumOk(out[2].bytes));                   // ICMPv6
    EXPECT_TRUE(test::l4ChecksumOkAt(out[2].bytes, 14 + 48));        // quoted UDP
  }
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 3u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 2u);  // errors create no flow
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

// A parameter problem (IPv4 type 12, ICMPv6 type 4) is translated for full NAT only
// (fullnat_icmp_test.cc): in these modes it is dropped as icmp, even with a flow and a valid quote.
TEST_P(IcmpError, ParameterProblemIsNotForwarded) {
  ASSERT_EQ(run(*w, *s, {clientSyn4(), clientUdp6()}).size(), 2u);
  const Frame pp4 =
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).icmp(12, 0, 0).payload(quotedV4(kVip4, 80)).build();
  const Frame pp6 =
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kRouter6, kVip6).icmp(4, 0, 0).payload(quotedV6(kVip6, 53)).build();
  EXPECT_TRUE(run(*w, *s, {pp4, pp6}).empty());
  expectOnlyDrop(*w, Drop::Icmp, 2);
  // The same quote in a time exceeded is forwarded (the control).
  const Frame te4 =
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).icmp(11, 0, 0).payload(quotedV4(kVip4, 80)).build();
  EXPECT_EQ(run(*w, *s, {te4}).size(), 1u);
}

TEST_P(IcmpError, OtherErrorTypesAndStatelessWorker) {
  // Time exceeded, other unreachable codes, ICMPv6 unreachable and time exceeded, on a worker
  // that never saw the flow (one backend: the stateless choice is it).
  const Frame q4 = quotedV4(kVip4, 80, 48), q6 = quotedV6(kVip6, 53);
  auto mk4 = [&](uint8_t type, uint8_t code) {
    return PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).icmp(type, code, 0).payload(q4).build();
  };
  auto mk6 = [&](uint8_t type, uint8_t code) {
    return PacketBuilder().eth(kGwMac, kWanMac).ipv6(kRouter6, kVip6).icmp(type, code, 0).payload(q6).build();
  };
  auto out = run(*w, *s, {mk4(11, 0), mk4(3, 1), mk4(3, 3), mk6(1, 4), mk6(3, 0)});
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < out.size(); i++) {
    EXPECT_EQ(out[i].port, kLan);
    const MacAddr want = i < 3 ? kB4Mac : kB6Mac;
    EXPECT_TRUE(std::equal(want.bytes.begin(), want.bytes.end(), out[i].bytes.begin())) << i;
  }
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 5u);
  EXPECT_EQ(w->flows4->size() + w->flows6->size(), 0u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AllModes, IcmpError,
                         ::testing::Values(FwdMode::Dsr, FwdMode::Ipip, FwdMode::Gue, FwdMode::Nat),
                         [](const auto& p) { return std::string(toString(p.param)); });

// Three DSR backends behind vips[0], so which one an error reaches is visible.
MacAddr backendMac(int i) { return macAddr("02:00:00:00:01:1" + std::to_string(i)); }
Config threeBackends(Scheduler sched, int n = 3) {
  Config c = fwdConfig(FwdMode::Dsr, sched);
  c.vips[0].backends.clear();
  for (int i = 0; i < n; i++)
    c.vips[0].backends.push_back(makeBackend(ipAddr("198.18.2." + std::to_string(20 + i)), backendMac(i)));
  return c;
}
int backendOf(const Frame& f) {
  for (int i = 0; i < 8; i++)
    if (std::equal(f.begin(), f.begin() + 6, backendMac(i).bytes.begin())) return i;
  return -1;
}
IpAddr client(uint32_t i) { return IpAddr::v4(rte_cpu_to_be_32(0xc6130000u + i)); }  // 198.19.0.0/16
Frame synFrom(uint32_t i) {
  return PacketBuilder().eth(kGwMac, kWanMac).ipv4(client(i), kVip4).tcp(uint16_t(1000 + i), 80, kTcpSyn).build();
}
Frame errorFor(uint32_t i) {
  Frame q = ipOf(PacketBuilder().ipv4(kVip4, client(i)).tcp(80, uint16_t(1000 + i), kTcpAck).build());
  return PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).icmp(3, 4, 1400).payload(q).build();
}
std::vector<int> backendsOf(const std::vector<Out>& out) {
  std::vector<int> r;
  for (const auto& o : out) r.push_back(backendOf(o.bytes));
  return r;
}

TEST(IcmpErrorScheduling, StatelessChoiceWhenAnotherWorkerHasTheFlow) {
  for (Scheduler sched : {Scheduler::Maglev, Scheduler::SourceHash}) {
    SCOPED_TRACE(std::string(toString(sched)));
    SnapshotBuilder sb;
    auto s = build(sb, threeBackends(sched));
    ASSERT_TRUE(s);
    auto owner = makeWorker(), other = makeWorker();
    std::vector<Frame> syns, errs;
    for (uint32_t i = 0; i < 30; i++) syns.push_back(synFrom(i)), errs.push_back(errorFor(i));
    const auto want = backendsOf(run(*owner, *s, syns));
    ASSERT_EQ(want.size(), 30u);
    EXPECT_EQ(backendsOf(run(*other, *s, errs)), want);
    EXPECT_EQ(ctr(*other, Ctr::IcmpErrorForwarded), 30u);
    EXPECT_EQ(other->flows4->size(), 0u);
  }
}

TEST(IcmpErrorScheduling, FlowEntryWinsOverTheCurrentTable) {
  SnapshotBuilder sb;
  auto s1 = build(sb, threeBackends(Scheduler::Maglev, 2));
  auto s2 = build(sb, threeBackends(Scheduler::Maglev, 3));  // backend 2 added
  ASSERT_TRUE(s1 && s2);
  auto w = makeWorker(), probe = makeWorker();
  std::vector<Frame> syns, errs;
  for (uint32_t i = 0; i < 60; i++) syns.push_back(synFrom(i)), errs.push_back(errorFor(i));
  const auto before = backendsOf(run(*w, *s1, syns));
  const auto fresh = backendsOf(run(*probe, *s2, errs));  // stateless under the new table
  ASSERT_GT(std::count(fresh.begin(), fresh.end(), 2), 0) << "no flow the added backend would take";
  EXPECT_EQ(backendsOf(run(*w, *s2, errs)), before);
}

// A backend the control plane took out of the Maglev table keeps its existing flows while it
// drains, so errors about them must still reach it (its connections' path MTU); an unhealthy
// one's flows move on, and so do their errors: to the stateless choice, as the next packet of
// the flow will (decide_test's FlowStickiness.UnhealthyRehashesDrainingKeeps).
TEST(IcmpErrorScheduling, DrainingBackendKeepsItsFlowsErrorsUnhealthyDoesNot) {
  SnapshotBuilder sb;
  auto s1 = build(sb, threeBackends(Scheduler::Maglev));
  ASSERT_TRUE(s1);
  const uint32_t id0 = s1->vips[0].backends[0], id1 = s1->vips[0].backends[1];
  // Backend 1 out of the table (its slots given to backend 0), in two states.
  const Snapshot draining = test::withBackendOut(*s1, 0, id1, id0, BackendState::Draining);
  const Snapshot unhealthy = test::withBackendOut(*s1, 0, id1, id0, BackendState::Unhealthy);
  std::vector<Frame> syns, errs;
  for (uint32_t i = 0; i < 60; i++) syns.push_back(synFrom(i)), errs.push_back(errorFor(i));
  auto w = makeWorker();
  const auto before = backendsOf(run(*w, *s1, syns));
  ASSERT_EQ(before.size(), 60u);
  const auto on1 = std::count(before.begin(), before.end(), 1);
  ASSERT_GT(on1, 0) << "no flow on backend 1";

  EXPECT_EQ(backendsOf(run(*w, draining, errs)), before) << "errors about a draining backend's flows";
  std::vector<int> moved = before;
  for (int& b : moved)
    if (b == 1) b = 0;
  EXPECT_EQ(backendsOf(run(*w, unhealthy, errs)), moved) << "errors about an unhealthy backend's flows";
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 120u);
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  EXPECT_EQ(ctr(*w, Ctr::FlowNew), 60u);  // errors neither create nor re-point flows
  EXPECT_EQ(ctr(*w, Ctr::FlowRehash), 0u);
  // The flows themselves are untouched: back on the first table, errors find the same backends.
  EXPECT_EQ(backendsOf(run(*w, *s1, errs)), before);
}

TEST(IcmpErrorScheduling, IcmpErrorNoFlow) {
  // Round robin: only the worker that holds the flow knows its backend.
  SnapshotBuilder sb;
  auto s = build(sb, threeBackends(Scheduler::RoundRobin));
  ASSERT_TRUE(s);
  auto w = makeWorker();
  EXPECT_TRUE(run(*w, *s, {errorFor(1)}).empty());
  expectOnlyDrop(*w, Drop::IcmpErrorNoFlow);
  auto syn = run(*w, *s, {synFrom(7), synFrom(8)});
  ASSERT_EQ(syn.size(), 2u);
  EXPECT_EQ(backendsOf(run(*w, *s, {errorFor(8), errorFor(7)})),
            (std::vector<int>{backendOf(syn[1].bytes), backendOf(syn[0].bytes)}));
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 2u);
  expectOnlyDrop(*w, Drop::IcmpErrorNoFlow);
}

TEST_F(Fixture, BadIcmpError) {
  EXPECT_TRUE(run(*w, *s, {fragNeeded(quotedV4(kVip4, 80)).badL4Checksum().build(),
                           packetTooBig(quotedV6(kVip6, 53)).badL4Checksum().build()}).empty());
  expectOnlyDrop(*w, Drop::BadIcmp, 2);
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 0u);
}

TEST_F(Fixture, BadIcmpQuote) {
  Frame icmp_quote = ipOf(PacketBuilder().ipv4(kVip4, kClient4).icmpEcho(1, 1).build());
  Frame v6_in_v4 = quotedV6(kVip6, 53);
  // Extension headers cut short by the end of the quote, and hop-by-hop not first.
  Frame ext6 = ipOf(PacketBuilder().ipv6(kVip6, kClient6).ipv6Ext(test::kIpv6DestOpts, std::vector<uint8_t>(14))
                        .udp(53, kCport6).build());
  Frame hbh_second = ipOf(PacketBuilder().ipv6(kVip6, kClient6).ipv6Ext(test::kIpv6DestOpts)
                              .ipv6Ext(test::kIpv6HopByHop).udp(53, kCport6).payload(8).build());
  const std::vector<Frame> fs = {
      fragNeeded(quotedV4(kVip4, 80, 27)).build(),           // 7 bytes of TCP: no ports
      fragNeeded(quotedV4(kVip4, 80, 12)).build(),           // not even an IP header
      fragNeeded(quotedV4(kWan4, 80)).build(),               // not sent by the VIP it went to
      fragNeeded(quotedV4(kVip4, 81)).build(),               // VIP address, but no VIP on port 81
      fragNeeded(icmp_quote).build(),                        // quoted protocol not TCP/UDP
      fragNeeded(v6_in_v4).build(),                          // IPv6 inside ICMPv4
      packetTooBig(quotedV6(kVip6, 53)).payload(test::truncate(quotedV6(kVip6, 53), 44)).build(),
      packetTooBig(test::truncate(ext6, 40 + 12)).build(),    // quote ends inside the extension header
      packetTooBig(test::truncate(ext6, 40 + 16 + 7)).build(),  // ... or 7 bytes into the UDP header
      packetTooBig(hbh_second).build(),                      // hop-by-hop not first (RFC 8200 §4.3)
  };
  EXPECT_TRUE(run(*w, *k, fs).empty());  // to a VIP: never the kernel's
  expectOnlyDrop(*w, Drop::BadIcmpQuote, fs.size());
}

// A quoted non-first fragment carries no ports; a first fragment (offset 0, more following)
// does, and is the flow's like an unfragmented packet.
TEST_F(Fixture, IcmpQuoteFragment) {
  const Frame later4 = ipOf(PacketBuilder().ipv4(kVip4, kClient4).fragOffset(10).tcp(80, kCport4, kTcpAck).build());
  const Frame later6 = ipOf(PacketBuilder().ipv6(kVip6, kClient6).ipv6Fragment(10, true, 7).udp(53, kCport6)
                                .payload(8).build());
  EXPECT_TRUE(run(*w, *s, {fragNeeded(later4).build(), packetTooBig(later6).build()}).empty());
  expectOnlyDrop(*w, Drop::IcmpQuoteFragment, 2);
  const Frame first4 = ipOf(PacketBuilder().ipv4(kVip4, kClient4).mf().tcp(80, kCport4, kTcpAck).payload(8).build());
  const Frame first6 = ipOf(PacketBuilder().ipv6(kVip6, kClient6).ipv6Fragment(0, true, 7).udp(53, kCport6)
                                .payload(8).build());
  auto out = run(*w, *s, {fragNeeded(first4).build(), packetTooBig(first6).build()});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::equal(kB4Mac.bytes.begin(), kB4Mac.bytes.end(), out[0].bytes.begin()));
  EXPECT_TRUE(std::equal(kB6Mac.bytes.begin(), kB6Mac.bytes.end(), out[1].bytes.begin()));
  expectOnlyDrop(*w, Drop::IcmpQuoteFragment, 2);
}

// A quoted later fragment is forwarded only when this worker's fragment table has a decision
// for exactly the quoted datagram (VIP -> client, its ID): to the recorded backend, not the
// stateless choice. Negative controls: the same errors before the decision is recorded, with
// another ID, and with the decision recorded under the reverse direction (client -> VIP, same
// ID: another datagram) are all refused.
TEST(IcmpQuoteFragmentTable, KnownDatagramGoesToTheRecordedBackend) {
  for (const FwdMode mode : {FwdMode::Dsr, FwdMode::Nat}) {
    SCOPED_TRACE(int(mode));
    SnapshotBuilder sb;
    Config c = fwdConfig(mode);
    const IpAddr b4b = ipAddr("198.18.2.12");
    const MacAddr b4bMac = macAddr("02:00:00:00:01:03");
    c.vips[0].backends.push_back(makeBackend(b4b, b4bMac, mode == FwdMode::Nat ? 8080 : 0));
    auto s = build(sb, c);
    ASSERT_TRUE(s);
    auto w = makeWorker();
    w->frags = std::make_unique<FragTable>(256, 64, 8);
    auto backendId = [&](const IpAddr& a) {
      for (uint32_t i = 0; i < s->backends.size(); i++)
        if (s->backends[i].addr == a) return i;
      ADD_FAILURE() << "no backend";
      return 0u;
    };
    auto vipIndex = [&](const IpAddr& a) {
      for (uint32_t i = 0; i < s->vips.size(); i++)
        if (s->vips[i].addr == a) return i;
      ADD_FAILURE() << "no vip";
      return 0u;
    };
    const Frame later4 = ipOf(
        PacketBuilder().ipv4(kVip4, kClient4).ipId(0x1234).fragOffset(10).tcp(80, kCport4, kTcpAck).build());
    const Frame later4_other_id = ipOf(
        PacketBuilder().ipv4(kVip4, kClient4).ipId(0x1235).fragOffset(10).tcp(80, kCport4, kTcpAck).build());
    const Frame later6 = ipOf(PacketBuilder().ipv6(kVip6, kClient6).ipv6Fragment(10, true, 7).udp(53, kCport6)
                                  .payload(8).build());
    const Frame e4 = fragNeeded(later4).build(), e4x = fragNeeded(later4_other_id).build();
    const Frame e6 = packetTooBig(later6).build();

    // Unknown (nothing recorded): refused.
    EXPECT_TRUE(run(*w, *s, {e4, e6}).empty());
    expectOnlyDrop(*w, Drop::IcmpQuoteFragment, 2);
    // The reverse direction's datagram with the same ID is another datagram: still refused.
    auto keep = [](void*) { ADD_FAILURE() << "nothing is held"; };
    const uint32_t v4i = vipIndex(kVip4), v6i = vipIndex(kVip6);
    ASSERT_TRUE(w->frags->record(makeFragKey(kClient4.bytes.data(), kVip4.bytes.data(), Family::V4, 0x1234, kProtoTcp),
                                 FragDecision{v4i, backendId(b4b), 1, false}, 0, 1000, keep, keep));
    EXPECT_TRUE(run(*w, *s, {e4}).empty());
    expectOnlyDrop(*w, Drop::IcmpQuoteFragment, 3);

    // Known: each goes to the backend recorded for it (b4b for IPv4, not the other backend).
    ASSERT_TRUE(w->frags->record(makeFragKey(kVip4.bytes.data(), kClient4.bytes.data(), Family::V4, 0x1234, kProtoTcp),
                                 FragDecision{v4i, backendId(b4b), 1, false}, 0, 1000, keep, keep));
    ASSERT_TRUE(w->frags->record(makeFragKey(kVip6.bytes.data(), kClient6.bytes.data(), Family::V6, 7, kProtoUdp),
                                 FragDecision{v6i, backendId(kB6), 1, false}, 0, 1000, keep, keep));
    auto out = run(*w, *s, {e4, e6, e4x});
    ASSERT_EQ(out.size(), 2u);  // e4x: another ID, unknown
    EXPECT_TRUE(std::equal(b4bMac.bytes.begin(), b4bMac.bytes.end(), out[0].bytes.begin()));
    EXPECT_TRUE(std::equal(kB6Mac.bytes.begin(), kB6Mac.bytes.end(), out[1].bytes.begin()));
    EXPECT_EQ(out[0].port, kLan);
    EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 2u);
    expectOnlyDrop(*w, Drop::IcmpQuoteFragment, 4);
    if (mode == FwdMode::Nat) {
      // Only the quoted IP source is translated: the bytes after the quoted IP header (payload
      // of a later fragment, not ports) are as quoted.
      const Frame& f = out[0].bytes;
      const size_t quote_off = 14 + 20 + 8;
      ASSERT_GE(f.size(), quote_off + later4.size());
      EXPECT_TRUE(std::equal(b4b.bytes.begin(), b4b.bytes.begin() + 4, f.begin() + quote_off + 12));
      EXPECT_TRUE(std::equal(later4.begin() + 20, later4.end(), f.begin() + quote_off + 20));
    }
    // The decision expires with its entry: refused again.
    EXPECT_TRUE(run(*w, *s, {e4}, kWan, 1000).empty());
    expectOnlyDrop(*w, Drop::IcmpQuoteFragment, 5);
  }
}

// The quote's IPv6 extension headers follow the parser's limit: 8 are walked to the ports, a
// 9th is refused before any port is read. The same for the error's own (outer) header chain.
PacketBuilder withExts(PacketBuilder b, int n) {
  for (int i = 0; i < n; i++)
    b.ipv6Ext(i == 0 ? test::kIpv6HopByHop : i % 2 ? test::kIpv6Routing : test::kIpv6DestOpts);
  return b;
}
Frame quotedV6Exts(int n) {
  return ipOf(withExts(PacketBuilder().ipv6(kVip6, kClient6), n).udp(53, kCport6).payload(30).build());
}

TEST_F(Fixture, QuotedExtensionHeadersAtAndPastTheLimit) {
  const Frame at = packetTooBig(quotedV6Exts(8)).build();
  const Frame past = packetTooBig(quotedV6Exts(9)).build();
  auto out = run(*w, *s, {at});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kLan);
  EXPECT_TRUE(std::equal(kB6Mac.bytes.begin(), kB6Mac.bytes.end(), out[0].bytes.begin()));
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  EXPECT_TRUE(run(*w, *s, {past}).empty());
  expectOnlyDrop(*w, Drop::Ipv6ExtLimit);
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 1u);
}

TEST_F(Fixture, OuterExtensionHeadersAtAndPastTheLimit) {
  auto error = [](int n) {
    return withExts(PacketBuilder().eth(kGwMac, kWanMac).ipv6(kRouter6, kVip6), n).icmp(2, 0, 1280)
        .payload(quotedV6(kVip6, 53)).build();
  };
  auto out = run(*w, *s, {error(8)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::equal(kB6Mac.bytes.begin(), kB6Mac.bytes.end(), out[0].bytes.begin()));
  EXPECT_TRUE(run(*w, *s, {error(9)}).empty());
  expectOnlyDrop(*w, Drop::Ipv6ExtLimit);
}

// RFC 791 / RFC 8200 §5: no path has an MTU below 576 (IPv4) or 1280 (IPv6). The same field
// in other error types is not an MTU (OtherErrorTypesAndStatelessWorker sends them with 0).
TEST_F(Fixture, IcmpMtuTooSmall) {
  auto frag = [](uint32_t mtu) {
    return PacketBuilder().eth(kGwMac, kWanMac).ipv4(kRouter4, kVip4).icmp(3, 4, mtu)
        .payload(quotedV4(kVip4, 80)).build();
  };
  auto ptb = [](uint32_t mtu) {
    return PacketBuilder().eth(kGwMac, kWanMac).ipv6(kRouter6, kVip6).icmp(2, 0, mtu)
        .payload(quotedV6(kVip6, 53)).build();
  };
  EXPECT_TRUE(run(*w, *s, {frag(575), frag(0), frag(68), ptb(1279), ptb(0), ptb(576)}).empty());
  expectOnlyDrop(*w, Drop::IcmpMtuTooSmall, 6);
  // At the minimum, and a 32-bit MTU whose low 16 bits alone would be below it.
  EXPECT_EQ(run(*w, *s, {frag(576), frag(1500), ptb(1280), ptb(0x10000 | 100)}).size(), 4u);
  expectOnlyDrop(*w, Drop::IcmpMtuTooSmall, 6);
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 4u);
}

// [icmp] errors_per_second / burst: a token bucket per worker on now_ms.
TEST_F(Fixture, IcmpRateLimited) {
  Snapshot lim = *s;
  lim.icmp_errors = {10, 3};  // 10 a second, 3 at once
  const Frame e4 = fragNeeded(quotedV4(kVip4, 80)).build(), e6 = packetTooBig(quotedV6(kVip6, 53)).build();
  const Frame bad = fragNeeded(quotedV4(kWan4, 80)).build();  // refused: takes no token
  // Negative control: the default limit lets the same burst through.
  auto ctl = makeWorker();
  EXPECT_EQ(run(*ctl, *s, {e4, e6, e4, e6, e4}, kWan, 1000).size(), 5u);
  EXPECT_EQ(ctl->counters.totalDrops(), 0u);

  EXPECT_TRUE(run(*w, lim, {bad, bad, bad}, kWan, 1000).empty());
  EXPECT_EQ(run(*w, lim, {e4, e6, e4, e6, e4}, kWan, 1000).size(), 3u);
  EXPECT_EQ(w->counters.get(Drop::IcmpRateLimited), 2u);
  EXPECT_EQ(w->counters.get(Drop::BadIcmpQuote), 3u);
  // 99 ms later: not yet a whole token; 100 ms: one.
  EXPECT_TRUE(run(*w, lim, {e4}, kWan, 1099).empty());
  EXPECT_EQ(run(*w, lim, {e4, e6}, kWan, 1100).size(), 1u);
  EXPECT_EQ(w->counters.get(Drop::IcmpRateLimited), 4u);
  // A long quiet period saves up no more than the burst.
  EXPECT_EQ(run(*w, lim, std::vector<Frame>(6, e6), kWan, 60'000).size(), 3u);
  EXPECT_EQ(w->counters.get(Drop::IcmpRateLimited), 7u);
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 7u);
  // The limit is on errors only: data packets and echo replies are not counted against it.
  const Frame echo = PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).icmpEcho(1, 1).build();
  EXPECT_EQ(run(*w, lim, {clientSyn4(), echo}, kWan, 60'000).size(), 2u);
}

TEST_F(Fixture, IcmpErrorTooBigForEgressIsDroppedNotAnswered) {
  Config c = fwdConfig(FwdMode::Ipip);
  c.ports[1].mtu = 1300;
  auto small = build(sb, c);
  ASSERT_TRUE(small);
  // 1281-byte error + 20 bytes of IPIP > 1300: no ICMP about an ICMP error (RFC 1122 §3.2.2).
  Frame q = quotedV4(kVip4, 80);
  q.resize(1253, 0);
  const Frame big = fragNeeded(q).build();
  ASSERT_EQ(get16(big, 16), 1281);
  EXPECT_TRUE(run(*w, *small, {big}).empty());
  expectOnlyDrop(*w, Drop::TooBig);
  EXPECT_EQ(ctr(*w, Ctr::IcmpTooBigSent), 0u);
  // One byte less fits; the outer header copies the error's DF bit, as for data.
  q.resize(1252);
  auto fits = run(*w, *small, {fragNeeded(q).df().build()});
  ASSERT_EQ(fits.size(), 1u);
  EXPECT_EQ(get16(fits[0].bytes, 14 + 6), 0x4000);
  EXPECT_EQ(ctr(*w, Ctr::IcmpErrorForwarded), 1u);
}

// ---------------------------------------------------------------------------------------------
// Exception path

TEST_F(Fixture, NotBalancerTrafficGoesToTheKernelUnchanged) {
  const std::vector<Frame> fs = {
      arpRequest(kWan4),
      PacketBuilder().eth(kGwMac, kWanMac).arp(2, kGwMac, kGw4, kWanMac, kWan4).build(),
      ns(kWan6).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kGw6, ipAddr("ff02::1")).ttl(255).icmp(134, 0, 0).payload(8).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kWan4).tcp(50000, 22, kTcpSyn).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kWan6).udp(5000, 53).payload(20).build(),
      PacketBuilder().eth(kGwMac, macAddr("01:00:5e:00:00:fb")).ipv4(kGw4, ipAddr("224.0.0.251")).udp(5353, 5353)
          .build(),  // multicast
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kWan4).icmpEcho(3, 4).payload(16).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kWan4).mf().udp(1, 2).payload(64).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kGw4, kWan4).l4Raw(test::kIpProtoGre, {0, 0, 8, 0}).build(),
      PacketBuilder().eth(kGwMac, kWanMac).etherType(0x88cc).payload(40).build(),  // LLDP
      PacketBuilder().eth(kGwMac, kWanMac).vlan(7).arp(1, kGwMac, kGw4, MacAddr{}, kVip4).build(),
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kGw4).tcp(1, 2, kTcpAck).build(),  // not ours at all
  };
  auto out = run(*w, *k, fs);
  ASSERT_EQ(out.size(), fs.size());
  for (size_t i = 0; i < fs.size(); i++) {
    EXPECT_EQ(out[i].port, kTap) << i;
    expectFrame(out[i].bytes, fs[i], "to kernel " + std::to_string(i));
  }
  EXPECT_EQ(ctr(*w, Ctr::ToKernel), fs.size());
  EXPECT_EQ(w->counters.totalDrops(), 0u);
  // The same frames without an exception path: the reasons they always had.
  auto w2 = makeWorker();
  EXPECT_TRUE(run(*w2, *s, fs).empty());
  EXPECT_EQ(w2->counters.get(Drop::NotIp), 4u);
  EXPECT_EQ(w2->counters.get(Drop::Icmp), 3u);
  EXPECT_EQ(w2->counters.get(Drop::NoVip), 4u);
  EXPECT_EQ(w2->counters.get(Drop::Fragment), 1u);
  EXPECT_EQ(w2->counters.get(Drop::UnsupportedProto), 1u);
  EXPECT_EQ(w2->counters.totalDrops(), fs.size());
  EXPECT_EQ(ctr(*w2, Ctr::ToKernel), 0u);
}

TEST_F(Fixture, BalancerTrafficAndMalformedFramesStayOffTheKernelPath) {
  // VIP data is forwarded; malformed frames and anything else to a VIP address are dropped.
  Frame bad_ip = clientSyn4();
  bad_ip[14 + 10] ^= 0xff;
  const std::vector<Frame> drops = {
      Frame(10, 0xab),                                                                        // too_short
      bad_ip,                                                                                 // bad_ip_header
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kWan4).udp(1, 2).udpLength(99).build(),  // bad_length
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).tcp(1, 81, kTcpSyn).build(),     // no_vip
      PacketBuilder().eth(kGwMac, kWanMac).ipv4(kClient4, kVip4).mf().tcp(1, 80, kTcpSyn).build(),  // fragment
      PacketBuilder().eth(kGwMac, kWanMac).ipv6(kClient6, kVip6).l4Raw(test::kIpProtoSctp, Frame(12, 0)).build(),
  };
  auto out = run(*w, *k, {clientSyn4(), clientUdp6()});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].port, kLan);
  EXPECT_EQ(out[1].port, kLan);
  EXPECT_TRUE(run(*w, *k, drops).empty());
  for (Drop d : {Drop::TooShort, Drop::BadIpHeader, Drop::BadLength, Drop::NoVip, Drop::Fragment,
                 Drop::UnsupportedProto}) {
    EXPECT_EQ(w->counters.get(d), 1u) << toString(d);
  }
  EXPECT_EQ(w->counters.totalDrops(), drops.size());
  EXPECT_EQ(ctr(*w, Ctr::ToKernel), 0u);
}

TEST_F(Fixture, FromKernelLeavesOnThePortUnchanged) {
  // Whatever the kernel sends, even what the parser would reject, goes out as it is.
  const std::vector<Frame> fs = {
      PacketBuilder().eth(kWanMac, kGwMac).arp(2, kWanMac, kWan4, kGwMac, kGw4).build(),
      PacketBuilder().eth(kWanMac, kGwMac).ipv4(kWan4, kClient4).tcp(22, 50000, kTcpAck).payload(100).build(),
      PacketBuilder().eth(kWanMac, kGwMac).ipv4(kVip4, kClient4).tcp(80, 50000, kTcpAck).build(),
      Frame(10, 0x5a),
  };
  auto out = run(*w, *k, fs, kTap);
  ASSERT_EQ(out.size(), fs.size());
  for (size_t i = 0; i < fs.size(); i++) {
    EXPECT_EQ(out[i].port, kWan);
    expectFrame(out[i].bytes, fs[i], "from kernel " + std::to_string(i));
  }
  EXPECT_EQ(ctr(*w, Ctr::FromKernel), fs.size());
  EXPECT_EQ(ctr(*w, Ctr::RxPackets), fs.size());
  EXPECT_EQ(w->counters.totalDrops(), 0u);
}

TEST_F(Fixture, NoKernelPath) {
  // A tap without a valid peer, and a port whose kernel_port names no port.
  Snapshot broken = *k;
  broken.ports[kTap].kernel_port = -1;
  broken.ports[kWan].kernel_port = 7;
  EXPECT_TRUE(run(*w, broken, {arpRequest(kWan4)}, kTap).empty());
  expectOnlyDrop(*w, Drop::NoKernelPath);
  EXPECT_TRUE(run(*w, broken, {arpRequest(kWan4)}, kWan).empty());
  expectOnlyDrop(*w, Drop::NoKernelPath, 2);
  EXPECT_EQ(ctr(*w, Ctr::ToKernel) + ctr(*w, Ctr::FromKernel), 0u);
}

}  // namespace
}  // namespace l4lb::dataplane
