// Full NAT across address families: a session whose client and backend differ in family (an
// IPv6 VIP in front of IPv4 backends, or an IPv4 VIP in front of IPv6 ones; the source pair is of
// the backend's family). Every packet of such a session has its IP header replaced, as a
// stateless IP/ICMP translator does (RFC 7915 §4.1 and §5.1), besides full NAT's rewrite of
// addresses and ports:
//  - IPv4 (20 bytes) <-> IPv6 (40 bytes): the frame grows or shrinks by 20 bytes at its front
//    (the headroom), the Ethernet type follows the new family;
//  - TOS <-> traffic class copied, TTL / hop limit decremented, IPv6 flow label 0;
//    IPv4 written with DF set and identification 0 (RFC 6864 §4.1: an atomic datagram), since
//    nothing on the IPv6 side may fragment it on the way;
//  - the TCP / UDP checksum updated by the session's difference (RFC 1624 eqn. 3): the
//    pseudo-headers of the two families differ only in their addresses (the length and the
//    protocol sum the same), so the difference is the addresses' and ports' alone
//    (crossFamilyDeltas);
//  - an IPv4 UDP datagram without a checksum (0) gets one computed over the whole datagram for
//    IPv6, where it is mandatory (RFC 8200 §8.1);
//  - not translated, dropped as fullnat_xlate_dropped: an IPv4 packet with options, an IPv6
//    packet with extension headers, and a packet whose frame has no headroom for the 20 more
//    bytes. Fragments never get here: full NAT drops them (fullnat_unsupported) on either
//    family.
// The MSS is left alone: with the same MTU on both sides, a segment the one side sizes for its
// own header fits the other's (the IPv6 side's MSS is 20 bytes smaller than the IPv4 side's).
// Cold by design: a same-family session never calls in here, so the per-packet path of same-family
// full NAT pays only the test of FullNatSession::xlate.
// Everything here is per packet: no allocation, lock, log or syscall.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/forward.h"
#include "dataplane/fullnat/fullnat_state.h"
#include "dataplane/worker.h"

namespace l4lb::dataplane::fullnat {

// The session's L4 checksum differences (l4_to_backend, and its negation l4_to_client) for a
// session with xlate set: the client's addresses and ports (client, VIP; client's family) against
// the backend's (source pair, backend; backend's family). ip_to_* are not used by the
// translation (the new IPv4 header's checksum is computed whole) and are set to 0.
void crossFamilyDeltas(FullNatSession& ss);

// True when the packet (`pi`, of family `from_v6`) can be translated: no IPv4 options, no IPv6
// extension headers, and headroom for the 20 more bytes of an IPv6 header. A client's packet that
// cannot opens no session.
bool translatable(const rte_mbuf* m, const PacketInfo& pi, bool from_v6);

// How many bytes the IP header grows on the way to the backend: +20 (IPv4 client, IPv6 backend),
// -20 (the reverse) or 0.
constexpr int xlateGrowth(const FullNatSession& ss) {
  return ss.client_v6 == ss.backend_v6 ? 0 : ss.backend_v6 ? 20 : -20;
}

// A client's packet (`pi`) of a session with xlate set, to backend `b`: rewritten into the
// backend's family, with b's Ethernet header in front (its type is the backend's family:
// snapshot_builder.cc). Sent on b's egress, or dropped (fullnat_xlate_dropped), or too big for
// the egress (tooBigFor, with the MTU the client's side has). The caller has checked the TTL.
// After it, the frame is [Ethernet][IP of the backend's family, no options][L4] and nothing else.
FwdResult xlateToBackend(const Snapshot& s, const FullNatSession& ss, const SnapBackend& b, rte_mbuf* m,
                         const PacketInfo& pi, uint16_t ingress);

// A backend's packet (`pi`) of a session with xlate set: the PROXY v2 sequence translation (as
// fullNatReverse), then rewritten into the client's family toward the client's MAC out of the
// port it came in on. Counts Ctr::FullNatReverse when sent. The caller has checked the session,
// the TTL and updated its state.
FwdResult xlateToClient(WorkerState& w, const Snapshot& s, FullNatSession& ss, rte_mbuf* m, const PacketInfo& pi);

}  // namespace l4lb::dataplane::fullnat
