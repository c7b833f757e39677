// Full NAT's RSS steering (snat_rss.h, FullNatState::allocFor): the hash split into the fixed
// fields' term and the port's term, and, for a key and a RETA, every steered pair's reply hashed
// by rte_softrss lands on a queue of the worker that allocated (and owns) it; what is left once
// no such pair is free, a port that is not steered, quiet time and exhaustion.
#include "dataplane/fullnat/snat_rss.h"

#include <arpa/inet.h>
#include <rte_ethdev.h>
#include <rte_thash.h>

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/parser.h"
#include "packet_builder.h"

namespace l4lb::dataplane {
namespace {

// The Toeplitz key of Microsoft's RSS verification suite (the default of many NICs).
const std::vector<uint8_t> kKey = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                                   0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                                   0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
constexpr uint64_t kAllTypes = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;

// The reply's hash as the NIC computes it: rte_softrss over the whole tuple (CPU order).
uint32_t replyHash(const IpAddr& backend, uint16_t bport, const IpAddr& snat, uint16_t sport) {
  union rte_thash_tuple t;
  std::memset(&t, 0, sizeof(t));
  if (backend.isV4()) {
    uint32_t s, d;
    std::memcpy(&s, backend.bytes.data(), 4);
    std::memcpy(&d, snat.bytes.data(), 4);
    t.v4.src_addr = ntohl(s);
    t.v4.dst_addr = ntohl(d);
    t.v4.sport = bport;
    t.v4.dport = sport;
    return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, kKey.data());
  }
  for (int i = 0; i < 4; i++) {
    uint32_t s, d;
    std::memcpy(&s, backend.bytes.data() + 4 * i, 4);
    std::memcpy(&d, snat.bytes.data() + 4 * i, 4);
    s = ntohl(s);
    d = ntohl(d);
    std::memcpy(t.v6.src_addr + 4 * i, &s, 4);
    std::memcpy(t.v6.dst_addr + 4 * i, &d, 4);
  }
  t.v6.sport = bport;
  t.v6.dport = sport;
  return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V6_L4_LEN, kKey.data());
}

TEST(SnatRss, TheHashIsTheFixedTermXorThePortTerm) {
  // Microsoft's verification vectors, read as a reply: 66.9.149.187:2794 -> 161.142.100.80:1766.
  const IpAddr b = test::ipAddr("66.9.149.187"), s = test::ipAddr("161.142.100.80");
  EXPECT_EQ(rssFixedTerm(kKey.data(), false, b.bytes.data(), htons(2794), s.bytes.data()) ^
                rssPortTerm(kKey.data(), false, 1766),
            0x51ccc178u);
  const IpAddr b6 = test::ipAddr("3ffe:2501:200:1fff::7"), s6 = test::ipAddr("3ffe:2501:200:3::1");
  EXPECT_EQ(rssFixedTerm(kKey.data(), true, b6.bytes.data(), htons(2794), s6.bytes.data()) ^
                rssPortTerm(kKey.data(), true, 1766),
            0x40207d3du);
  // And for any port.
  const IpAddr b2 = test::ipAddr("198.18.1.5"), s2 = test::ipAddr("198.18.0.2");
  for (uint32_t p = 1; p < 65536; p += 257)
    EXPECT_EQ(rssFixedTerm(kKey.data(), false, b2.bytes.data(), htons(443), s2.bytes.data()) ^
                  rssPortTerm(kKey.data(), false, uint16_t(p)),
              replyHash(b2, 443, s2, uint16_t(p)));
}

TEST(SnatRss, HashTypesThatCoverThePorts) {
  EXPECT_TRUE(rssHashesPorts(kAllTypes, false, kProtoTcp));
  EXPECT_TRUE(rssHashesPorts(kAllTypes, true, kProtoUdp));
  EXPECT_FALSE(rssHashesPorts(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP, false, kProtoUdp));  // UDP by addresses only
  EXPECT_FALSE(rssHashesPorts(RTE_ETH_RSS_NONFRAG_IPV4_TCP, true, kProtoTcp));
  EXPECT_FALSE(rssHashesPorts(kAllTypes, false, 1));  // ICMP has no ports
}

// A RETA of `size` entries over `queues` queues (entry i -> queue i mod queues), steered for
// `worker` of `workers` (queue q polled by worker q mod workers), on port 0; port 1 unsteered.
struct Reta {
  std::vector<uint16_t> reta;
  SnatRss rss;
  Reta(uint32_t size, uint16_t queues, uint16_t worker, uint16_t workers, uint64_t types = kAllTypes) {
    for (uint32_t i = 0; i < size; i++) reta.push_back(uint16_t(i % queues));
    rss.key = kKey;
    rss.buckets = size;
    rss.ports.resize(2);
    rss.ports[0].hash_types = types;
    for (uint32_t b = 0; b < size; b++)
      if (reta[b] % workers == worker) rss.ports[0].mine.push_back(uint16_t(b));
  }
  uint16_t workerOf(uint32_t hash, uint16_t workers) const { return reta[hash % reta.size()] % workers; }
};

const IpAddr kSnat4 = test::ipAddr("198.18.0.2");
const IpAddr kSnat6 = test::ipAddr("2001:db8::2");
const IpAddr kBackend4 = test::ipAddr("198.18.1.5");
const IpAddr kBackend6 = test::ipAddr("2001:db8:1::5");
constexpr uint16_t kLo = 10000, kHi = 12047;  // 2048 ports

std::vector<SnapSnatAddr> pools(uint32_t quiet_ms = 100) {
  return {{kSnat4, kLo, kHi, quiet_ms}, {kSnat6, kLo, kHi, quiet_ms}};
}

// Every pair worker `w` of `workers` gives for one backend, and how many its replies' hash puts
// on `w`'s queues: steered ones must, all of them; the count must be exactly the owned ports
// whose reply lands on `w` (found independently, port by port).
struct Outcome {
  uint32_t steered = 0, unsteered = 0, steered_off = 0, owned_landing = 0, total = 0;
};
Outcome allocateAll(FullNatState& st, const Reta& r, uint16_t w, uint16_t workers, uint32_t addr, const IpAddr& snat,
                    const IpAddr& backend, uint8_t proto, uint16_t port = 0) {
  Outcome o;
  const ReplyFrom from{backend.bytes.data(), htons(8080), port, proto, 12345};
  SnatPair p;
  bool steered = false;
  std::set<uint16_t> seen;
  while (st.allocFor(addr, 1, from, p, steered)) {
    EXPECT_EQ(p.addr, addr);
    EXPECT_EQ(st.ownerOf(addr, p.port), w);
    EXPECT_TRUE(seen.insert(p.port).second) << p.port;
    const bool lands = r.workerOf(replyHash(backend, 8080, snat, p.port), workers) == w;
    if (steered) {
      o.steered++;
      o.steered_off += !lands;
      // Steered pairs come first: once one is not steered, no steered one follows.
      EXPECT_EQ(o.unsteered, 0u) << "steered after unsteered, port " << p.port;
    } else {
      o.unsteered++;
    }
    o.total++;
  }
  for (uint32_t q = kLo + w; q <= kHi; q += workers)
    o.owned_landing += r.workerOf(replyHash(backend, 8080, snat, uint16_t(q)), workers) == w;
  return o;
}

TEST(SnatRss, EverySteeredPairsReplyLandsOnItsWorker) {
  for (uint16_t workers : {2, 4}) {
    for (uint16_t w = 0; w < workers; w++) {
      const Reta r(128, 4, w, workers);
      std::string err;
      auto st = FullNatState::create(pools(), w, workers, SOCKET_ID_ANY, err, r.rss);
      ASSERT_TRUE(st) << err;
      EXPECT_EQ(st->buckets(), 128u);
      const Outcome o4 = allocateAll(*st, r, w, workers, 0, kSnat4, kBackend4, kProtoTcp);
      const Outcome o6 = allocateAll(*st, r, w, workers, 1, kSnat6, kBackend6, kProtoUdp);
      for (const Outcome& o : {o4, o6}) {
        EXPECT_EQ(o.total, 2048u / workers);
        EXPECT_EQ(o.steered_off, 0u);
        // Every owned port whose reply lands here was found, and only those.
        EXPECT_EQ(o.steered, o.owned_landing) << "workers " << workers << " worker " << w;
        EXPECT_GT(o.steered, o.total / (workers + 1)) << "workers " << workers << " worker " << w;
      }
    }
  }
}

TEST(SnatRss, ABiggerRetaSpreadsOverMoreBuckets) {
  const Reta r(512, 2, 1, 2);
  std::string err;
  auto st = FullNatState::create(pools(), 1, 2, SOCKET_ID_ANY, err, r.rss);
  ASSERT_TRUE(st) << err;
  EXPECT_EQ(st->buckets(), 512u);
  const Outcome o = allocateAll(*st, r, 1, 2, 0, kSnat4, kBackend4, kProtoTcp);
  EXPECT_EQ(o.steered_off, 0u);
  EXPECT_EQ(o.steered, o.owned_landing);
}

// Negative control: without steering, about half of a worker's pairs answer to the other worker.
TEST(SnatRss, UnsteeredPairsLandAnywhere) {
  const Reta r(128, 4, 0, 2);
  std::string err;
  auto st = FullNatState::create(pools(), 0, 2, SOCKET_ID_ANY, err);  // no SnatRss
  ASSERT_TRUE(st) << err;
  EXPECT_EQ(st->buckets(), 1u);
  const Outcome o = allocateAll(*st, r, 0, 2, 0, kSnat4, kBackend4, kProtoTcp);
  EXPECT_EQ(o.steered, 0u);
  EXPECT_EQ(o.total, 1024u);
  EXPECT_LT(o.owned_landing, o.total * 3 / 4);  // the pairs that land here by chance
  EXPECT_GT(o.owned_landing, o.total / 4);
}

TEST(SnatRss, PortsOrProtocolsNotSteeredTakeAnyPair) {
  const Reta r(128, 4, 1, 2, RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP);  // UDP hashed by addresses only
  std::string err;
  auto st = FullNatState::create(pools(), 1, 2, SOCKET_ID_ANY, err, r.rss);
  ASSERT_TRUE(st) << err;
  const ReplyFrom udp{kBackend4.bytes.data(), htons(53), 0, kProtoUdp, 1};
  const ReplyFrom other_port{kBackend4.bytes.data(), htons(80), 1, kProtoTcp, 1};  // port 1: no RETA
  const ReplyFrom tap{kBackend4.bytes.data(), htons(80), 7, kProtoTcp, 1};          // beyond the list
  SnatPair p;
  bool steered = true;
  for (const ReplyFrom& f : {udp, other_port, tap}) {
    ASSERT_TRUE(st->allocFor(0, 1, f, p, steered));
    EXPECT_FALSE(steered);
    EXPECT_EQ(st->ownerOf(0, p.port), 1);
  }
  const ReplyFrom tcp{kBackend4.bytes.data(), htons(80), 0, kProtoTcp, 1};
  ASSERT_TRUE(st->allocFor(0, 1, tcp, p, steered));
  EXPECT_TRUE(steered);
  // One worker: every pair is its own (steered), whatever the ports.
  auto one = FullNatState::create(pools(), 0, 1, SOCKET_ID_ANY, err, r.rss);
  ASSERT_TRUE(one) << err;
  EXPECT_EQ(one->buckets(), 1u);
  ASSERT_TRUE(one->allocFor(0, 1, udp, p, steered));
  EXPECT_TRUE(steered);
}

TEST(SnatRss, QuietTimeAndExhaustionHoldPerBucket) {
  const Reta r(128, 2, 0, 2);
  std::string err;
  auto st = FullNatState::create(pools(100), 0, 2, SOCKET_ID_ANY, err, r.rss);
  ASSERT_TRUE(st) << err;
  const ReplyFrom from{kBackend4.bytes.data(), htons(8080), 0, kProtoTcp, 7};
  std::vector<SnatPair> got;
  SnatPair p;
  bool steered;
  while (st->allocFor(0, 1, from, p, steered)) got.push_back(p);
  ASSERT_EQ(got.size(), 1024u);
  EXPECT_EQ(st->usage(0, 1).in_use, 1024u);
  EXPECT_FALSE(st->alloc(0, 1, p));
  // Freed at 1000: quiet until 1100, whichever bucket each is in.
  const SnatPair a = got[0], b = got[500];
  st->release(a, 1000);
  st->release(b, 1000);
  const FullNatState::Usage u = st->usage(0, 1050);
  EXPECT_EQ(u.waiting, 2u);
  EXPECT_EQ(u.quiet, 2u);
  EXPECT_FALSE(st->allocFor(0, 1099, from, p, steered));
  EXPECT_FALSE(st->alloc(0, 1099, p));
  EXPECT_EQ(st->usage(0, 1100).quiet, 0u);
  std::set<uint16_t> back;
  ASSERT_TRUE(st->allocFor(0, 1100, from, p, steered));
  back.insert(p.port);
  ASSERT_TRUE(st->alloc(0, 1100, p));
  back.insert(p.port);
  EXPECT_EQ(back, (std::set<uint16_t>{a.port, b.port}));
  EXPECT_FALSE(st->alloc(0, 1100, p));
  // The index's packing still names each pair's own session.
  EXPECT_EQ(st->unpackPair(st->packPair(a)).port, a.port);
}

}  // namespace
}  // namespace l4lb::dataplane
