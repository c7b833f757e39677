// The worker's slow path: every packet that is not TCP/UDP for a VIP (or from a NAT backend).
// Out of line and marked cold, so processBurst's fast path stays as it is; reached only after
// the parser failed, for non-TCP/UDP protocols, or after the VIP and NAT-reply lookups missed.
//
// Who owns what:
//  - A packet whose destination is a VIP address belongs to the balancer, never to the kernel
//    (the kernel does not hold VIP addresses): it is answered (ARP, ND, echo), forwarded (ICMP
//    errors about a VIP flow) or dropped with a counted reason. Malformed packets to a VIP stay
//    counted drops.
//  - Everything else is the kernel's (ARP and ND for the port's own addresses, traffic to those
//    addresses, other ethertypes, multicast): on a port with an exception path
//    (SnapPort::kernel_port >= 0) it leaves unchanged on ports[kernel_port] (to_kernel); on a port
//    without one it is dropped under the reason it always had (not_ip, icmp, no_vip, fragment,
//    unsupported_proto).
//  - Malformed frames: a frame the parser rejects before it could trust the IP header or the L4
//    header (too_short, bad_ip_header, bad_length) is dropped and counted whatever its
//    destination; the kernel would discard it as well, and its destination is not reliable.
//    Fragments and other IP protocols (well-formed IP headers the balancer does not handle:
//    fragmented host traffic, IGMP, OSPF, ESP ...) go to the kernel unless they are to a VIP.
//  - Replies (ARP, NA, echo) are only made for untagged frames: the ports have no VLAN
//    configuration, so a tagged request is not known to come from the port's own network, and
//    the reply could not be sent back on its VLAN. Tagged requests are handled like any other
//    non-balancer frame.
// Every handler consumes the mbuf: it is put in `tx` or freed with a counted drop.
//
// ICMP/ICMPv6 errors about a VIP flow (destination unreachable, fragmentation needed / packet
// too big, time exceeded, to a VIP address). The error quotes a packet the VIP's side sent,
// VIP:vport -> client:cport; it is forwarded to the backend of the flow client -> VIP:vport, or
// refused. Checks in this order, each refusal under its own counter:
//  1. ICMP checksum: bad_icmp.
//  2. Fragmentation needed (IPv4 type 3 code 4) reporting an MTU below 576, packet too big
//     below 1280: icmp_mtu_too_small (no path has less; forwarded, it would shrink the backend's
//     segments for nothing).
//  3. The quote: an IP header of the error's own family whose source is the VIP address the
//     error was sent to, TCP or UDP, the 8 bytes with the ports within the quote, and a VIP
//     service on the quoted (address, port, protocol): else bad_icmp_quote. IPv6 extension
//     headers in the quote follow the parser's rules and limit: more than 8 is ipv6_ext_limit
//     (fail closed: ports are never read from bytes that may not hold them). A quoted non-first
//     fragment has no ports: it is forwarded only if this worker's fragment table (frag_table.h
//     lookup) holds a live decision for exactly the quoted datagram (quoted source, destination,
//     IPv4 ID / IPv6 identification, protocol; VIP -> client as quoted, never the reverse
//     direction's datagram with the same ID), about a VIP at the quoted source and protocol;
//     then to the decision's backend (no_backend if a reload made it unusable), with the egress
//     MTU and rate checks below (5, 6), and for NAT only the quoted IP source is translated (the
//     ports are not in it). Unknown: icmp_quote_fragment. The table records the datagrams it
//     forwards client -> VIP; replies (VIP -> client) bypass the balancer (DSR, tunnels) or are
//     not reversed when fragmented (NAT), so today such an error is, in practice, refused.
//  4. The backend. The rule: the backend the flow's next packet would take on this worker.
//     - This worker's flow table has a live entry for the flow (decide.h classifyEntry: not
//       expired, backend healthy or draining): the entry's backend, whatever the current tables.
//     - Otherwise (no entry, an expired one, or one whose backend left the pool): for Maglev and
//       source hashing, the stateless choice (lookup.h statelessBackend), a pure function of the
//       flow and the snapshot, so every worker agrees without state; no usable backend:
//       no_backend. For round robin the choice depends on a worker's cursor, so nothing names
//       the flow's backend: icmp_error_no_flow.
//     RSS spreads errors by their own addresses (router -> VIP), so an error often reaches a
//     worker without the flow's entry; the stateless rule is right for it unless the tables
//     changed since the flow started (then the error reaches a backend without that connection,
//     which ignores it).
//  5. The egress MTU: an error too big for it is dropped as too_big, never answered (RFC 1122
//     §3.2.2).
//  6. The rate: a per-worker token bucket on the worker's clock ([icmp] errors_per_second,
//     burst; token_bucket.h): icmp_rate_limited. Last, so refused errors spend no token.
// Then the VIP's forwarding mode sends it (NAT: RFC 5508 rewrite of the outer destination and
// the quote) and icmp_error_forwarded counts it.
// Full NAT's errors leave this list after check 3's IP header and source: a quote whose source
// is a full-NAT source address (an error from the backends' side, to that address) or a fullnat
// VIP's service (from the clients' side) is translated by its flow's session, in either
// direction, with its own checks and counters (fullnat_icmp.h); icmp_error_forwarded counts it.
// A parameter problem (IPv4 type 12, ICMPv6 type 4) takes checks 1 to 3 too and is translated
// only for full NAT (RFC 5508 §4.2: its pointer stays right, no header length changes); any
// other is dropped there as icmp.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/parser.h"
#include "dataplane/worker.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

// Whole burst received on a tap (SnapPort::is_kernel): sent unchanged out of its kernel_port
// (from_kernel), or dropped as no_kernel_path when that is not a valid port.
[[gnu::cold]] void relayFromKernel(WorkerState& w, const Snapshot& s, rte_mbuf** pkts, uint16_t n, uint16_t ingress,
                                   TxBatch& tx);

// A frame the parser did not hand on (Parse::Drop, or a fragment with no fragment table):
// `reason` is ParseResult::reason. ARP requests for a VIP are answered; otherwise see the
// ownership rules above.
[[gnu::cold]] void handleUnparsed(WorkerState& w, const Snapshot& s, rte_mbuf* m, Drop reason, uint16_t ingress,
                                  TxBatch& tx);

// A parsed ICMP (IPv4) or ICMPv6 (IPv6) packet: echo requests to a VIP are answered, neighbour
// solicitations for a VIP get an advertisement, errors about a VIP flow go to the flow's backend.
[[gnu::cold]] void handleIcmp(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                              uint16_t ingress, uint32_t now_ms, TxBatch& tx);

// A parsed TCP/UDP packet that is neither for a VIP service nor a NAT reply.
[[gnu::cold]] void handleNotForVip(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                   uint16_t ingress, TxBatch& tx);

}  // namespace l4lb::dataplane
