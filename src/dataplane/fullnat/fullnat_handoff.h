// Full NAT's replies between workers: a backend's packet to a source pair is translated by the
// worker that holds the pair's session (FullNatState::ownerOf). RSS steering (snat_rss.h) makes
// the NIC deliver most replies there; one that reaches another worker (an unsteered pair, a port
// whose RSS could not be read) is handed to the owner's hand-off ring, the one fragments take
// (WorkerState::handoff_rings), and translated when the owner drains it (drainHandOffRing).
// Nothing is looked up twice: the ring carries the mbuf, untouched, and the pair's address
// index in hash.usr. A full ring drops the packet (fullnat_ring_full): the backend retransmits.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/forward.h"
#include "dataplane/packet_ctx.h"
#include "dataplane/worker.h"

namespace l4lb::dataplane {

// In rte_mbuf::hash.usr on a hand-off ring: a full-NAT reply, with its Snapshot::snat_addrs
// index in the low 16 bits (a fragment carries its ingress port index there, below kMaxPorts).
inline constexpr uint32_t kHandOffFullNat = 1u << 31;

// A backend's packet (c.vip_index: its source address index) for a pair that worker `owner`
// holds: queued on the owner's ring. HandedOff, or dropped as fullnat_ring_full.
FwdResult handOffReply(WorkerState& w, const PktCtx& c, rte_mbuf* m, uint16_t owner);

// The owner's side: a reply taken from its ring, parsed again and translated as if this worker
// had received it (fullNatReverse), then queued in `tx` or dropped with its reason.
void takeHandedOffReply(WorkerState& w, const Snapshot& s, rte_mbuf* m, uint32_t now_ms, TxBatch& tx);

}  // namespace l4lb::dataplane
