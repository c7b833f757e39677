// A flow as the flow tables keep it: the key (5-tuple), the value (backend, TCP state, last
// seen) and the rules that age an entry and step its state. Pure data and inline functions:
// the worker's fast path, the slow path (ICMP errors), the flow table's sweep and l4lbctl
// explain all apply the same rules.
//
// The value, 64 bits (FlowValue::pack):
//   bits  0..23  backend id (Snapshot::backends index; 0 = none)
//   bits 24..26  FlowState
//   bit  27      pinned: the backend is not the flow's stateless (Maglev) choice (round robin),
//                so the entry must not be displaced while live (flow_table.h)
//   bit  28      from a peer (kFlowPeerBit): inserted from another balancer's sync record
//                (sync_rings.h) and not hit by local traffic since; never re-announced (two peers
//                would otherwise keep a dead flow alive by echoing it)
//   bit  29      announced (kFlowAnnouncedBit): pushed to the sync ring and not rewritten by local
//                traffic since (the sweep re-announces entries without it, sync_rings.h)
//   bits 30..31  zero
// Bits 28 and 29 are not FlowValue fields: pack() leaves them clear, so every rewrite by local
// traffic (a hit's refresh or state change, a new choice) clears them for nothing, and the hit
// path, which keeps its decision's FlowValue on the stack, stores no more than before. Flow
// sync sets and tests them on the packed value.
//   bits 32..63  last-seen time, milliseconds (wraps after 49 days; compared by subtraction)
// The timestamp is refreshed at most once per kFlowRefreshMs per flow, so a hit on an
// established flow is a pure lookup; timeouts are therefore exact to kFlowRefreshMs.
#pragma once

#include <cstdint>

#include <rte_branch_prediction.h>

#include "dataplane/parser.h"  // kTcp* flags
#include "l4lb/snapshot.h"     // kNoBackend, kMaxBackendId, FlowTimeouts

namespace l4lb::dataplane {

// How often a hit refreshes an entry's last-seen time (see above).
inline constexpr uint32_t kFlowRefreshMs = 1000;

// Keys: addresses and ports in network byte order, padding zeroed (compared bytewise).
struct alignas(8) FlowKey4 {
  uint32_t saddr = 0, daddr = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};
};
static_assert(sizeof(FlowKey4) == 16);

struct alignas(8) FlowKey6 {
  uint8_t saddr[16] = {}, daddr[16] = {};
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};
};
static_assert(sizeof(FlowKey6) == 40);

// Entry classes (flood admission, decide.h): an entry is *embryonic* while the only packets
// seen from the client are SYNs (TCP; SYN-ACK-looking ones included) or the first packet (UDP);
// any other state is *confirmed*. Embryonic entries live under a quota and may be displaced by
// other embryonic ones; a confirmed entry is never displaced (flow_table.h).
//   TcpSyn        embryonic  SYN(s) only                          timeout tcp_syn_timeout
//   TcpEstablished confirmed  a non-SYN packet seen               tcp_established_timeout
//   TcpClosing    confirmed  FIN seen (or RST, admission off)     tcp_fin_timeout
//   Udp           confirmed  a second UDP packet seen             udp_timeout
//   UdpNew        embryonic  one UDP packet seen                  udp_new_timeout
//   TcpReset      confirmed  RST seen on an established flow, or a new SYN on a closing one
//                            (tuple reuse): short timeout, and the next packet without
//                            SYN/RST/FIN makes it established again   tcp_fin_timeout
// The first four values are the original ones (admission off uses only those, with Udp for
// every UDP packet).
enum class FlowState : uint8_t {
  TcpSyn = 0,
  TcpEstablished = 1,
  TcpClosing = 2,
  Udp = 3,
  UdpNew = 4,
  TcpReset = 5,
};
inline constexpr uint32_t kFlowStateMask = 7;

constexpr bool isEmbryonic(FlowState s) { return s == FlowState::TcpSyn || s == FlowState::UdpNew; }
// From a packed value (FlowValue::pack) without unpacking the rest.
constexpr bool isEmbryonicRaw(uint64_t v) { return isEmbryonic(FlowState((v >> 24) & kFlowStateMask)); }

inline constexpr uint64_t kFlowPeerBit = 1ull << 28;
inline constexpr uint64_t kFlowAnnouncedBit = 1ull << 29;

struct FlowValue {
  uint32_t backend_id = kNoBackend;
  FlowState state = FlowState::Udp;
  uint32_t last_seen_ms = 0;
  bool pinned = false;

  uint64_t pack() const {
    return uint64_t(backend_id & kMaxBackendId) | (uint64_t(uint8_t(state) & kFlowStateMask) << 24) |
           (uint64_t(pinned) << 27) | (uint64_t(last_seen_ms) << 32);
  }
  static FlowValue unpack(uint64_t v) {
    return FlowValue{uint32_t(v & kMaxBackendId), FlowState((v >> 24) & kFlowStateMask), uint32_t(v >> 32),
                     ((v >> 27) & 1) != 0};
  }
};

constexpr FlowState stateOfRaw(uint64_t v) { return FlowState((v >> 24) & kFlowStateMask); }

// The states flow sync announces (sync_rings.h): live confirmed flows that have not begun to
// close. Embryonic entries are not announced (a SYN flood on one balancer must not become
// confirmed entries on its peers), nor closing or reset ones (a flow that ends stops being
// announced and ages out on the peers).
constexpr bool isAnnounceable(FlowState s) { return s == FlowState::TcpEstablished || s == FlowState::Udp; }

inline uint32_t timeoutMs(FlowState s, const FlowTimeouts& t) {
  if (likely(s == FlowState::TcpEstablished)) return t.tcp_established_ms;  // the common hit
  switch (s) {
    case FlowState::TcpSyn: return t.tcp_syn_ms;
    case FlowState::TcpEstablished: return t.tcp_established_ms;
    case FlowState::TcpClosing: return t.tcp_fin_ms;
    case FlowState::Udp: return t.udp_ms;
    case FlowState::UdpNew: return t.udp_new_ms;
    case FlowState::TcpReset: return t.tcp_fin_ms;
  }
  return 0;  // an undefined state (bits 6, 7): expired at once
}

inline bool isExpired(const FlowValue& v, uint32_t now_ms, const FlowTimeouts& t) {
  return uint32_t(now_ms - v.last_seen_ms) > timeoutMs(v.state, t);
}

// The state of a new entry created by a packet with `tcp_flags` (TCP) or a UDP packet.
// Admission on: a SYN (with or without ACK, without RST/FIN) starts embryonic, as does a UDP
// flow's first packet; any other first TCP packet (an ACK: a flow picked up mid-way, or the
// client's ACK after a SYN that was forwarded statelessly) is confirmed at once (a one-way
// balancer cannot check it, the per-VIP new-flow rate limit bounds it). Admission off: the
// original rules (UDP entries are Udp from the first packet).
inline FlowState initialState(bool tcp, uint8_t tcp_flags, bool admission) {
  if (!tcp) return admission ? FlowState::UdpNew : FlowState::Udp;
  if (tcp_flags & (kTcpFin | kTcpRst)) return FlowState::TcpClosing;
  if (tcp_flags & kTcpSyn) return FlowState::TcpSyn;
  return FlowState::TcpEstablished;
}

// The original transitions (admission off; L4LB_TEST_NO_ADMISSION): RST closes, a bare SYN on a
// closing entry starts a new handshake.
inline FlowState nextStateNoAdmission(FlowState s, bool tcp, uint8_t tcp_flags) {
  if (!tcp) return FlowState::Udp;
  if (tcp_flags & (kTcpFin | kTcpRst)) return FlowState::TcpClosing;
  // A SYN without ACK on a closed connection's entry: the client reuses the 5-tuple for a new
  // connection (ephemeral ports cycle; RFC 6191 TIME-WAIT reuse), a new handshake. Anything
  // else after the close (the last ACKs, retransmitted FINs) keeps the entry closing.
  if (s == FlowState::TcpClosing) return (tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn ? FlowState::TcpSyn : s;
  if (tcp_flags & kTcpSyn) return s == FlowState::TcpEstablished ? s : FlowState::TcpSyn;  // SYN
  return FlowState::TcpEstablished;  // an ACK without SYN: handshake done (or flow picked up mid-way)
}

// The state after seeing a packet with `tcp_flags` (TCP) in a flow in state `s`, admission on.
// - Only a packet without SYN promotes an embryonic TCP entry: repeated SYNs and SYN-ACK-looking
//   packets from the client keep it embryonic (ironcore dpservice #628 promoted on them).
// - RST never closes a live connection: it moves an established entry to TcpReset (short
//   timeout, same backend), and the next packet without SYN/RST/FIN restores it (Jool #212: a
//   spoofed RST must not cost a connection its state). RST on an embryonic entry keeps it
//   embryonic (it must not be a way out of the quota).
// - FIN closes as before.
// - A bare SYN on a closing entry (tuple reuse, RFC 6191) moves it to TcpReset, not TcpSyn: the
//   entry stays confirmed (classes only ever go embryonic -> confirmed on a hit, so the quota
//   holds), short-lived until the new connection's ACK makes it established.
// - UDP: the second packet confirms.
inline FlowState nextState(FlowState s, bool tcp, uint8_t tcp_flags) {
  if (!tcp) return FlowState::Udp;
  constexpr uint8_t kSpecial = kTcpSyn | kTcpFin | kTcpRst;
  if (likely((tcp_flags & kSpecial) == 0)) {  // ACK / data: the common case
    return s == FlowState::TcpClosing ? s : FlowState::TcpEstablished;
  }
  // An embryonic entry: a packet with SYN (SYN-ACK-looking, SYN+FIN ...) or RST keeps it so.
  if (s == FlowState::TcpSyn) return (tcp_flags & (kTcpSyn | kTcpRst)) ? s : FlowState::TcpClosing;
  if (tcp_flags & kTcpRst) return s == FlowState::TcpEstablished ? FlowState::TcpReset : s;
  if (tcp_flags & kTcpFin) return FlowState::TcpClosing;
  // SYN (with or without ACK), no RST/FIN, on a confirmed entry.
  if (s == FlowState::TcpClosing) return (tcp_flags & kTcpAck) ? s : FlowState::TcpReset;
  return s;  // TcpEstablished / TcpReset stay
}

inline FlowState nextState(FlowState s, bool tcp, uint8_t tcp_flags, bool admission) {
  return likely(admission) ? nextState(s, tcp, tcp_flags) : nextStateNoAdmission(s, tcp, tcp_flags);
}

}  // namespace l4lb::dataplane
