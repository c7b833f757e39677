// Full NAT on the forwarding path (forwarding = "fullnat"): a client's packet to the VIP leaves
// from one of the balancer's source pairs to the backend, and the backend's packet to that pair
// goes back from the VIP to the client. A TCP flow of a VIP with proxy_protocol = "v2" also
// gets the PROXY v2 header in front of the client's first byte (proxy_v2.h), and its sequence
// numbers translated around it (tcp_seq.h):
//  - the header takes the backend's sequence numbers client_isn + 1 .. client_isn + len, so
//    every client segment after the SYN is moved up by len, fixed when the flow is created;
//  - every client segment that starts at client_isn + 1 carries the header, retransmissions
//    included, and so does the client's handshake-completing ACK: a server-speaks-first
//    backend has its header as soon as the handshake ends, and gets it again with every later
//    segment at that sequence number (the client's ACKs while it waits for the banner, or its
//    answer to the backend's retransmitted SYN-ACK if the first one was lost);
//  - the backend's ACKs and SACK blocks are clamped so that the client never sees the
//    header's bytes acknowledged;
//  - the MSS the backend offers the client is lowered by the header's length, so the client's
//    first segment with the header in front still fits the path.
// Everything here is per packet: no allocation, lock, log or syscall.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/forward.h"
#include "dataplane/packet_ctx.h"
#include "dataplane/worker.h"

namespace l4lb::dataplane {

// A client's packet to a fullnat VIP: finds or opens the flow's session and rewrites the packet
// toward its backend. `bid`: the backend, for the per-backend counters.
[[gnu::noinline]] FwdResult fullNatForward(WorkerState& w, const Snapshot& s, const PktCtx& c, rte_mbuf* m,
                                           uint16_t ingress, uint32_t now_ms, uint32_t& bid);

// A backend's packet to a source pair (c.vip_index: its Snapshot::snat_addrs index): rewrites it
// back to the client of the session that holds the pair.
[[gnu::noinline]] FwdResult fullNatReverse(WorkerState& w, const Snapshot& s, const PktCtx& c, rte_mbuf* m,
                                           uint32_t now_ms);

// Ends the sessions that have expired by the flow timeouts (at most `budget` positions looked
// at): their pairs go back to the pool to wait out the quiet time. Returns how many ended.
uint32_t sweepFullNat(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t, uint32_t budget);

// How often a worker publishes its pool usage (WorkerState::snat_ports).
inline constexpr uint32_t kSnatPublishMs = 1000;

// Writes this worker's pool usage per source address into WorkerState::snat_ports (the first
// snat_ports.size() addresses): pairs in use, free, in their quiet time at `now_ms`.
void publishSnatUsage(WorkerState& w, uint32_t now_ms);

}  // namespace l4lb::dataplane
