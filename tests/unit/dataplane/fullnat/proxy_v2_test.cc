// PROXY protocol v2 headers (src/dataplane/fullnat/proxy_v2.h) against bytes written out by hand
// from the specification (HAProxy's proxy-protocol.txt §2.2): signature, version/command,
// family/transport, length, then source address, destination address, source port,
// destination port.
#include "dataplane/fullnat/proxy_v2.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "packet_builder.h"

namespace l4lb::dataplane::fullnat {
namespace {

using Bytes = std::vector<uint8_t>;

const Bytes kSig = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes o;
  for (const auto& p : parts) o.insert(o.end(), p.begin(), p.end());
  return o;
}

// A port as stored on the wire (network order), whatever the host's order.
uint16_t be(uint16_t host) {
  const uint8_t b[2] = {uint8_t(host >> 8), uint8_t(host)};
  uint16_t v;
  std::memcpy(&v, b, 2);
  return v;
}

// Writes into a buffer full of a canary, and returns what was written; checks the canary after
// the returned length.
Bytes written(size_t (*write)(std::array<uint8_t, 64>&)) {
  std::array<uint8_t, 64> buf;
  buf.fill(0xee);
  const size_t n = write(buf);
  for (size_t i = n; i < buf.size(); i++) EXPECT_EQ(buf[i], 0xee) << "byte " << i << " written past the header";
  return {buf.begin(), buf.begin() + ptrdiff_t(n)};
}

const IpAddr kClient4 = test::ipAddr("192.0.2.1");
const IpAddr kVip4 = test::ipAddr("198.51.100.10");
const IpAddr kClient6 = test::ipAddr("2001:db8::1");
const IpAddr kVip6 = test::ipAddr("2001:db8:ffff::a");

TEST(ProxyV2, Tcp4) {
  const Bytes got = written([](std::array<uint8_t, 64>& b) {
    return writeProxyV2(b.data(), Family::V4, kClient4.bytes.data(), be(56324), kVip4.bytes.data(), be(443), true);
  });
  const Bytes want = cat({kSig,
                          {0x21, 0x11, 0x00, 0x0c},
                          {192, 0, 2, 1},
                          {198, 51, 100, 10},
                          {0xdc, 0x04},
                          {0x01, 0xbb}});
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), kProxyV2Len4);
  EXPECT_EQ(kProxyV2Len4, 28u);
}

TEST(ProxyV2, Udp4) {
  const Bytes got = written([](std::array<uint8_t, 64>& b) {
    return writeProxyV2(b.data(), Family::V4, kClient4.bytes.data(), be(5353), kVip4.bytes.data(), be(53), false);
  });
  EXPECT_EQ(got, cat({kSig, {0x21, 0x12, 0x00, 0x0c}, {192, 0, 2, 1}, {198, 51, 100, 10}, {0x14, 0xe9}, {0x00, 0x35}}));
}

TEST(ProxyV2, Tcp6) {
  const Bytes got = written([](std::array<uint8_t, 64>& b) {
    return writeProxyV2(b.data(), Family::V6, kClient6.bytes.data(), be(56324), kVip6.bytes.data(), be(443), true);
  });
  const Bytes want = cat({kSig,
                          {0x21, 0x21, 0x00, 0x24},
                          {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01},
                          {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a},
                          {0xdc, 0x04},
                          {0x01, 0xbb}});
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), kProxyV2Len6);
  EXPECT_EQ(kProxyV2Len6, 52u);
}

TEST(ProxyV2, Udp6) {
  const Bytes got = written([](std::array<uint8_t, 64>& b) {
    return writeProxyV2(b.data(), Family::V6, kClient6.bytes.data(), be(1), kVip6.bytes.data(), be(65535), false);
  });
  EXPECT_EQ(got.size(), 52u);
  EXPECT_EQ(Bytes(got.begin() + 12, got.begin() + 16), (Bytes{0x21, 0x22, 0x00, 0x24}));
  EXPECT_EQ(Bytes(got.end() - 4, got.end()), (Bytes{0x00, 0x01, 0xff, 0xff}));
}

TEST(ProxyV2, Local) {
  const Bytes got = written([](std::array<uint8_t, 64>& b) { return writeProxyV2Local(b.data()); });
  EXPECT_EQ(got, cat({kSig, {0x20, 0x00, 0x00, 0x00}}));
  EXPECT_EQ(got.size(), kProxyV2HdrLen);
}

TEST(ProxyV2, LengthsByFamily) {
  static_assert(proxyV2Len(Family::V4) == 28 && proxyV2Len(Family::V6) == 52);
  static_assert(kProxyV2MaxLen == 52);
}

}  // namespace
}  // namespace l4lb::dataplane::fullnat
