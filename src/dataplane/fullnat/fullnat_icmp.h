// ICMP errors about a full-NAT flow (forwarding = "fullnat"), translated by the flow's session
// (fullnat_state.h) in both directions, as RFC 5508 §4.2 asks of a NAT:
//  - From the backend's side: an error to a source address, quoting the packet the balancer
//    sent to the backend, snat:sport -> backend:bport. The session is the one that holds the
//    quoted pair (this worker's, live, for the quoted protocol, backend address and port). The
//    client receives it from the VIP: outer VIP -> client, the quote client:cport -> vip:vport
//    as the client sent it. The VIP, not the backend or the router that reported, is the outer
//    source: the client only ever talked to the VIP, and the backends' network stays private.
//  - From the client's side: an error to a VIP, quoting vip:vport -> client:cport. The session
//    is found by the client's tuple (FullNatState::index). The backend receives it from the
//    source address: outer snat -> backend, the quote backend:bport -> snat:sport.
// Both: the quoted TCP sequence number goes back to the receiver's space (tcp_seq.h: the PROXY
// header's length; the SYN and the segment that carries the header keep theirs), and the ACK of
// a quote toward the backend too (a SYN-ACK's stays). The quoted IPv4 header checksum and the
// quoted TCP/UDP checksum (when the quote holds it; IPv4 UDP without one stays without) are
// updated incrementally, the outer IPv4 checksum too, and the ICMP checksum is recomputed
// (ICMPv6's over the new pseudo-header). The TTL / hop limit is decremented. The MTU of a
// fragmentation-needed or packet-too-big stays as reported: no encapsulation is added, so the
// client's path to the backend has the MTU the router saw (the segment that carries the PROXY
// header is longer by the header than the client's; the MSS lowered by its length covers that).
// The errors: destination unreachable, fragmentation needed, time exceeded, parameter problem
// (IPv4 types 3, 11, 12; ICMPv6 types 1 to 4), whose pointer into the quote stays right (no
// header changes length). The error goes out as the session's packets do: to the client's MAC on the port its flow came
// in on, or to the backend by its prebuilt Ethernet header.
//
// Refused, each counted: a quoted later fragment (icmp_quote_fragment: no ports to find the
// session by), a quote without its 8 bytes of ports (bad_icmp_quote), no live session for the
// quote (fullnat_no_session), a pair another worker owns (fullnat_wrong_worker), TTL 1
// (ttl_exceeded), an error longer than the egress MTU (too_big), the ICMP error rate
// (icmp_rate_limited, last, as for the other modes). The checks before (ICMP checksum, MTU below
// the minimum, the quote's IP header and its source) are forwardIcmpError's (slow_path.h). A
// session whose client and backend are of different families is not translated here
// (fullnat_unsupported).
// Cold: the slow path's, never a burst's TCP/UDP packet. No allocation, lock, log or syscall.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/icmp_quote.h"
#include "dataplane/parser.h"
#include "dataplane/worker.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// An ICMP error to a VIP or source address whose quote `q` (parsed, TCP or UDP, its source the
// error's destination) is about a full-NAT flow: its source is a source address, or a fullnat
// VIP's service. Then the error is translated and queued in `tx`, or dropped and counted, and
// the result is true; otherwise nothing is done and the result is false.
[[gnu::cold]] bool fullNatIcmpError(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                    const Quote& q, uint32_t now_ms, TxBatch& tx);

}  // namespace l4lb::dataplane
