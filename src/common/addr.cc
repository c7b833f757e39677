#include "l4lb/addr.h"

#include <arpa/inet.h>

#include <cstdio>

namespace l4lb {

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
  if (s.empty() || s.size() > 45) return std::nullopt;
  std::string str(s);
  IpAddr a;
  if (str.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) != 1) return std::nullopt;
    return a;
  }
  a.family = Family::V6;
  if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf));
  return buf;
}

bool Prefix::contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  unsigned full = len / 8, rest = len % 8;
  if (std::memcmp(a.bytes.data(), addr.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (addr.bytes[full] & mask);
}

std::optional<Prefix> Prefix::parse(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = IpAddr::parse(s.substr(0, slash));
  if (!ip) return std::nullopt;
  auto lenStr = s.substr(slash + 1);
  if (lenStr.empty() || lenStr.size() > 3) return std::nullopt;
  unsigned len = 0;
  for (char c : lenStr) {
    if (c < '0' || c > '9') return std::nullopt;
    len = len * 10 + unsigned(c - '0');
  }
  if (len > (ip->isV4() ? 32u : 128u)) return std::nullopt;
  return Prefix{*ip, static_cast<uint8_t>(len)};
}

std::string Prefix::str() const { return addr.str() + "/" + std::to_string(len); }

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddr m;
  for (int i = 0; i < 6; i++) {
    if (i > 0 && s[size_t(i) * 3 - 1] != ':') return std::nullopt;
    unsigned v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[size_t(i) * 3 + size_t(j)];
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else return std::nullopt;
      v = v * 16 + d;
    }
    m.bytes[size_t(i)] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string MacAddr::str() const {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

// MurmurHash64A (Appleby, public domain algorithm); byte-order independent reads via memcpy.
uint64_t hash64(const void* data, size_t len, uint64_t seed) {
  const uint64_t m = 0xc6a4a7935bd1e995ULL;
  const int r = 47;
  uint64_t h = seed ^ (len * m);
  const auto* p = static_cast<const uint8_t*>(data);
  size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; i++) {
    uint64_t k;
    std::memcpy(&k, p + i * 8, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const uint8_t* tail = p + blocks * 8;
  switch (len & 7) {
    case 7: h ^= uint64_t(tail[6]) << 48; [[fallthrough]];
    case 6: h ^= uint64_t(tail[5]) << 40; [[fallthrough]];
    case 5: h ^= uint64_t(tail[4]) << 32; [[fallthrough]];
    case 4: h ^= uint64_t(tail[3]) << 24; [[fallthrough]];
    case 3: h ^= uint64_t(tail[2]) << 16; [[fallthrough]];
    case 2: h ^= uint64_t(tail[1]) << 8; [[fallthrough]];
    case 1: h ^= uint64_t(tail[0]); h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; uint64_t(d) * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

}  // namespace l4lb
