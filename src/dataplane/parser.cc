// Packet parser (see parser.h for the rules, parser_inline.h for the code).
#include "dataplane/parser.h"

#include "dataplane/parser_inline.h"

#include <rte_mbuf_core.h>

namespace l4lb::dataplane {

static_assert(kRxIpCksumGood == RTE_MBUF_F_RX_IP_CKSUM_GOOD && kRxIpCksumMask == RTE_MBUF_F_RX_IP_CKSUM_MASK);

ParseResult parsePacket(const uint8_t* frame, uint32_t frame_len, PacketInfo& out) {
  return parsePacketInline(frame, frame_len, out, 0);
}

ParseResult parsePacket(const uint8_t* frame, uint32_t frame_len, PacketInfo& out, uint64_t ol_flags) {
  return parsePacketInline(frame, frame_len, out, ol_flags);
}

}  // namespace l4lb::dataplane
