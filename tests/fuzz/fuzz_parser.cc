// libFuzzer target: the packet parser (src/dataplane/parser.h), both entry points. The first 8
// bytes of the input are the mbuf's ol_flags, little-endian (so the NIC-verified IPv4 checksum
// path is reached; bit 63 pads the frame past 64 KiB, see below); the rest is the frame, copied into a heap buffer of exactly its size so ASan reports any read
// past its end. On Ok, every offset the parser returns must lie inside the frame.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dataplane/parser.h"

using l4lb::Drop;
using l4lb::Family;
using l4lb::dataplane::PacketInfo;
using l4lb::dataplane::Parse;
using l4lb::dataplane::ParseResult;
using l4lb::dataplane::parsePacket;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

void checkInfo(const PacketInfo& p, uint32_t len) {
  const uint32_t alen = p.family == Family::V4 ? 4 : 16;
  len = std::min<uint32_t>(len, 0xffff);  // what the parser may consider
  check(p.l3_off == 14 || p.l3_off == 18);
  check(p.l4_off > p.l3_off && p.l4_off <= len);
  check(uint32_t(p.l3_off) + p.l3_len <= len);
  check(p.l4_off <= p.l3_off + p.l3_len);
  check(uint32_t(p.saddr_off) + alen <= len && uint32_t(p.daddr_off) + alen <= len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(uint64_t)) return 0;
  uint64_t ol_flags;
  std::memcpy(&ol_flags, data, sizeof ol_flags);
  data += sizeof ol_flags;
  size -= sizeof ol_flags;
  // Bit 63 (no mbuf flag): the frame is followed by 65535 zero bytes, so frames longer than an
  // mbuf segment holds (the parser considers only their first 65535 bytes) are reached without
  // inputs that large.
  const size_t pad = (ol_flags >> 63) ? 0xffff : 0;
  ol_flags &= ~(uint64_t(1) << 63);
  // Exactly sized: no slack after the frame for an over-read to hide in.
  const size_t total = size + pad;
  std::unique_ptr<uint8_t[]> frame(new uint8_t[total ? total : 1]);
  if (size) std::memcpy(frame.get(), data, size);
  if (pad) std::memset(frame.get() + size, 0, pad);
  const uint32_t len = uint32_t(total);

  PacketInfo a{}, b{};
  const ParseResult da = parsePacket(frame.get(), len, a);
  const ParseResult db = parsePacket(frame.get(), len, b, ol_flags);
  if (da.verdict == Parse::Ok) checkInfo(a, len);
  if (db.verdict == Parse::Ok) checkInfo(b, len);
  // Without the NIC's "checksum good" flag the two entry points must agree.
  if ((ol_flags & l4lb::dataplane::kRxIpCksumMask) != l4lb::dataplane::kRxIpCksumGood)
    check(da.verdict == db.verdict && da.reason == db.reason);
  return 0;
}
