// The owning worker of a peer's flow (control/sync/sync_owner.h): the Toeplitz hash matches the
// published RSS verification vectors (so it is the NIC's), and RETA and queue -> worker
// mapping follow the daemon's assignment.
#include "control/sync/sync_owner.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_ethdev.h>

#include <cstring>

#include "l4lb/addr.h"

namespace l4lb::control::sync {
namespace {

// The key and vectors of Microsoft's "Verifying the RSS Hash Calculation" (also in DPDK's
// test_thash.c).
const std::vector<uint8_t> kMsKey = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                                     0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                                     0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

SyncFlow flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto = IPPROTO_TCP) {
  SyncFlow f;
  IpAddr s = IpAddr::parse(src).value(), d = IpAddr::parse(dst).value();
  f.v6 = !s.isV4();
  f.proto = proto;
  f.sport_be = htons(sport);
  f.dport_be = htons(dport);
  std::memcpy(f.src, s.bytes.data(), 16);
  std::memcpy(f.dst, d.bytes.data(), 16);
  return f;
}

PortRss rssPort(uint64_t types, uint16_t queues, std::vector<uint16_t> reta) {
  PortRss p;
  p.rx_queues = queues;
  p.rss = true;
  p.key = kMsKey;
  p.hash_types = types;
  p.reta = std::move(reta);
  return p;
}

TEST(FlowOwner, ToeplitzMatchesTheVerificationVectors) {
  const uint64_t all = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  const PortRss l4 = rssPort(all, 2, {0, 1});
  const PortRss l3 = rssPort(RTE_ETH_RSS_IP, 2, {0, 1});
  EXPECT_EQ(FlowOwner::rssHash(l4, flow("66.9.149.187", 2794, "161.142.100.80", 1766)), 0x51ccc178u);
  EXPECT_EQ(FlowOwner::rssHash(l3, flow("66.9.149.187", 2794, "161.142.100.80", 1766)), 0x323e8fc2u);
  EXPECT_EQ(FlowOwner::rssHash(l4, flow("199.92.111.2", 14230, "65.69.140.83", 4739)), 0xc626b0eau);
  EXPECT_EQ(FlowOwner::rssHash(l4, flow("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766)), 0x40207d3du);
  EXPECT_EQ(FlowOwner::rssHash(l3, flow("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766)), 0x2cc18cd5u);
  // UDP hashed with ports only when the port's types say so.
  const SyncFlow udp = flow("66.9.149.187", 2794, "161.142.100.80", 1766, IPPROTO_UDP);
  EXPECT_EQ(FlowOwner::rssHash(rssPort(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP, 2, {0}), udp), 0x323e8fc2u);
  EXPECT_EQ(FlowOwner::rssHash(rssPort(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP, 2, {0}), udp), 0x51ccc178u);
  EXPECT_FALSE(FlowOwner::rssHash(rssPort(RTE_ETH_RSS_IPV6, 2, {0}), udp));  // IPv4 not hashed
}

TEST(FlowOwner, RetaQueueWorker) {
  const uint64_t all = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  const SyncFlow f = flow("66.9.149.187", 2794, "161.142.100.80", 1766);  // hash 0x51ccc178: 0x78 % 128 = 120
  std::vector<uint16_t> reta(128, 0);
  reta[120] = 3;
  // Queue 3 of 4 -> worker 3 of 4, or worker 1 of 2 (q mod workers).
  EXPECT_EQ(FlowOwner(4, {rssPort(all, 4, reta)}).owners(f), 1u << 3);
  EXPECT_EQ(FlowOwner(2, {rssPort(all, 4, reta)}).owners(f), 1u << 1);
  reta[120] = 2;
  EXPECT_EQ(FlowOwner(4, {rssPort(all, 4, reta)}).owners(f), 1u << 2);
  // Not hashed (types without IPv4) -> queue 0 -> worker 0.
  EXPECT_EQ(FlowOwner(4, {rssPort(RTE_ETH_RSS_IPV6, 4, reta)}).owners(f), 1u);
}

TEST(FlowOwner, FallBacks) {
  const SyncFlow f = flow("198.18.41.5", 40000, "198.18.42.100", 80);
  PortRss single;  // one queue: worker 0
  EXPECT_EQ(FlowOwner(3, {single}).owners(f), 1u);
  PortRss noRss;
  noRss.rx_queues = 3;  // several queues, RSS unknown: everyone
  EXPECT_EQ(FlowOwner(3, {noRss}).owners(f), 7u);
  EXPECT_EQ(FlowOwner(3, {single, noRss}).owners(f), 7u);
  EXPECT_EQ(FlowOwner(1, {noRss}).owners(f), 1u);  // one worker: it
  // Two ports whose RSS disagree: both owners.
  const uint64_t all = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  std::vector<uint16_t> r0(128, 0), r1(128, 1);
  EXPECT_EQ(FlowOwner(2, {rssPort(all, 2, r0), rssPort(all, 2, r1)}).owners(f), 3u);
  EXPECT_EQ(FlowOwner(2, {rssPort(all, 2, r1), rssPort(all, 2, r1)}).owners(f), 2u);
}

}  // namespace
}  // namespace l4lb::control::sync
