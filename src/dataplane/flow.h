// A flow as the flow tables keep it: the key (5-tuple), the value (backend, TCP state, last
// seen) and the rules that age an entry and step its state. Pure data and inline functions:
// the worker's fast path, the slow path (ICMP errors), the flow table's sweep and l4lbctl
// explain all apply the same rules.
//
// The value, 64 bits (FlowValue::pack):
//   bits  0..23  backend id (Snapshot::backends index; 0 = none)
//   bits 24..25  FlowState
//   bits 32..63  last-seen time, milliseconds (wraps after 49 days; compared by subtraction)
// The timestamp is refreshed at most once per kFlowRefreshMs per flow, so a hit on an
// established flow is a pure lookup; timeouts are therefore exact to kFlowRefreshMs.
#pragma once

#include <cstdint>

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

enum class FlowState : uint8_t { TcpSyn = 0, TcpEstablished = 1, TcpClosing = 2, Udp = 3 };

struct FlowValue {
  uint32_t backend_id = kNoBackend;
  FlowState state = FlowState::Udp;
  uint32_t last_seen_ms = 0;

  uint64_t pack() const {
    return uint64_t(backend_id & kMaxBackendId) | (uint64_t(state) << 24) | (uint64_t(last_seen_ms) << 32);
  }
  static FlowValue unpack(uint64_t v) {
    return FlowValue{uint32_t(v & kMaxBackendId), FlowState((v >> 24) & 3), uint32_t(v >> 32)};
  }
};

inline uint32_t timeoutMs(FlowState s, const FlowTimeouts& t) {
  switch (s) {
    case FlowState::TcpSyn: return t.tcp_syn_ms;
    case FlowState::TcpEstablished: return t.tcp_established_ms;
    case FlowState::TcpClosing: return t.tcp_fin_ms;
    case FlowState::Udp: return t.udp_ms;
  }
  return 0;
}

inline bool isExpired(const FlowValue& v, uint32_t now_ms, const FlowTimeouts& t) {
  return uint32_t(now_ms - v.last_seen_ms) > timeoutMs(v.state, t);
}

// The state after seeing a packet with `tcp_flags` (TCP) in a flow in state `s`.
inline FlowState nextState(FlowState s, bool tcp, uint8_t tcp_flags) {
  if (!tcp) return FlowState::Udp;
  if (tcp_flags & (kTcpFin | kTcpRst)) return FlowState::TcpClosing;
  // A SYN without ACK on a closed connection's entry: the client reuses the 5-tuple for a new
  // connection (ephemeral ports cycle; RFC 6191 TIME-WAIT reuse), a new handshake. Anything
  // else after the close (the last ACKs, retransmitted FINs) keeps the entry closing.
  if (s == FlowState::TcpClosing) return (tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn ? FlowState::TcpSyn : s;
  if (tcp_flags & kTcpSyn) return s == FlowState::TcpEstablished ? s : FlowState::TcpSyn;  // SYN
  return FlowState::TcpEstablished;  // an ACK without SYN: handshake done (or flow picked up mid-way)
}

}  // namespace l4lb::dataplane
