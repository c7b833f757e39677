// include/l4lb/net.h against the test's own byte-wise checksum (tests/common/packet_builder.h):
// loads and stores, the folds, the IPv4 header check, and the RFC 1624 updates, which must leave
// a checksum that verifies and equals the word-by-word update.
#include "l4lb/net.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "packet_builder.h"

namespace l4lb::net {
namespace {

using test::ipAddr;
using test::PacketBuilder;

// The reference fold: repeat until no carry is left.
uint16_t foldLoop(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(s);
}

TEST(Net, Sizes) {
  EXPECT_EQ(kEthHdrLen + kVlanTagLen, kVlanEthHdrLen);
  EXPECT_EQ(encapOverhead(true, false), 20);
  EXPECT_EQ(encapOverhead(false, false), 40);
  EXPECT_EQ(encapOverhead(true, true), 28);
  EXPECT_EQ(encapOverhead(false, true), 48);
}

TEST(Net, LoadsAndStores) {
  const uint8_t b[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
  EXPECT_EQ(load16be(b + 1), 0x3456);  // unaligned
  EXPECT_EQ(load32be(b + 1), 0x3456789au);
  uint8_t o[3] = {};
  store16be(o + 1, 0xbeef);
  EXPECT_EQ(o[1], 0xbe);
  EXPECT_EQ(o[2], 0xef);
  store16raw(o, load16raw(b + 3));
  EXPECT_EQ(o[0], 0x78);
  EXPECT_EQ(o[1], 0x9a);
}

TEST(Net, FoldsMatchTheLoop) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> v = {0, 1, 0xffff, 0x10000, 0x1fffe, 0xffffffffu, 0x100000000ull, ~uint64_t(0),
                             0xffff0000ffff0000ull};
  for (int i = 0; i < 10000; i++) v.push_back(rng() >> (rng() % 64));
  for (uint64_t s : v) {
    EXPECT_EQ(csumFold64(s), foldLoop(s)) << std::hex << s;
    EXPECT_EQ(csumSumOk(s), foldLoop(s) == 0xffff) << std::hex << s;
    EXPECT_EQ(csumFold32(uint32_t(s)), foldLoop(uint32_t(s))) << std::hex << s;
  }
}

TEST(Net, Ipv4HeaderChecksum) {
  for (auto frame : {PacketBuilder().ipv4(ipAddr("198.18.0.1"), ipAddr("198.18.1.10")).udp(1, 2).build(),
                     PacketBuilder().ipv4(ipAddr("198.19.255.254"), ipAddr("198.18.1.10")).ttl(1)
                         .ipOptions({0x94, 0x04, 0x00, 0x00, 1, 1, 1, 0}).tcp(1, 2, 0x02).build()}) {
    const uint32_t len = (frame[14] & 0x0f) * 4u;
    ASSERT_TRUE(test::ipv4HeaderChecksumOk(frame));
    EXPECT_TRUE(ipv4HeaderChecksumOk(frame.data() + 14, len)) << len;
    for (uint32_t i = 0; i < len; i++) {
      auto bad = frame;
      bad[14 + i] ^= 0x10;
      EXPECT_FALSE(ipv4HeaderChecksumOk(bad.data() + 14, len)) << "byte " << i << " of " << len;
    }
  }
}

// Random 20-byte headers with a correct checksum (stored at 10..11), the address at 12..19
// replaced: the updated checksum verifies, and the three update forms agree.
TEST(Net, IncrementalUpdates) {
  std::mt19937 rng(11);
  for (int n = 0; n < 2000; n++) {
    std::vector<uint8_t> h(20);
    for (auto& b : h) b = uint8_t(rng());
    test::put16(h, 10, 0);
    test::put16(h, 10, test::checksumFromSum(test::onesSum(h)));
    uint8_t addr[8];
    for (auto& b : addr) b = uint8_t(rng());
    const unsigned len = n % 2 ? 8 : 4 + 2 * (n % 3 == 0);  // 8, 4 or 6 bytes: all loop shapes

    uint16_t whole = load16raw(h.data() + 10);
    csumReplaceBytes(&whole, h.data() + 12, addr, len);
    uint16_t by_words = load16raw(h.data() + 10);
    uint64_t delta = 0;  // RFC 1624 eqn. 3 terms ~m + m', folded: what the control plane precomputes
    for (unsigned i = 0; i < len; i += 2) {
      const uint16_t o = load16raw(h.data() + 12 + i), nw = load16raw(addr + i);
      csumReplace16(&by_words, o, nw);
      delta += uint16_t(~o) + uint64_t(nw);
    }
    const uint16_t applied = csumApplyDelta(load16raw(h.data() + 10), csumFold64(delta));
    EXPECT_EQ(whole, by_words) << n;
    EXPECT_EQ(applied, by_words) << n;

    std::copy(addr, addr + len, h.begin() + 12);
    store16raw(h.data() + 10, whole);
    EXPECT_EQ(test::foldSum(test::onesSum(h)), 0xffff) << n;
    EXPECT_TRUE(ipv4HeaderChecksumOk(h.data(), 20)) << n;
  }
}

}  // namespace
}  // namespace l4lb::net
