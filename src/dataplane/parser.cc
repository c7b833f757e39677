// Packet parser (see parser.h for the rules, parser_inline.h for the code).
#include "dataplane/parser.h"

#include "dataplane/parser_inline.h"

namespace l4lb::dataplane {

Drop parsePacket(const uint8_t* frame, uint32_t frame_len, PacketInfo& out) {
  return parsePacketInline(frame, frame_len, out);
}

}  // namespace l4lb::dataplane
