#include "dataplane/fullnat/proxy_v2.h"

#include <cstring>

#include "l4lb/net.h"

namespace l4lb::dataplane::fullnat {

namespace {

// §2.2, the 14th byte: the address family in the high nibble, the transport in the low one.
constexpr uint8_t kFamUnspec = 0x00;
constexpr uint8_t kFamInet = 0x10;
constexpr uint8_t kFamInet6 = 0x20;
constexpr uint8_t kProtoStream = 0x01;
constexpr uint8_t kProtoDgram = 0x02;

uint8_t* writePrefix(uint8_t* out, uint8_t cmd, uint8_t fam, uint16_t addr_len) {
  std::memcpy(out, kProxyV2Signature, sizeof(kProxyV2Signature));
  out[12] = cmd;
  out[13] = fam;
  net::store16be(out + 14, addr_len);
  return out + kProxyV2HdrLen;
}

}  // namespace

size_t writeProxyV2(uint8_t* out, Family family, const uint8_t* src_addr, uint16_t src_port_be,
                    const uint8_t* dst_addr, uint16_t dst_port_be, bool tcp) {
  const size_t alen = family == Family::V4 ? 4 : 16;
  const uint8_t fam = uint8_t((family == Family::V4 ? kFamInet : kFamInet6) | (tcp ? kProtoStream : kProtoDgram));
  // Both layouts of §2.2's union: source address, destination address, source port, destination
  // port.
  uint8_t* p = writePrefix(out, kProxyV2CmdProxy, fam, uint16_t(2 * alen + 4));
  std::memcpy(p, src_addr, alen);
  std::memcpy(p + alen, dst_addr, alen);
  net::store16raw(p + 2 * alen, src_port_be);
  net::store16raw(p + 2 * alen + 2, dst_port_be);
  return proxyV2Len(family);
}

size_t writeProxyV2Local(uint8_t* out) {
  writePrefix(out, kProxyV2CmdLocal, kFamUnspec, 0);
  return kProxyV2HdrLen;
}

}  // namespace l4lb::dataplane::fullnat
