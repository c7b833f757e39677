// The flow-sync wire format (control/sync/sync_codec.h): round trips for every family and
// protocol, the exact byte layout, and every refusal: any flipped bit, another key, truncation
// at every length, an unknown version, a count that disagrees with the length, a bad record.
#include "control/sync/sync_codec.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sodium.h>

#include <cstring>
#include <vector>

#include "l4lb/addr.h"

namespace l4lb::control::sync {
namespace {

SyncKey keyOf(uint8_t seed) {
  SyncKey k;
  for (size_t i = 0; i < k.size(); i++) k[i] = uint8_t(seed + i * 7);
  return k;
}

SyncFlow flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto, const char* backend,
              uint16_t bport, uint8_t state, uint32_t idle, uint64_t gen) {
  SyncFlow f;
  IpAddr s = IpAddr::parse(src).value(), d = IpAddr::parse(dst).value(), b = IpAddr::parse(backend).value();
  f.v6 = !s.isV4();
  f.backend_v6 = !b.isV4();
  f.proto = proto;
  f.state = state;
  f.sport_be = htons(sport);
  f.dport_be = htons(dport);
  f.backend_port_be = htons(bport);
  std::memcpy(f.src, s.bytes.data(), 16);
  std::memcpy(f.dst, d.bytes.data(), 16);
  std::memcpy(f.backend, b.bytes.data(), 16);
  f.idle_ms = idle;
  f.generation = gen;
  return f;
}

std::vector<SyncFlow> mixed() {
  return {flow("198.18.41.5", 40000, "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21", 0, 1, 0, 7),
          flow("198.18.41.6", 5353, "198.18.42.100", 53, IPPROTO_UDP, "198.18.40.22", 5300, 3, 1500, 8),
          flow("2001:db8:41::5", 50000, "2001:db8:42::100", 443, IPPROTO_TCP, "2001:db8:40::21", 8443, 2, 99, 1ull << 40),
          flow("2001:db8:41::6", 1234, "2001:db8:42::100", 53, IPPROTO_UDP, "2001:db8:40::22", 0, 4, 0xffffffff, 9),
          // IPv4 client over an IPv6 tunnel backend (families differ only in tunnel modes).
          flow("198.18.41.7", 1, "198.18.42.100", 80, IPPROTO_TCP, "2001:db8:40::23", 0, 5, 3, 10)};
}

// Field by field: SyncFlow has 4 padding bytes before `generation` that memcmp would compare.
bool sameFlow(const SyncFlow& a, const SyncFlow& b) {
  return a.v6 == b.v6 && a.proto == b.proto && a.state == b.state && a.backend_v6 == b.backend_v6 &&
         a.sport_be == b.sport_be && a.dport_be == b.dport_be && a.backend_port_be == b.backend_port_be &&
         std::memcmp(a.src, b.src, 16) == 0 && std::memcmp(a.dst, b.dst, 16) == 0 &&
         std::memcmp(a.backend, b.backend, 16) == 0 && a.idle_ms == b.idle_ms && a.generation == b.generation;
}

const SyncHeader kHeader{kSyncVersion, 0, 0x0123456789abcdefull, 42, 1764780000123ull};

std::vector<uint8_t> encode(const std::vector<SyncFlow>& fs, const SyncKey& key, SyncHeader h = kHeader) {
  std::vector<uint8_t> buf(kMaxSyncDatagramBytes);
  size_t n = encodeSyncDatagram(h, fs, key, buf);
  EXPECT_EQ(n, syncDatagramBytes(fs.size()));
  buf.resize(n);
  return buf;
}

// Replaces the MAC with a valid one over the (edited) body, so a test reaches the check after it.
void remac(std::vector<uint8_t>& d, const SyncKey& key) {
  const size_t body = d.size() - kSyncMacBytes;
  crypto_auth(d.data() + body, d.data(), body, key.data());
}

std::optional<SyncReject> rejectOf(const std::vector<uint8_t>& d, const SyncKey& key) {
  SyncDecoded out;
  decodeSyncDatagram(d, key, out);
  return out.reject;
}

TEST(SyncCodec, RoundTripEveryFamilyAndProtocol) {
  const SyncKey key = keyOf(1);
  const auto fs = mixed();
  const auto d = encode(fs, key);
  EXPECT_EQ(d.size(), 32u + 5 * 72 + 32);
  SyncDecoded out;
  decodeSyncDatagram(d, key, out);
  ASSERT_FALSE(out.reject) << toString(*out.reject);
  EXPECT_EQ(out.header.boot_id, kHeader.boot_id);
  EXPECT_EQ(out.header.sequence, 42u);
  EXPECT_EQ(out.header.send_ms, kHeader.send_ms);
  EXPECT_EQ(out.header.count, 5u);
  ASSERT_EQ(out.count, fs.size());
  for (size_t i = 0; i < fs.size(); i++) EXPECT_TRUE(sameFlow(out.records[i], fs[i])) << i;
}

TEST(SyncCodec, FullDatagramAndHeartbeat) {
  const SyncKey key = keyOf(2);
  std::vector<SyncFlow> fs;
  for (size_t i = 0; i < kMaxSyncRecords; i++)
    fs.push_back(flow("198.18.41.5", uint16_t(1000 + i), "198.18.42.100", 80, IPPROTO_TCP, "198.18.40.21", 0, 1, 0, i));
  const auto d = encode(fs, key);
  EXPECT_EQ(d.size(), 1360u);
  EXPECT_LE(d.size(), kMaxSyncDatagramBytes);
  SyncDecoded out;
  decodeSyncDatagram(d, key, out);
  ASSERT_FALSE(out.reject);
  ASSERT_EQ(out.count, kMaxSyncRecords);
  EXPECT_EQ(ntohs(out.records[17].sport_be), 1017);
  // One more does not fit; nor does a datagram in a buffer too small for it.
  fs.push_back(fs[0]);
  std::vector<uint8_t> buf(4096);
  EXPECT_EQ(encodeSyncDatagram(kHeader, fs, key, buf), 0u);
  fs.pop_back();
  EXPECT_EQ(encodeSyncDatagram(kHeader, fs, key, std::span<uint8_t>(buf).first(1359)), 0u);
  // A heartbeat: no records, still authenticated.
  const auto hb = encode({}, key);
  EXPECT_EQ(hb.size(), 64u);
  decodeSyncDatagram(hb, key, out);
  ASSERT_FALSE(out.reject);
  EXPECT_EQ(out.count, 0u);
  EXPECT_EQ(rejectOf(hb, keyOf(3)), SyncReject::BadMac);
}

// The layout the header comment documents, byte by byte (a golden datagram).
TEST(SyncCodec, ExactByteLayout) {
  const SyncKey key = keyOf(4);
  const auto d = encode({flow("198.18.41.5", 0x1234, "198.18.42.100", 80, IPPROTO_UDP, "2001:db8:40::21", 0x5678, 3,
                              0x01020304, 0x1122334455667788ull)},
                        key);
  const std::vector<uint8_t> header = {'L', '4', 'S', 'Y', 1, 0, 0, 1,
                                       0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                       0, 0, 0, 0, 0, 0, 0, 42,
                                       0x00, 0x00, 0x01, 0x9a, 0xe5, 0x15, 0xc3, 0x7b};
  EXPECT_EQ(std::vector<uint8_t>(d.begin(), d.begin() + 32), header);
  const uint8_t* r = d.data() + 32;
  const std::vector<uint8_t> fixed = {4, 17, 3, 6, 0x12, 0x34, 0, 80, 0x56, 0x78, 0, 0};
  EXPECT_EQ(std::vector<uint8_t>(r, r + 12), fixed);
  EXPECT_EQ(std::vector<uint8_t>(r + 12, r + 16), (std::vector<uint8_t>{198, 18, 41, 5}));
  EXPECT_EQ(std::vector<uint8_t>(r + 16, r + 28), std::vector<uint8_t>(12, 0));
  EXPECT_EQ(std::vector<uint8_t>(r + 28, r + 32), (std::vector<uint8_t>{198, 18, 42, 100}));
  EXPECT_EQ(std::vector<uint8_t>(r + 44, r + 48), (std::vector<uint8_t>{0x20, 0x01, 0x0d, 0xb8}));
  EXPECT_EQ(r[59], 0x21);
  EXPECT_EQ(std::vector<uint8_t>(r + 60, r + 72),
            (std::vector<uint8_t>{1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
  // The MAC is HMAC-SHA-512-256 over everything before it.
  uint8_t mac[crypto_auth_BYTES];
  crypto_auth(mac, d.data(), 32 + 72, key.data());
  EXPECT_EQ(std::memcmp(mac, d.data() + 104, 32), 0);
}

TEST(SyncCodec, AnyFlippedBitIsRefused) {
  const SyncKey key = keyOf(5);
  const auto good = encode({mixed()[0], mixed()[2]}, key);
  ASSERT_FALSE(rejectOf(good, key));  // negative control: unaltered, it is accepted
  size_t byMac = 0;
  for (size_t i = 0; i < good.size(); i++)
    for (int bit = 0; bit < 8; bit++) {
      auto d = good;
      d[i] ^= uint8_t(1 << bit);
      auto r = rejectOf(d, key);
      ASSERT_TRUE(r) << "byte " << i << " bit " << bit << " accepted";
      if (i < 4) EXPECT_EQ(*r, SyncReject::BadMagic) << i;
      else if (i == 4) EXPECT_EQ(*r, SyncReject::BadVersion) << i;
      else if (i == 6 || i == 7) EXPECT_TRUE(*r == SyncReject::BadCount || *r == SyncReject::Truncated) << i;
      else EXPECT_EQ(*r, SyncReject::BadMac) << i << " " << toString(*r);
      byMac += *r == SyncReject::BadMac;
    }
  EXPECT_EQ(byMac, (good.size() - 7) * 8);  // the reserved byte 5 too: it is authenticated
}

TEST(SyncCodec, AnotherKeyIsRefused) {
  const auto d = encode(mixed(), keyOf(6));
  EXPECT_EQ(rejectOf(d, keyOf(7)), SyncReject::BadMac);
  SyncKey oneBit = keyOf(6);
  oneBit[31] ^= 0x80;
  EXPECT_EQ(rejectOf(d, oneBit), SyncReject::BadMac);
  EXPECT_FALSE(rejectOf(d, keyOf(6)));
}

TEST(SyncCodec, TruncationAtEveryLength) {
  const SyncKey key = keyOf(8);
  const auto good = encode(mixed(), key);
  for (size_t len = 0; len < good.size(); len++) {
    std::vector<uint8_t> d(good.begin(), good.begin() + long(len));
    EXPECT_EQ(rejectOf(d, key), SyncReject::Truncated) << len;
  }
  auto longer = good;
  longer.push_back(0);
  EXPECT_EQ(rejectOf(longer, key), SyncReject::BadCount);
}

TEST(SyncCodec, UnknownVersion) {
  const SyncKey key = keyOf(9);
  SyncHeader h = kHeader;
  h.version = 2;
  const auto d = encode(mixed(), key, h);  // a valid MAC: the version itself is refused
  EXPECT_EQ(rejectOf(d, key), SyncReject::BadVersion);
  h.version = 0;
  EXPECT_EQ(rejectOf(encode(mixed(), key, h), key), SyncReject::BadVersion);
}

TEST(SyncCodec, CountMismatch) {
  const SyncKey key = keyOf(10);
  auto d = encode({mixed()[0], mixed()[1]}, key);
  auto withCount = [&](uint16_t n) {
    auto x = d;
    x[6] = uint8_t(n >> 8);
    x[7] = uint8_t(n);
    remac(x, key);
    return rejectOf(x, key);
  };
  EXPECT_FALSE(withCount(2));
  EXPECT_EQ(withCount(3), SyncReject::Truncated);  // says more than it holds
  EXPECT_EQ(withCount(1), SyncReject::BadCount);   // holds more than it says
  EXPECT_EQ(withCount(0), SyncReject::BadCount);
  EXPECT_EQ(withCount(19), SyncReject::BadCount);  // more than any datagram may hold
  EXPECT_EQ(withCount(0xffff), SyncReject::BadCount);
}

TEST(SyncCodec, AuthenticatedButInvalidRecord) {
  const SyncKey key = keyOf(11);
  const auto good = encode({mixed()[0]}, key);
  struct Edit {
    size_t offset;
    uint8_t value;
  };
  for (Edit e : {Edit{0, 5}, Edit{3, 0}, Edit{1, 1}, Edit{2, 8}, Edit{12 + 4, 1}, Edit{28 + 15, 1}, Edit{44 + 8, 1}}) {
    auto d = good;
    d[32 + e.offset] = e.value;
    remac(d, key);
    EXPECT_EQ(rejectOf(d, key), SyncReject::BadRecord) << e.offset;
  }
}

}  // namespace
}  // namespace l4lb::control::sync
