#include "dataplane/fullnat/segment_prefix.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>

#include "dataplane/parser.h"
#include "l4lb/net.h"

namespace l4lb::dataplane::fullnat {

namespace {

constexpr uint32_t kIpv4TotalLenOff = 2;
constexpr uint32_t kIpv4SumOff = 10;
constexpr uint32_t kIpv4AddrsOff = 12;  // source then destination, 8 bytes
constexpr uint32_t kIpv6PayloadLenOff = 4;
constexpr uint32_t kIpv6AddrsOff = 8;   // source then destination, 32 bytes
constexpr uint32_t kTcpSumOff = 16;
constexpr uint32_t kMaxIpLen = 0xffff;

// The end of the IP packet (frame offset) once its headers are checked to fit, or 0 when they do
// not: the IP header between l3_off and l4_off, the TCP header and its options inside the IP
// packet, the IP packet inside the frame, and room for `len` more bytes in the length field.
uint32_t checkedIpEnd(const uint8_t* f, uint32_t frame_len, uint32_t l3_off, uint32_t l4_off, Family family,
                      uint16_t len) {
  if (l3_off >= l4_off || uint64_t(l4_off) + net::kTcpMinHdrLen > frame_len) return 0;
  uint32_t ip_end = 0;
  uint32_t ip_len_field = 0;
  if (family == Family::V4) {
    if (l3_off + net::kIpv4MinHdrLen > l4_off) return 0;
    ip_len_field = net::load16be(f + l3_off + kIpv4TotalLenOff);
    ip_end = l3_off + ip_len_field;
  } else {
    if (l3_off + net::kIpv6HdrLen > l4_off) return 0;
    ip_len_field = net::load16be(f + l3_off + kIpv6PayloadLenOff);
    ip_end = l3_off + net::kIpv6HdrLen + ip_len_field;
  }
  const uint32_t tcp_len = uint32_t(f[l4_off + 12] >> 4) * 4;
  if (tcp_len < net::kTcpMinHdrLen || l4_off + tcp_len > ip_end || ip_end > frame_len) return 0;
  if (ip_len_field + len > kMaxIpLen) return 0;
  return ip_end;
}

// RFC 9293 §3.1 / RFC 8200 §8.1 over a segment whose checksum field is zero: the addresses (as
// stored, contiguous in both headers), the upper-layer length and the protocol, then the segment.
uint16_t tcpChecksum(const uint8_t* l3, Family family, const uint8_t* l4, uint32_t l4_len) {
  const bool v4 = family == Family::V4;
  uint32_t sum = rte_raw_cksum(l3 + (v4 ? kIpv4AddrsOff : kIpv6AddrsOff), v4 ? 8 : 32);
  sum += rte_cpu_to_be_16(uint16_t(l4_len));  // IPv6's 32-bit length: its high half is zero
  sum += rte_cpu_to_be_16(uint16_t(kProtoTcp));
  sum += rte_raw_cksum(l4, l4_len);
  return uint16_t(~net::csumFold32(sum));
}

}  // namespace

bool insertSegmentPrefix(rte_mbuf* m, uint32_t l3_off, uint32_t l4_off, Family family, const uint8_t* bytes,
                         uint16_t len) {
  if (len == 0) return true;
  if (!rte_pktmbuf_is_contiguous(m) || !RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1 ||
      rte_pktmbuf_headroom(m) < len) {
    return false;
  }
  const uint32_t frame_len = rte_pktmbuf_data_len(m);
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t ip_end = checkedIpEnd(f, frame_len, l3_off, l4_off, family, len);
  if (ip_end == 0) return false;
  const uint32_t headers = l4_off + uint32_t(f[l4_off + 12] >> 4) * 4;

  // Nothing can fail from here on.
  if (frame_len > ip_end) rte_pktmbuf_trim(m, uint16_t(frame_len - ip_end));
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, len));
  std::memmove(p, p + len, headers);
  std::memcpy(p + headers, bytes, len);

  uint8_t* l3 = p + l3_off;
  if (family == Family::V4) {
    uint8_t* len_field = l3 + kIpv4TotalLenOff;
    const uint16_t old_raw = net::load16raw(len_field);
    net::store16be(len_field, uint16_t(net::load16be(len_field) + len));
    uint16_t sum = net::load16raw(l3 + kIpv4SumOff);
    net::csumReplace16(&sum, old_raw, net::load16raw(len_field));
    net::store16raw(l3 + kIpv4SumOff, sum);
  } else {
    uint8_t* len_field = l3 + kIpv6PayloadLenOff;
    net::store16be(len_field, uint16_t(net::load16be(len_field) + len));
  }

  uint8_t* l4 = p + l4_off;
  const uint32_t l4_len = ip_end + len - l4_off;
  net::store16raw(l4 + kTcpSumOff, 0);
  net::store16raw(l4 + kTcpSumOff, tcpChecksum(l3, family, l4, l4_len));
  return true;
}

}  // namespace l4lb::dataplane::fullnat
