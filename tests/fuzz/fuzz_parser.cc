// libFuzzer target: the packet parser (src/dataplane/parser.h), both entry points. The first 8
// bytes of the input are the mbuf's ol_flags (so the NIC-verified IPv4 checksum path is reached);
// the rest is the frame, copied into a heap buffer of exactly its size so ASan reports any read
// past its end. On Ok, every offset the parser returns must lie inside the frame.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dataplane/parser.h"

using l4lb::Drop;
using l4lb::Family;
using l4lb::dataplane::PacketInfo;
using l4lb::dataplane::parsePacket;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

void checkInfo(const PacketInfo& p, uint32_t len) {
  const uint32_t alen = p.family == Family::V4 ? 4 : 16;
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
  // Exactly sized: no slack after the frame for an over-read to hide in.
  std::unique_ptr<uint8_t[]> frame(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(frame.get(), data, size);
  const uint32_t len = uint32_t(size);

  PacketInfo a{}, b{};
  const Drop da = parsePacket(frame.get(), len, a);
  const Drop db = parsePacket(frame.get(), len, b, ol_flags);
  if (da == Drop::Ok) checkInfo(a, len);
  if (db == Drop::Ok) checkInfo(b, len);
  // Without the NIC's "checksum good" flag the two entry points must agree.
  if ((ol_flags & l4lb::dataplane::kRxIpCksumMask) != l4lb::dataplane::kRxIpCksumGood) check(da == db);
  return 0;
}
