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

// The parser rejected the frame with `verdict`: ARP requests for a VIP are answered; otherwise
// see the ownership rules above.
[[gnu::cold]] void handleUnparsed(WorkerState& w, const Snapshot& s, rte_mbuf* m, Drop verdict, uint16_t ingress,
                                  TxBatch& tx);

// A parsed ICMP (IPv4) or ICMPv6 (IPv6) packet: echo requests to a VIP are answered, neighbour
// solicitations for a VIP get an advertisement, errors about a VIP flow go to the flow's backend.
[[gnu::cold]] void handleIcmp(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                              uint16_t ingress, uint32_t now_ms, TxBatch& tx);

// A parsed TCP/UDP packet that is neither for a VIP service nor a NAT reply.
[[gnu::cold]] void handleNotForVip(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                   uint16_t ingress, TxBatch& tx);

}  // namespace l4lb::dataplane
