#include "dataplane/fullnat/tcp_seq.h"

#include <cstring>

#include <rte_byteorder.h>

#include "dataplane/parser.h"
#include "l4lb/net.h"

namespace l4lb::dataplane::fullnat {

namespace {

// RFC 9293 §3.1: the fixed header's fields, and the options this file reads.
constexpr uint32_t kSeqOff = 4;
constexpr uint32_t kAckOff = 8;
constexpr uint32_t kDataOffOff = 12;
constexpr uint32_t kFlagsOff = 13;
constexpr uint32_t kSumOff = 16;
constexpr uint8_t kOptEol = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptMss = 2;   // RFC 9293 §3.2: kind 2, length 4, 16-bit value
constexpr uint8_t kOptSack = 5;  // RFC 2018 §3: kind 5, length 2 + 8n, n (left, right) edges
constexpr uint32_t kSackBlockLen = 8;
constexpr uint32_t kMaxOptLen = 40;  // data offset 15: 60 - 20
// Every SACK option is at least 10 bytes, so at most 4 fit in 40 bytes of options.
constexpr uint32_t kMaxSackOpts = kMaxOptLen / (2 + kSackBlockLen);
constexpr uint8_t kNoOption = 0xff;

// Where the options of interest sit, from one bounded walk of the option list.
struct Options {
  uint8_t* p = nullptr;  // the first option byte (tcp + 20)
  uint32_t len = 0;      // data offset * 4 - 20: a multiple of 4, at most 40
  uint8_t sack_off[kMaxSackOpts] = {};
  uint8_t sacks = 0;
  uint8_t mss_off = kNoOption;
};

// RFC 9293 §3.2: EOL ends the list, NOP is one byte, every other option is kind, length (>= 2,
// counting both), value. False when the list does not parse within the data offset, or the data
// offset itself lies outside [20, hdr_len]; nothing is read beyond those bounds.
bool parseOptions(uint8_t* tcp, uint32_t hdr_len, Options& o) {
  const uint32_t doff = uint32_t(tcp[kDataOffOff] >> 4) * 4;
  if (doff < net::kTcpMinHdrLen || doff > hdr_len) return false;
  o.p = tcp + net::kTcpMinHdrLen;
  o.len = doff - net::kTcpMinHdrLen;
  uint32_t i = 0;
  while (i < o.len) {
    const uint8_t kind = o.p[i];
    if (kind == kOptEol) break;
    if (kind == kOptNop) {
      i++;
      continue;
    }
    if (i + 1 >= o.len) return false;
    const uint32_t olen = o.p[i + 1];
    if (olen < 2 || i + olen > o.len) return false;
    if (kind == kOptSack) {
      if (olen < 2 + kSackBlockLen || (olen - 2) % kSackBlockLen != 0 || o.sacks == kMaxSackOpts) return false;
      o.sack_off[o.sacks++] = uint8_t(i);
    } else if (kind == kOptMss) {
      if (olen != 4) return false;
      if (o.mss_off == kNoOption) o.mss_off = uint8_t(i);
    }
    i += olen;
  }
  return true;
}

inline uint32_t load32raw(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store32be(uint8_t* p, uint32_t v) {
  const uint32_t raw = rte_cpu_to_be_32(v);
  std::memcpy(p, &raw, sizeof(raw));
}

// Stores the 32-bit field at `p` (host value `v`) and adds RFC 1624 eqn. 3's ~m + m' to `acc`.
// The fixed header's seq and ack are 32-bit aligned from the header's start, so they sum as
// whole words.
inline void replace32(uint8_t* p, uint32_t v, uint64_t& acc) {
  const uint32_t old_raw = load32raw(p);
  const uint32_t new_raw = rte_cpu_to_be_32(v);
  std::memcpy(p, &new_raw, sizeof(new_raw));
  acc += uint32_t(~old_raw);
  acc += new_raw;
}

// The checksum field's ~HC, the start of an RFC 1624 eqn. 3 update.
inline uint64_t csumStart(const uint8_t* tcp) { return uint16_t(~net::load16raw(tcp + kSumOff)); }

inline void csumFinish(uint8_t* tcp, uint64_t acc) {
  net::store16raw(tcp + kSumOff, uint16_t(~net::csumFold64(acc)));
}

// Options change at any byte offset (a SACK option after a single NOP is 16-bit misaligned), so
// their checksum update is taken over the whole option area, which starts at an even offset of
// the header and is a multiple of 4 long: the sum of ~old + new over it, words as stored.
struct OptionEdit {
  uint8_t old[kMaxOptLen];
  explicit OptionEdit(const Options& o) { std::memcpy(old, o.p, o.len); }
  void finish(const Options& o, uint64_t& acc) const { acc = net::csumDiffBytes(old, o.p, o.len, acc); }
};

// SACK blocks of the options at `o`, each edge += add (the edges are 32-bit sequence numbers).
void shiftSacks(const Options& o, uint32_t add) {
  for (uint32_t s = 0; s < o.sacks; s++) {
    uint8_t* opt = o.p + o.sack_off[s];
    const uint32_t blocks = (uint32_t(opt[1]) - 2) / kSackBlockLen;
    for (uint32_t b = 0; b < blocks; b++) {
      uint8_t* edge = opt + 2 + b * kSackBlockLen;
      store32be(edge, net::load32be(edge) + add);
      store32be(edge + 4, net::load32be(edge + 4) + add);
    }
  }
}

// The same, then no block below `floor`: a left edge below it is raised to it, a block whose right
// edge (one past its last byte, RFC 2018 §3) is at or below it is removed. The kept blocks move up
// in order, the option's length shrinks, the freed bytes become NOPs; a SACK option with no block
// left becomes NOPs entirely.
void shiftSacksAbove(const Options& o, uint32_t add, uint32_t floor) {
  for (uint32_t s = 0; s < o.sacks; s++) {
    uint8_t* opt = o.p + o.sack_off[s];
    const uint32_t olen = opt[1];
    const uint32_t blocks = (olen - 2) / kSackBlockLen;
    uint32_t kept = 0;
    for (uint32_t b = 0; b < blocks; b++) {  // block b is read before any write at kept <= b
      const uint8_t* edge = opt + 2 + b * kSackBlockLen;
      uint32_t left = net::load32be(edge) + add;
      const uint32_t right = net::load32be(edge + 4) + add;
      if (!seqBefore(floor, right)) continue;
      if (seqBefore(left, floor)) left = floor;
      uint8_t* out = opt + 2 + kept * kSackBlockLen;
      store32be(out, left);
      store32be(out + 4, right);
      kept++;
    }
    if (kept == blocks) continue;
    if (kept == 0) {
      std::memset(opt, kOptNop, olen);
    } else {
      const uint32_t used = 2 + kept * kSackBlockLen;
      opt[1] = uint8_t(used);
      std::memset(opt + used, kOptNop, olen - used);
    }
  }
}

}  // namespace

SeqResult seqToBackend(uint8_t* tcp, uint32_t hdr_len, const SeqDelta& d) {
  if (hdr_len < net::kTcpMinHdrLen) return SeqResult::TooShort;
  if (d.isZero()) return SeqResult::Done;
  uint64_t acc = csumStart(tcp);
  if (d.client != 0) replace32(tcp + kSeqOff, net::load32be(tcp + kSeqOff) + d.client, acc);
  SeqResult r = SeqResult::Done;
  if (d.server != 0) {
    if ((tcp[kFlagsOff] & kTcpAck) != 0) replace32(tcp + kAckOff, net::load32be(tcp + kAckOff) - d.server, acc);
    Options o;
    if (!parseOptions(tcp, hdr_len, o)) {
      r = SeqResult::OptionsKept;
    } else if (o.sacks != 0) {
      const OptionEdit edit(o);
      shiftSacks(o, 0u - d.server);
      edit.finish(o, acc);
    }
  }
  csumFinish(tcp, acc);
  return r;
}

SeqResult seqToClient(uint8_t* tcp, uint32_t hdr_len, const SeqDelta& d, uint32_t client_isn) {
  if (hdr_len < net::kTcpMinHdrLen) return SeqResult::TooShort;
  const uint32_t floor = client_isn + 1;
  uint64_t acc = csumStart(tcp);
  if (d.server != 0) replace32(tcp + kSeqOff, net::load32be(tcp + kSeqOff) + d.server, acc);
  if ((tcp[kFlagsOff] & kTcpAck) != 0) {
    const uint32_t ack = net::load32be(tcp + kAckOff);
    uint32_t out = ack - d.client;
    if (seqBefore(out, floor)) out = floor;
    if (out != ack) replace32(tcp + kAckOff, out, acc);
  }
  SeqResult r = SeqResult::Done;
  Options o;
  if (!parseOptions(tcp, hdr_len, o)) {
    r = SeqResult::OptionsKept;
  } else if (o.sacks != 0) {
    const OptionEdit edit(o);
    shiftSacksAbove(o, 0u - d.client, floor);
    edit.finish(o, acc);
  }
  csumFinish(tcp, acc);
  return r;
}

bool lowerMss(uint8_t* tcp, uint32_t hdr_len, uint16_t by, uint16_t floor) {
  if (hdr_len < net::kTcpMinHdrLen || (tcp[kFlagsOff] & kTcpSyn) == 0 || by == 0) return false;
  Options o;
  if (!parseOptions(tcp, hdr_len, o) || o.mss_off == kNoOption) return false;
  uint8_t* value = o.p + o.mss_off + 2;
  const uint16_t mss = net::load16be(value);
  if (mss <= floor) return false;
  const uint16_t lowered = mss - floor > by ? uint16_t(mss - by) : floor;
  uint64_t acc = csumStart(tcp);
  const OptionEdit edit(o);
  net::store16be(value, lowered);
  edit.finish(o, acc);
  csumFinish(tcp, acc);
  return true;
}

}  // namespace l4lb::dataplane::fullnat
