// TCP sequence-number translation for connections whose two halves see different sequence
// spaces: full NAT with a PROXY header in front of the client's bytes (the backend sees more
// bytes than the client sent), and a SYN proxy (the balancer chose the ISN the client sees).
//
// Contract:
//  - A flow carries one SeqDelta, fixed when the flow is created. Every segment in one
//    direction is translated by the same amounts, so retransmissions, reordering and the
//    2^32 wrap need no per-segment state.
//  - Sequence numbers and SACK blocks (RFC 2018) are translated; timestamps (RFC 7323),
//    window scale and SACK-permitted are end to end and left alone.
//  - The client is never shown an acknowledgement (cumulative or selective) of a byte it did
//    not send: in the backend->client direction everything below the floor client_isn + 1 (the
//    client's first byte) is clamped up to it or, for a SACK block wholly below it, removed.
//    This is what hides a PROXY header that the balancer placed before the client's first byte.
//  - The SYN is the caller's: with n bytes placed before the client's first byte, the backend
//    must see the ISN client_isn + d.client - n, so the SYN's seq is moved by that, not by the
//    delta alone; the segment that starts at client_isn + 1 gets the bytes (segment_prefix.h)
//    and its translated seq lowered by n.
//  - The TCP checksum is updated incrementally (RFC 1624 eqn. 3). It must be a full checksum on
//    entry (not a pseudo-header sum left for TX offload).
//  - Only bytes inside the header's bounds are read: hdr_len, and the data offset within it.
//    Options that do not parse (a length byte missing, below 2 or past the end, a SACK whose
//    length is not 2 + 8n) are left unchanged; seq and ack are still translated.
//  - Per packet: no allocation, no lock, no log, no syscall. Works on unaligned headers.
#pragma once

#include <cstdint>

namespace l4lb::dataplane::fullnat {

// Added (mod 2^32) to sequence numbers as they cross the balancer.
struct SeqDelta {
  uint32_t client = 0;  // to the client's sequence numbers on their way to the backend
  uint32_t server = 0;  // to the backend's sequence numbers on their way to the client

  // A zero delta translates nothing: a flow that also has no floor to enforce (no PROXY header,
  // no SYN proxy) can skip both calls.
  constexpr bool isZero() const { return (client | server) == 0; }
  constexpr bool operator==(const SeqDelta&) const = default;
};

// Serial-number order (RFC 1982 as TCP uses it, RFC 9293 §3.4): a is before b when b - a, taken
// mod 2^32, is in 1..2^31-1. Correct across the wrap as long as the two are within 2^31.
constexpr bool seqBefore(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }

// The smallest MSS a SYN may be lowered to: the minimum every IPv4 host accepts (RFC 9293
// §3.7.1, 576 - 40) and IPv6's (RFC 8200 §5: 1280 - 60).
inline constexpr uint16_t kMinMss4 = 536;
inline constexpr uint16_t kMinMss6 = 1220;

// What a translation did to a segment.
enum class SeqResult : uint8_t {
  Done,          // seq, ack and any SACK blocks translated
  OptionsKept,   // seq and ack translated; the options did not parse and were left unchanged
  TooShort,      // hdr_len < 20: nothing touched
};

// Client -> backend. `tcp` points at the TCP header, `hdr_len` is its length with options.
// seq += d.client; if ACK: ack -= d.server; SACK blocks (they acknowledge the backend's data)
// -= d.server. A zero delta returns Done at once, without parsing the options.
SeqResult seqToBackend(uint8_t* tcp, uint32_t hdr_len, const SeqDelta& d);

// Backend -> client. seq += d.server; if ACK: ack -= d.client, then raised to client_isn + 1 if
// it falls below; SACK blocks -= d.client, with a block's left edge raised to client_isn + 1
// and a block that ends at or below it removed (the blocks after it move up, the freed bytes
// become NOPs, so the header keeps its length). Even with a zero delta the floor is enforced.
// With OptionsKept the caller should drop the segment rather than send it: a receiver that reads
// options up to a bad one (Linux does) would act on a SACK block left in the backend's space.
SeqResult seqToClient(uint8_t* tcp, uint32_t hdr_len, const SeqDelta& d, uint32_t client_isn);

// In a segment with SYN set (a SYN or a SYN-ACK), lowers the MSS option by `by`, but never
// below `floor` (kMinMss4 / kMinMss6); an MSS already below the floor is left as is. True when
// the option's value changed. No-op (false) without SYN, without the option, or when the
// options do not parse. The MSS a host advertises bounds what its peer sends (RFC 9293 §3.7.1):
// to make room for bytes inserted into the client's segments, lower the backend's SYN-ACK on its
// way to the client; lowering the client's SYN only shrinks the backend's segments.
bool lowerMss(uint8_t* tcp, uint32_t hdr_len, uint16_t by, uint16_t floor);

}  // namespace l4lb::dataplane::fullnat
