// Addresses shared by the control plane and the data plane.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace l4lb {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

// An IPv4 or IPv6 address in network byte order. IPv4 uses bytes[0..3]; the rest is zero, so
// two addresses compare equal exactly when family and bytes match.
struct IpAddr {
  std::array<uint8_t, 16> bytes{};
  Family family = Family::V4;

  static IpAddr v4(uint32_t be) {
    IpAddr a;
    std::memcpy(a.bytes.data(), &be, 4);
    return a;
  }
  static IpAddr v6(const uint8_t* p) {
    IpAddr a;
    a.family = Family::V6;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  uint32_t v4be() const {
    uint32_t v;
    std::memcpy(&v, bytes.data(), 4);
    return v;
  }
  bool isV4() const { return family == Family::V4; }
  bool operator==(const IpAddr&) const = default;

  // Parses "198.18.0.1" or "2001:db8::1"; nullopt on anything else.
  static std::optional<IpAddr> parse(std::string_view s);
  std::string str() const;
};

struct Prefix {
  IpAddr addr;
  uint8_t len = 0;
  bool contains(const IpAddr& a) const;
  bool operator==(const Prefix&) const = default;
  // Parses "198.18.0.1/24"; the host bits are kept (the port's own address).
  static std::optional<Prefix> parse(std::string_view s);
  std::string str() const;
};

struct MacAddr {
  std::array<uint8_t, 6> bytes{};
  bool operator==(const MacAddr&) const = default;
  bool isZero() const { return *this == MacAddr{}; }
  static std::optional<MacAddr> parse(std::string_view s);
  std::string str() const;
};

// 64-bit hash used for Maglev permutations and the snapshot's flat maps. Deterministic across
// machines (unlike CRC32 instructions), so golden Maglev tables are portable.
uint64_t hash64(const void* data, size_t len, uint64_t seed);

bool isPrime(uint32_t n);

}  // namespace l4lb
