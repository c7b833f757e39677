// PROXY protocol version 2 headers (HAProxy's "The PROXY protocol", versions 1 & 2, §2.2), as a
// full-NAT balancer sends them to a backend: the client's address and port and the VIP's, in
// front of the client's first byte, so a backend that only sees the balancer's source address
// still learns who the client is. Also the LOCAL header that health checks send.
//
// Contract: the writers only store bytes (no TLVs; the length field covers the addresses alone)
// and return how many they wrote; `out` must have room for kProxyV2MaxLen. No allocation; safe
// per packet.
#pragma once

#include <cstddef>
#include <cstdint>

#include "l4lb/addr.h"

namespace l4lb::dataplane::fullnat {

// §2.2: 12-byte signature, version/command, family/protocol, 16-bit length (network order).
inline constexpr size_t kProxyV2HdrLen = 16;
// §2.2, "union proxy_addr": IPv4: two addresses and two ports (12 bytes); IPv6: 36 bytes.
inline constexpr size_t kProxyV2Len4 = kProxyV2HdrLen + 12;
inline constexpr size_t kProxyV2Len6 = kProxyV2HdrLen + 36;
inline constexpr size_t kProxyV2MaxLen = kProxyV2Len6;

inline constexpr uint8_t kProxyV2Signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
inline constexpr uint8_t kProxyV2CmdLocal = 0x20;  // version 2 (high nibble), LOCAL
inline constexpr uint8_t kProxyV2CmdProxy = 0x21;  // version 2, PROXY

// The length of writeProxyV2's header for an address family.
constexpr size_t proxyV2Len(Family f) { return f == Family::V4 ? kProxyV2Len4 : kProxyV2Len6; }

// The PROXY header of a connection from src (the client) to dst (the VIP): addresses of `family`
// (4 or 16 bytes, network order), ports as stored (network order), TCP (STREAM) or UDP (DGRAM).
// Returns kProxyV2Len4 or kProxyV2Len6.
size_t writeProxyV2(uint8_t* out, Family family, const uint8_t* src_addr, uint16_t src_port_be,
                    const uint8_t* dst_addr, uint16_t dst_port_be, bool tcp);

// The LOCAL header (command 0x0, family UNSPEC, length 0): the connection is the balancer's own
// (a health check), and the receiver must use the real addresses. Returns kProxyV2HdrLen.
size_t writeProxyV2Local(uint8_t* out);

}  // namespace l4lb::dataplane::fullnat
