// l4lb's XDP program, run in the kernel with BPF_PROG_TEST_RUN on frames from the packet
// builder, its address map filled through XdpAddrMap: one test per verdict of the decision list
// (l4lb_xdp.bpf.c), each asserting the exact counters that moved; the verdicts with an AF_XDP
// socket in xsks_map; and XdpAddrMap::sync() semantics. Needs root (CAP_BPF + CAP_NET_ADMIN);
// skipped otherwise, with the reason.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "control/xdp_map.h"
#include "dataplane/xdp/l4lb_xdp.h"
#include "packet_builder.h"

#ifndef L4LB_XDP_TEST_OBJ
#error "tests/meson.build defines L4LB_XDP_TEST_OBJ (the built l4lb_xdp.o)"
#endif

namespace l4lb::control {
namespace {

using namespace l4lb::test;
using Counts = std::map<std::string, uint64_t>;

const IpAddr kVip4 = ipAddr("198.18.1.10");
const IpAddr kVip6 = ipAddr("2001:db8:1::10");
const IpAddr kOwn4 = ipAddr("198.18.0.1");
const IpAddr kOwn6 = ipAddr("2001:db8::1");
const IpAddr kBoth4 = ipAddr("198.18.1.11");  // VIP and OWN: OWN is checked first
const IpAddr kNat4 = ipAddr("198.18.2.21");
const IpAddr kNat6 = ipAddr("2001:db8:2::21");
const IpAddr kClient4 = ipAddr("198.19.0.5");
const IpAddr kClient6 = ipAddr("2001:db8:ff::5");
const MacAddr kPeerMac = macAddr("02:00:00:00:00:aa");
const MacAddr kOurMac = macAddr("02:00:00:00:00:bb");

// The two counters every redirect moves in a test run: the reason, and the fallback to XDP_PASS
// because xsks_map holds no socket here.
Counts redirected(const std::string& reason) { return {{reason, 1}, {"redirect_no_xsk", 1}}; }

class XdpProgramTest : public testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root (CAP_BPF, CAP_NET_ADMIN)";
    obj_ = bpf_object__open_file(L4LB_XDP_TEST_OBJ, nullptr);
    ASSERT_NE(obj_, nullptr) << "opening " << L4LB_XDP_TEST_OBJ << ": " << std::strerror(errno);
    if (int rc = bpf_object__load(obj_); rc != 0) {
      if (rc == -EPERM) GTEST_SKIP() << "the kernel refuses BPF here (EPERM)";
      FAIL() << "loading " << L4LB_XDP_TEST_OBJ << ": " << std::strerror(-rc);
    }
    bpf_program* prog = bpf_object__find_program_by_name(obj_, "l4lb_xdp");
    ASSERT_NE(prog, nullptr);
    // The PMD runs the object's first program: it must be this one.
    ASSERT_EQ(bpf_object__next_program(obj_, nullptr), prog);
    ASSERT_NE(bpf_object__find_map_by_name(obj_, "xsks_map"), nullptr) << "the PMD needs xsks_map";
    prog_fd_ = bpf_program__fd(prog);
    addrs_fd_ = bpf_map__fd(bpf_object__find_map_by_name(obj_, "l4lb_addrs"));
    stats_fd_ = bpf_map__fd(bpf_object__find_map_by_name(obj_, "l4lb_xdp_stats"));
    std::string err;
    map_ = XdpAddrMap::fromFds(addrs_fd_, stats_fd_, err);
    ASSERT_NE(map_, nullptr) << err;
    ASSERT_TRUE(map_->sync({{kVip4, kXdpVip},
                            {kVip6, kXdpVip},
                            {kOwn4, kXdpOwn},
                            {kOwn6, kXdpOwn},
                            {kBoth4, kXdpVip | kXdpOwn},
                            {kNat4, kXdpNatBackend},
                            {kNat6, kXdpNatBackend}},
                           err))
        << err;
  }
  void TearDown() override {
    map_.reset();
    if (obj_) bpf_object__close(obj_);
  }

  // Runs the program once on `frame`; returns the counters that moved (only those) and sets
  // action_. The frame must come back unchanged: the program never rewrites.
  Counts run(const std::vector<uint8_t>& frame) {
    Counts before = map_->stats();
    std::vector<uint8_t> out(frame.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = uint32_t(frame.size()), .data_size_out = uint32_t(out.size()),
                .repeat = 1);
    int rc = bpf_prog_test_run_opts(prog_fd_, &opts);
    EXPECT_EQ(rc, 0) << std::strerror(errno);
    action_ = opts.retval;
    out.resize(opts.data_size_out);
    EXPECT_EQ(out, frame);
    Counts moved;
    for (const auto& [name, value] : map_->stats()) {
      if (value != before.at(name)) moved[name] = value - before.at(name);
    }
    return moved;
  }

  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1, addrs_fd_ = -1, stats_fd_ = -1;
  std::unique_ptr<XdpAddrMap> map_;
  uint32_t action_ = 0;
};

// Every verdict hands the packet on with XDP_PASS in a test run: a pass is a pass, and a redirect
// to the empty xsks_map falls back to it. The counters tell the two apart (XdpRedirectTest below
// puts a socket in xsks_map, where the verdicts differ).

TEST_F(XdpProgramTest, Ipv4ToVipIsRedirected) {
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).tcp(40000, 80, 0x02).build()),
            redirected("redirect_vip"));
  EXPECT_EQ(action_, uint32_t(XDP_PASS));
  // IPv4 options do not hide the destination.
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).ipOptions({1, 1, 1, 1}).udp(1, 53).build()),
            redirected("redirect_vip"));
}

TEST_F(XdpProgramTest, Ipv6ToVipIsRedirected) {
  EXPECT_EQ(run(PacketBuilder().ipv6(kClient6, kVip6).udp(40000, 53).payload(10).build()),
            redirected("redirect_vip"));
  // Unicast NS to the VIP (neighbour unreachability detection) goes by destination.
  EXPECT_EQ(run(PacketBuilder().ipv6(kClient6, kVip6).ttl(255).neighborSolicit(kVip6).build()),
            redirected("redirect_vip"));
}

TEST_F(XdpProgramTest, OneVlanTagIsSkipped) {
  EXPECT_EQ(run(PacketBuilder().vlan(100).ipv4(kClient4, kVip4).tcp(40000, 80, 0x02).build()),
            redirected("redirect_vip"));
  EXPECT_EQ(run(PacketBuilder().vlan(7, kEtherTypeQinQ).ipv6(kClient6, kOwn6).udp(1, 2).build()),
            (Counts{{"pass_own", 1}}));
  EXPECT_EQ(run(PacketBuilder().vlan(100).arp(1, kPeerMac, kClient4, MacAddr{}, kVip4).build()),
            redirected("redirect_arp_vip"));
}

TEST_F(XdpProgramTest, SecondVlanTagIsNotParsed) {
  EXPECT_EQ(run(PacketBuilder()
                    .vlan(100, kEtherTypeQinQ)
                    .vlan(200)
                    .ipv4(kClient4, kVip4)
                    .udp(1, 2)
                    .build()),
            (Counts{{"pass_not_ip", 1}}));
}

TEST_F(XdpProgramTest, ArpForVipIsRedirected) {
  EXPECT_EQ(run(PacketBuilder().arp(1, kPeerMac, kClient4, MacAddr{}, kVip4).padTo(60).build()),
            redirected("redirect_arp_vip"));
  // A reply to the VIP's own request (its target is the VIP) too.
  EXPECT_EQ(run(PacketBuilder().arp(2, kPeerMac, kClient4, kOurMac, kVip4).build()),
            redirected("redirect_arp_vip"));
}

TEST_F(XdpProgramTest, OtherArpPasses) {
  EXPECT_EQ(run(PacketBuilder().arp(1, kPeerMac, kClient4, MacAddr{}, kOwn4).build()),
            (Counts{{"pass_arp", 1}}));
  EXPECT_EQ(
      run(PacketBuilder().arp(1, kPeerMac, kClient4, MacAddr{}, ipAddr("198.18.9.9")).build()),
      (Counts{{"pass_arp", 1}}));
  // The sender being a VIP does not matter: the target decides.
  EXPECT_EQ(run(PacketBuilder().arp(2, kOurMac, kVip4, kPeerMac, kClient4).build()),
            (Counts{{"pass_arp", 1}}));
  // An ARP from a NAT backend (resolving its gateway) is the host's.
  EXPECT_EQ(run(PacketBuilder().arp(1, kPeerMac, kNat4, MacAddr{}, kOwn4).build()),
            (Counts{{"pass_arp", 1}}));
}

TEST_F(XdpProgramTest, OwnAddressPasses) {
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kOwn4).tcp(40000, 22, 0x02).build()),
            (Counts{{"pass_own", 1}}));
  EXPECT_EQ(run(PacketBuilder().ipv6(kClient6, kOwn6).tcp(40000, 22, 0x02).build()),
            (Counts{{"pass_own", 1}}));
  // OWN is checked before VIP, and before NAT_BACKEND (a backend's health-check reply).
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kBoth4).udp(1, 2).build()),
            (Counts{{"pass_own", 1}}));
  EXPECT_EQ(run(PacketBuilder().ipv4(kNat4, kOwn4).tcp(80, 40000, 0x12).build()),
            (Counts{{"pass_own", 1}}));
}

TEST_F(XdpProgramTest, NeighbourSolicitationForVipIsRedirected) {
  EXPECT_EQ(run(PacketBuilder()
                    .ipv6(kClient6, solicitedNode(kVip6))
                    .ttl(255)
                    .neighborSolicit(kVip6, kPeerMac)
                    .build()),
            redirected("redirect_nd_vip"));
  // Duplicate address detection: from the unspecified address, no option.
  EXPECT_EQ(run(PacketBuilder()
                    .ipv6(ipAddr("::"), solicitedNode(kVip6))
                    .ttl(255)
                    .neighborSolicit(kVip6)
                    .build()),
            redirected("redirect_nd_vip"));
}

TEST_F(XdpProgramTest, OtherNeighbourDiscoveryPasses) {
  EXPECT_EQ(run(PacketBuilder()
                    .ipv6(kClient6, solicitedNode(kOwn6))
                    .ttl(255)
                    .neighborSolicit(kOwn6, kPeerMac)
                    .build()),
            (Counts{{"pass_nd", 1}}));
  // A NAT backend resolving its gateway: ND is the host's, not a NAT reply.
  EXPECT_EQ(run(PacketBuilder()
                    .ipv6(kNat6, solicitedNode(kOwn6))
                    .ttl(255)
                    .neighborSolicit(kOwn6, kPeerMac)
                    .build()),
            (Counts{{"pass_nd", 1}}));
  // A router advertisement (type 134) from a NAT backend.
  EXPECT_EQ(run(PacketBuilder()
                    .ipv6(kNat6, ipAddr("ff02::1"))
                    .l4Raw(kIpProtoIcmp6, {134, 0, 0, 0, 64, 0, 0, 0})
                    .build()),
            (Counts{{"pass_nd", 1}}));
}

TEST_F(XdpProgramTest, NatReplyIsRedirected) {
  EXPECT_EQ(run(PacketBuilder().ipv4(kNat4, kClient4).tcp(8080, 40000, 0x12).build()),
            redirected("redirect_nat_reply"));
  EXPECT_EQ(run(PacketBuilder().ipv6(kNat6, kClient6).udp(53, 40000).build()),
            redirected("redirect_nat_reply"));
  // ICMPv6 that is not ND (an echo reply) from a backend is a NAT reply.
  EXPECT_EQ(run(PacketBuilder().ipv6(kNat6, kClient6).icmpEcho(1, 1, true).build()),
            redirected("redirect_nat_reply"));
}

TEST_F(XdpProgramTest, EverythingElsePasses) {
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, ipAddr("198.18.9.9")).tcp(1, 2, 0x02).build()),
            (Counts{{"pass_other", 1}}));
  EXPECT_EQ(run(PacketBuilder().ipv4(kVip4, kClient4).tcp(80, 40000, 0x12).build()),
            (Counts{{"pass_other", 1}}));  // from a VIP is not to a VIP
  EXPECT_EQ(run(PacketBuilder().ipv6(kClient6, ipAddr("2001:db8:9::9")).icmpEcho(1, 1).build()),
            (Counts{{"pass_other", 1}}));
  // ICMPv6 behind an extension header is not parsed as ND (real ND never has one).
  EXPECT_EQ(run(PacketBuilder()
                    .ipv6(kClient6, solicitedNode(kVip6))
                    .ipv6Ext(kIpv6HopByHop)
                    .neighborSolicit(kVip6)
                    .build()),
            (Counts{{"pass_other", 1}}));
  EXPECT_EQ(run(PacketBuilder().payload(46).build()), (Counts{{"pass_not_ip", 1}}));
}

TEST_F(XdpProgramTest, ShortOrMalformedPasses) {
  const Counts malformed{{"pass_malformed", 1}};
  auto v4 = PacketBuilder().ipv4(kClient4, kVip4).tcp(40000, 80, 0x02).build();
  auto v6 = PacketBuilder().ipv6(kClient6, kVip6).tcp(40000, 80, 0x02).build();
  EXPECT_EQ(run(truncate(v4, 14 + 19)), malformed);  // IPv4 header cut
  EXPECT_EQ(run(truncate(v6, 14 + 39)), malformed);  // IPv6 header cut
  EXPECT_EQ(run(truncate(PacketBuilder().vlan(5).ipv4(kClient4, kVip4).build(), 14)), malformed);
  EXPECT_EQ(run(truncate(PacketBuilder().vlan(5).ipv4(kClient4, kVip4).build(), 17)), malformed);
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).ihl(4).udp(1, 2).build()), malformed);
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).ihl(15).udp(1, 2).build()), malformed);
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).ipVersion(6).udp(1, 2).build()), malformed);
  EXPECT_EQ(run(PacketBuilder().ipv6(kClient6, kVip6).ipVersion(4).udp(1, 2).build()), malformed);
  auto arp = PacketBuilder().arp(1, kPeerMac, kClient4, MacAddr{}, kVip4).build();
  EXPECT_EQ(run(truncate(arp, 14 + 27)), malformed);
  arp[14 + 5] = 16;  // protocol address length: not IPv4
  EXPECT_EQ(run(arp), malformed);
  // An NS cut inside its target address (to a multicast destination: no other rule matches).
  auto ns =
      PacketBuilder().ipv6(kClient6, solicitedNode(kVip6)).ttl(255).neighborSolicit(kVip6).build();
  EXPECT_EQ(run(truncate(ns, 14 + 40 + 23)), malformed);
  EXPECT_EQ(run(truncate(ns, 14 + 40)), malformed);
}

// ---------------------------------------------------------------------------------------------
// With a socket in xsks_map, as the PMD leaves it: the verdicts themselves.
//
// bpf_redirect_map() on an XSKMAP returns XDP_REDIRECT when the key holds a socket and the
// fallback (XDP_PASS) otherwise; BPF_PROG_TEST_RUN (without BPF_F_TEST_XDP_LIVE_FRAMES) returns
// the program's verdict and redirects nothing, so a real socket in the map is all it takes for a
// test run to tell XDP_REDIRECT from XDP_PASS. The test run's rx_queue_index is 0.

// An AF_XDP socket (copy mode, with a UMEM, fill, completion and RX rings: what the PMD inserts)
// bound to queue 0 of the loopback device of a network namespace of its own. The namespace is
// unnamed: it lives exactly as long as the socket, so nothing is left behind however the test
// ends, and no address is configured anywhere. The calling thread returns to its namespace.
class XskSocket {
 public:
  ~XskSocket() {
    if (fd_ >= 0) close(fd_);
    if (umem_ != MAP_FAILED) munmap(umem_, kUmemSize);
  }
  int fd() const { return fd_; }

  // Empty string on success, else what failed.
  std::string open() {
    int home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return std::string("/proc/self/ns/net: ") + std::strerror(errno);
    if (unshare(CLONE_NEWNET) != 0) {
      std::string err = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      close(home);
      return err;
    }
    std::string err = bindInThisNetns();
    if (setns(home, CLONE_NEWNET) != 0 && err.empty()) err = std::string("setns: ") + std::strerror(errno);
    close(home);
    return err;
  }

 private:
  static constexpr uint32_t kFrames = 64, kFrameSize = 2048;
  static constexpr size_t kUmemSize = size_t(kFrames) * kFrameSize;

  std::string bindInThisNetns() {
    auto fail = [](const char* what) { return std::string(what) + ": " + std::strerror(errno); };
    fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail("socket(AF_XDP)");
    umem_ = mmap(nullptr, kUmemSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (umem_ == MAP_FAILED) return fail("mmap");
    xdp_umem_reg reg{};
    reg.addr = reinterpret_cast<uintptr_t>(umem_);
    reg.len = kUmemSize;
    reg.chunk_size = kFrameSize;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) != 0) return fail("XDP_UMEM_REG");
    int n = int(kFrames);
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_FILL_RING, &n, sizeof(n)) != 0) return fail("XDP_UMEM_FILL_RING");
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_COMPLETION_RING, &n, sizeof(n)) != 0)
      return fail("XDP_UMEM_COMPLETION_RING");
    if (setsockopt(fd_, SOL_XDP, XDP_RX_RING, &n, sizeof(n)) != 0) return fail("XDP_RX_RING");
    sockaddr_xdp sa{};
    sa.sxdp_family = AF_XDP;
    sa.sxdp_ifindex = if_nametoindex("lo");
    sa.sxdp_queue_id = 0;
    sa.sxdp_flags = XDP_COPY;
    if (sa.sxdp_ifindex == 0) return fail("lo in the new namespace");
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return fail("bind to lo queue 0");
    return {};
  }

  int fd_ = -1;
  void* umem_ = MAP_FAILED;
};

class XdpRedirectTest : public XdpProgramTest {
 protected:
  void SetUp() override {
    XdpProgramTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    xsks_fd_ = bpf_map__fd(bpf_object__find_map_by_name(obj_, "xsks_map"));
    std::string err = xsk_.open();
    ASSERT_EQ(err, "") << "an AF_XDP socket for xsks_map";
    putSocketAt(0);
  }
  void putSocketAt(uint32_t queue) {
    int fd = xsk_.fd();
    ASSERT_EQ(bpf_map_update_elem(xsks_fd_, &queue, &fd, BPF_ANY), 0)
        << "xsks_map[" << queue << "]: " << std::strerror(errno);
  }

  XskSocket xsk_;
  int xsks_fd_ = -1;
};

TEST_F(XdpRedirectTest, BalancerTrafficIsRedirected) {
  struct Case {
    const char* what;
    std::vector<uint8_t> frame;
    const char* reason;
  };
  const Case cases[] = {
      {"IPv4 to a VIP", PacketBuilder().ipv4(kClient4, kVip4).tcp(40000, 80, 0x02).build(), "redirect_vip"},
      {"IPv6 to a VIP", PacketBuilder().ipv6(kClient6, kVip6).udp(40000, 53).payload(10).build(),
       "redirect_vip"},
      {"tagged IPv4 to a VIP", PacketBuilder().vlan(100).ipv4(kClient4, kVip4).udp(1, 2).build(),
       "redirect_vip"},
      {"ARP for a VIP", PacketBuilder().arp(1, kPeerMac, kClient4, MacAddr{}, kVip4).padTo(60).build(),
       "redirect_arp_vip"},
      {"NS for a VIP",
       PacketBuilder().ipv6(kClient6, solicitedNode(kVip6)).ttl(255).neighborSolicit(kVip6, kPeerMac).build(),
       "redirect_nd_vip"},
      {"IPv4 NAT reply", PacketBuilder().ipv4(kNat4, kClient4).tcp(8080, 40000, 0x12).build(),
       "redirect_nat_reply"},
      {"IPv6 NAT reply", PacketBuilder().ipv6(kNat6, kClient6).udp(53, 40000).build(), "redirect_nat_reply"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(run(c.frame), (Counts{{c.reason, 1}}));  // no redirect_no_xsk: the socket was found
    EXPECT_EQ(action_, uint32_t(XDP_REDIRECT));
  }
}

TEST_F(XdpRedirectTest, EverythingElseStillPasses) {
  struct Case {
    const char* what;
    std::vector<uint8_t> frame;
    const char* reason;
  };
  const Case cases[] = {
      {"IPv4 to another address", PacketBuilder().ipv4(kClient4, ipAddr("198.18.9.9")).tcp(1, 2, 0x02).build(),
       "pass_other"},
      {"IPv6 from a VIP", PacketBuilder().ipv6(kVip6, kClient6).tcp(80, 40000, 0x12).build(), "pass_other"},
      {"to an own address", PacketBuilder().ipv4(kClient4, kOwn4).tcp(40000, 22, 0x02).build(), "pass_own"},
      {"VIP and own", PacketBuilder().ipv4(kClient4, kBoth4).udp(1, 2).build(), "pass_own"},
      {"ARP for an own address", PacketBuilder().arp(1, kPeerMac, kClient4, MacAddr{}, kOwn4).build(), "pass_arp"},
      {"NS for an own address",
       PacketBuilder().ipv6(kClient6, solicitedNode(kOwn6)).ttl(255).neighborSolicit(kOwn6, kPeerMac).build(),
       "pass_nd"},
      {"not IP", PacketBuilder().payload(46).build(), "pass_not_ip"},
      {"malformed to a VIP", PacketBuilder().ipv4(kClient4, kVip4).ihl(4).udp(1, 2).build(), "pass_malformed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(run(c.frame), (Counts{{c.reason, 1}}));
    EXPECT_EQ(action_, uint32_t(XDP_PASS));
  }
}

TEST_F(XdpRedirectTest, TheKeyIsTheReceiveQueue) {
  // The socket only at queue 1: a packet received on queue 0 finds none and falls back to pass.
  const uint32_t zero = 0;
  ASSERT_EQ(bpf_map_delete_elem(xsks_fd_, &zero), 0) << std::strerror(errno);
  putSocketAt(1);
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).tcp(40000, 80, 0x02).build()),
            redirected("redirect_vip"));
  EXPECT_EQ(action_, uint32_t(XDP_PASS));
}

// ---------------------------------------------------------------------------------------------
// sync() and dump()

class XdpSyncTest : public XdpProgramTest {
 protected:
  void SetUp() override {
    XdpProgramTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string err;
    ASSERT_TRUE(map_->sync({}, err)) << err;
  }
};

TEST_F(XdpSyncTest, AddsAndDumpsSorted) {
  std::string err;
  ASSERT_TRUE(map_->sync(
      {{kVip6, kXdpVip}, {kNat4, kXdpNatBackend}, {kVip4, kXdpVip}, {kOwn4, kXdpOwn}}, err))
      << err;
  EXPECT_EQ(map_->lastSync().added, 4u);
  EXPECT_EQ(map_->lastSync().updated + map_->lastSync().removed + map_->lastSync().unchanged, 0u);
  EXPECT_EQ(map_->dump(),
            (std::vector<XdpAddr>{
                {kOwn4, kXdpOwn}, {kVip4, kXdpVip}, {kNat4, kXdpNatBackend}, {kVip6, kXdpVip}}));
  // The program sees them at once.
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).udp(1, 2).build()),
            redirected("redirect_vip"));
}

TEST_F(XdpSyncTest, FlagsOfOneAddressAreOred) {
  std::string err;
  ASSERT_TRUE(map_->sync({{kVip4, kXdpVip}, {kVip4, kXdpNatBackend}, {kVip4, kXdpVip}}, err))
      << err;
  EXPECT_EQ(map_->lastSync().added, 1u);
  EXPECT_EQ(map_->dump(), (std::vector<XdpAddr>{{kVip4, kXdpVip | kXdpNatBackend}}));
}

TEST_F(XdpSyncTest, ChangesFlagsInPlace) {
  std::string err;
  ASSERT_TRUE(map_->sync({{kVip4, kXdpVip}, {kOwn4, kXdpOwn}}, err)) << err;
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).udp(1, 2).build()),
            redirected("redirect_vip"));
  ASSERT_TRUE(map_->sync({{kVip4, kXdpOwn}, {kOwn4, kXdpOwn}}, err)) << err;
  EXPECT_EQ(map_->lastSync().updated, 1u);
  EXPECT_EQ(map_->lastSync().unchanged, 1u);
  EXPECT_EQ(map_->lastSync().added + map_->lastSync().removed, 0u);
  EXPECT_EQ(map_->dump(), (std::vector<XdpAddr>{{kOwn4, kXdpOwn}, {kVip4, kXdpOwn}}));
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).udp(1, 2).build()),
            (Counts{{"pass_own", 1}}));
}

TEST_F(XdpSyncTest, DeletesStaleEntriesIncludingForeignOnes) {
  std::string err;
  ASSERT_TRUE(map_->sync({{kVip4, kXdpVip}, {kVip6, kXdpVip}, {kNat6, kXdpNatBackend}}, err))
      << err;
  // An entry sync() never wrote, and one no address maps to (family 5): both stale.
  l4lb_xdp_addr_key foreign{};
  foreign.family = 4;
  std::memcpy(foreign.addr, kClient4.bytes.data(), 4);
  uint32_t flags = kXdpVip;
  ASSERT_EQ(bpf_map_update_elem(addrs_fd_, &foreign, &flags, BPF_ANY), 0);
  foreign.family = 5;
  ASSERT_EQ(bpf_map_update_elem(addrs_fd_, &foreign, &flags, BPF_ANY), 0);

  ASSERT_TRUE(map_->sync({{kVip6, kXdpVip}}, err)) << err;
  EXPECT_EQ(map_->lastSync().removed, 4u);
  EXPECT_EQ(map_->lastSync().unchanged, 1u);
  EXPECT_EQ(map_->lastSync().added + map_->lastSync().updated, 0u);
  EXPECT_EQ(map_->dump(), (std::vector<XdpAddr>{{kVip6, kXdpVip}}));
  EXPECT_EQ(run(PacketBuilder().ipv4(kClient4, kVip4).udp(1, 2).build()),
            (Counts{{"pass_other", 1}}));
  ASSERT_TRUE(map_->sync({}, err)) << err;
  EXPECT_EQ(map_->lastSync().removed, 1u);
  EXPECT_TRUE(map_->dump().empty());
}

TEST_F(XdpSyncTest, SecondSyncRewritesNothing) {
  const std::vector<XdpAddr> want{
      {kVip4, kXdpVip}, {kOwn6, kXdpOwn}, {kNat4, kXdpNatBackend | kXdpVip}};
  std::string err;
  ASSERT_TRUE(map_->sync(want, err)) << err;
  EXPECT_EQ(map_->lastSync().added, 3u);
  const auto before = map_->dump();
  ASSERT_TRUE(map_->sync(want, err)) << err;
  EXPECT_EQ(map_->lastSync().unchanged, 3u);
  EXPECT_EQ(map_->lastSync().added + map_->lastSync().updated + map_->lastSync().removed, 0u);
  EXPECT_EQ(map_->dump(), before);
}

TEST_F(XdpSyncTest, BadInputChangesNothing) {
  std::string err;
  ASSERT_TRUE(map_->sync({{kVip4, kXdpVip}}, err)) << err;
  EXPECT_FALSE(map_->sync({{kOwn4, kXdpOwn}, {kVip6, 0}}, err));
  EXPECT_EQ(err,
            "XDP address 2001:db8:1::10: flags 0 (expected a non-empty set of vip=1, own=2, "
            "nat_backend=4)");
  EXPECT_FALSE(map_->sync({{kVip6, 8}}, err));
  EXPECT_EQ(err,
            "XDP address 2001:db8:1::10: flags 8 (expected a non-empty set of vip=1, own=2, "
            "nat_backend=4)");
  std::vector<XdpAddr> many;
  for (uint32_t i = 0; i <= L4LB_XDP_MAX_ADDRS; i++)
    many.push_back({IpAddr::v4(htonl(0xc6120000u + i)), kXdpVip});
  EXPECT_FALSE(map_->sync(many, err));
  EXPECT_EQ(err, "XDP address map: 16385 addresses, the program holds 16384");
  EXPECT_EQ(map_->dump(), (std::vector<XdpAddr>{{kVip4, kXdpVip}}));
}

TEST_F(XdpSyncTest, FromFdsChecksTheMaps) {
  std::string err;
  EXPECT_EQ(XdpAddrMap::fromFds(stats_fd_, addrs_fd_, err), nullptr);
  EXPECT_EQ(err.rfind("l4lb_addrs: type 6, key 4 B, value 8 B; expected a hash", 0), 0u) << err;
  EXPECT_EQ(XdpAddrMap::fromFds(-1, stats_fd_, err), nullptr);
  EXPECT_EQ(err, "l4lb_addrs: no descriptor");
  EXPECT_EQ(XdpAddrMap::fromFds(addrs_fd_, prog_fd_, err), nullptr);
  EXPECT_EQ(err.rfind("l4lb_xdp_stats: not a BPF map: ", 0), 0u) << err;
  // The adapter holds its own descriptors: the caller's may be closed.
  int a = dup(addrs_fd_), s = dup(stats_fd_);
  auto m = XdpAddrMap::fromFds(a, s);
  close(a);
  close(s);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->stats().size(), size_t(L4LB_XDP_STAT_COUNT));
  ASSERT_TRUE(m->sync({{kOwn4, kXdpOwn}}, err)) << err;
  EXPECT_EQ(map_->dump(), (std::vector<XdpAddr>{{kOwn4, kXdpOwn}}));
}

TEST(XdpAddrMapOpen, ClearErrors) {
  std::string err;
  EXPECT_EQ(XdpAddrMap::open("l4lb-no-such0", err), nullptr);
  EXPECT_EQ(err, "no interface l4lb-no-such0: No such device");
  if (geteuid() != 0) GTEST_SKIP() << "querying XDP programs needs root";
  // The loopback device of this network namespace carries no XDP program.
  EXPECT_EQ(XdpAddrMap::open("lo", err), nullptr);
  EXPECT_EQ(err, "no XDP program on lo");
}

TEST(XdpDefaultProgram, IsTheBuiltObject) {
  // Run from the build tree, the build's object exists and wins over the installed path.
  EXPECT_EQ(defaultXdpProgram(), L4LB_XDP_OBJ_BUILD);
  EXPECT_EQ(std::string(L4LB_XDP_OBJ_BUILD), L4LB_XDP_TEST_OBJ);
  EXPECT_NE(std::string(L4LB_XDP_OBJ_INSTALL).find("/l4lb/l4lb_xdp.o"), std::string::npos);
}

}  // namespace
}  // namespace l4lb::control
