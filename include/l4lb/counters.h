// Per-worker counters: every drop has a named reason and its own counter (grout's verdicts).
// Layout shared by the data plane (writes its own copy) and the control plane (reads and sums).
#pragma once

#include <cstdint>
#include <string_view>

#include <rte_common.h>

namespace l4lb {

// Each list below is the one place a drop reason or an event is declared: the macro produces
// the enum, its names (stats JSON, metrics and tests/integration/l4lb_harness.py use them, in
// this order, so never reorder or rename) and, through the enum, the counter arrays (VPP's
// foreach_lb_error). Each entry is X(Enumerator, "name"), after a comment on what it counts.

// Why a packet was not forwarded. Ok means "not dropped".
#define L4LB_FOREACH_DROP(X)                                                                       \
  X(Ok, "ok")                                                                                      \
  /* frame shorter than the headers it announces (Ethernet, VLAN, IP, L4) */                       \
  X(TooShort, "too_short")                                                                         \
  /* ethertype other than IPv4/IPv6 (LLDP, QinQ, ARP not asking for a VIP ...) on a port without   \
     an exception path */                                                                          \
  X(NotIp, "not_ip")                                                                               \
  /* version mismatch, IHL < 5, bad IPv4 header checksum, IPv6 hop-by-hop not first */             \
  X(BadIpHeader, "bad_ip_header")                                                                  \
  /* IP total/payload length beyond the frame or below the headers, bad UDP length, TCP offset */  \
  X(BadLength, "bad_length")                                                                       \
  /* IPv4 MF/offset or IPv6 fragment header: not balanced (no L4 ports in later fragments); to a   \
     VIP address, or on a port without an exception path */                                       \
  X(Fragment, "fragment")                                                                          \
  /* L4 protocol other than TCP/UDP/ICMP; to a VIP address, or without an exception path */        \
  X(UnsupportedProto, "unsupported_proto")                                                         \
  /* ICMP/ICMPv6 that is not echo, NS or an error about a VIP flow (to a VIP address, or on a port \
     without an exception path) */                                                                 \
  X(Icmp, "icmp")                                                                                  \
  /* TCP/UDP neither for a VIP (addr, port, proto) nor a NAT reply: never relayed; to a VIP        \
     address, or on a port without an exception path */                                           \
  X(NoVip, "no_vip")                                                                               \
  /* VIP has no usable backend */                                                                  \
  X(NoBackend, "no_backend")                                                                       \
  /* NAT forwarding would decrement TTL/hop limit to zero */                                       \
  X(TtlExceeded, "ttl_exceeded")                                                                   \
  /* packet larger than the egress MTU and cannot be fragmented (ICMP sent if DF, never for a      \
     forwarded ICMP error) */                                                                      \
  X(TooBig, "too_big")                                                                             \
  /* mbuf has no room for the encapsulation header (or a neighbour advertisement) */               \
  X(NoHeadroom, "no_headroom")                                                                     \
  /* NAT reply: no port/next hop for the client address */                                        \
  X(NoRoute, "no_route")                                                                           \
  /* the NIC TX queue did not accept the packet */                                                 \
  X(TxFull, "tx_full")                                                                             \
  /* a port's or a tap's kernel_port is set but names no valid port (never on a port without an    \
     exception path: its non-balancer traffic keeps the reasons above) */                          \
  X(NoKernelPath, "no_kernel_path")                                                                \
  /* echo request or ICMP error for a VIP with a wrong ICMP checksum */                            \
  X(BadIcmp, "bad_icmp")                                                                           \
  /* neighbour solicitation for a VIP failing RFC 4861 §7.1.1 validation */                        \
  X(BadNd, "bad_nd")                                                                               \
  /* ICMP error to a VIP whose quoted packet is truncated or not VIP -> client TCP/UDP */          \
  X(BadIcmpQuote, "bad_icmp_quote")                                                                \
  /* ICMP error about a round-robin VIP flow this worker has no entry for */                       \
  X(IcmpErrorNoFlow, "icmp_error_no_flow")                                                         \
  /* IPv6 packet (or the packet an ICMPv6 error quotes) with more than 8 extension headers before  \
     its upper-layer header: fail closed, no ports read */                                         \
  X(Ipv6ExtLimit, "ipv6_ext_limit")                                                                \
  /* ICMP error to a VIP quoting a non-first fragment (no ports to name the flow by) */            \
  X(IcmpQuoteFragment, "icmp_quote_fragment")                                                      \
  /* fragmentation-needed quoting a next-hop MTU below 576, or packet-too-big below 1280 */        \
  X(IcmpMtuTooSmall, "icmp_mtu_too_small")                                                         \
  /* valid ICMP error about a VIP flow above the worker's [icmp] rate (token bucket) */            \
  X(IcmpRateLimited, "icmp_rate_limited")                                                           \
  /* a new flow over its VIP's new_flow_rate, with over_rate = "drop" */                           \
  X(RateLimited, "rate_limited")                                                                   \
  /* later fragment to a VIP address whose first was not seen, and the fragment table had no way   \
     for it (every way of its bucket holds a live decision) */                                    \
  X(FragTableFull, "frag_table_full")                                                              \
  /* later fragment not held: the worker's held pool ([fragments] max_held) is full */             \
  X(FragHeldFull, "frag_held_full")                                                                \
  /* held fragment whose first did not arrive within [fragments] timeout */                        \
  X(FragTimeout, "frag_timeout")                                                                   \
  /* later fragment not held: its datagram already holds max_held_per_datagram */                  \
  X(FragDatagramFull, "frag_datagram_full")                                                        \
  /* held fragments of a datagram whose first never came, evicted for a newer datagram */          \
  X(FragEvicted, "frag_evicted")                                                                   \
  /* fragment for another worker (its owner by source and destination) not taken: ring full */     \
  X(FragRingFull, "frag_ring_full")                                                                \
  /* tunnelled IPv4 packet to fragment on the outer header: no direct or indirect mbuf left */     \
  X(FragOutNomem, "frag_out_nomem")                                                               \
  /* new full-NAT flow: no free (address, port) left in its VIP's source pool */                   \
  X(SnatExhausted, "snat_exhausted")                                                               \
  /* full-NAT packet with no session: a client packet that does not open one (not a SYN, not       \
     UDP), a backend's packet to a pool (address, port) that no live flow uses, or an ICMP error   \
     quoting a pair or a client's tuple that no live session holds */                              \
  X(FullNatNoSession, "fullnat_no_session")                                                        \
  /* an ICMP error quoting the balancer's packet from a pool port that another worker owns (its    \
     RSS queue is not the owner's; ICMP errors are not handed off, replies are) */                \
  X(FullNatWrongWorker, "fullnat_wrong_worker")                                                    \
  /* a backend's packet for a pool port that another worker owns not taken: that worker's         \
     hand-off ring was full */                                                                     \
  X(FullNatRingFull, "fullnat_ring_full")                                                          \
  /* full-NAT packet that full NAT does not translate: an IP fragment, an ICMP error about a       \
     flow whose client and backend are of different families, a new flow whose frame has a         \
     group source MAC (its replies go there) */                                                    \
  X(FullNatUnsupported, "fullnat_unsupported")                                                     \
  /* full-NAT packet of a session whose client and backend differ in family (IPv4 <-> IPv6) that  \
     is not translated: IPv4 options or IPv6 extension headers, or no headroom for the IPv6      \
     header's 20 more bytes */                                                                    \
  X(FullNatXlateDropped, "fullnat_xlate_dropped")                                                  \
  /* full-NAT segment that needed the PROXY header inserted and had no room (chained mbuf, no      \
     headroom, or over the egress MTU) */                                                          \
  X(ProxyHeaderNoRoom, "proxy_header_no_room")

// Events that are not drops.
#define L4LB_FOREACH_CTR(X)                                                                        \
  X(RxPackets, "rx_packets")                                                                       \
  X(RxBytes, "rx_bytes")                                                                           \
  X(TxPackets, "tx_packets")                                                                       \
  X(TxBytes, "tx_bytes")                                                                           \
  /* packet matched an entry in the flow table */                                                  \
  X(FlowHit, "flow_hit")                                                                           \
  /* new flow inserted */                                                                          \
  X(FlowNew, "flow_new")                                                                           \
  /* insert failed: packet scheduled by stateless Maglev instead */                                \
  X(FlowTableFull, "flow_table_full")                                                              \
  /* entry pointed at a backend no longer usable: re-picked */                                     \
  X(FlowRehash, "flow_rehash")                                                                     \
  /* entries removed by the sweeper */                                                             \
  X(FlowExpired, "flow_expired")                                                                   \
  /* NAT replies rewritten back to the VIP */                                                      \
  X(NatReverse, "nat_reverse")                                                                     \
  /* ICMP fragmentation-needed / ICMPv6 packet-too-big generated */                                \
  X(IcmpTooBigSent, "icmp_too_big_sent")                                                           \
  /* handed to the port's kernel side (exception path) */                                          \
  X(ToKernel, "to_kernel")                                                                         \
  /* sent on the port on behalf of the kernel (exception path) */                                  \
  X(FromKernel, "from_kernel")                                                                     \
  /* ARP replies for VIP addresses */                                                              \
  X(ArpReply, "arp_reply")                                                                         \
  /* neighbour advertisements for VIP addresses */                                                 \
  X(NdReply, "nd_reply")                                                                           \
  /* ICMP/ICMPv6 echo replies from VIP addresses */                                                \
  X(EchoReply, "echo_reply")                                                                       \
  /* ICMP errors about a VIP flow sent to the backend that owns the flow */                        \
  X(IcmpErrorForwarded, "icmp_error_forwarded")                                                   \
  /* a new embryonic flow (SYN, first UDP packet) found the embryonic quota full and nothing to    \
     displace: scheduled by stateless Maglev instead, not tracked */                               \
  X(FlowEmbryonicFull, "flow_embryonic_full")                                                      \
  /* a live embryonic entry displaced to admit a new one */                                        \
  X(FlowEmbryonicDisplaced, "flow_embryonic_displaced")                                            \
  /* a new flow over its VIP's new_flow_rate (over_rate = "stateless"): scheduled statelessly */   \
  X(FlowRateStateless, "flow_rate_stateless")                                                      \
  /* first fragments (offset 0, L4 header) to a VIP: scheduled as their 5-tuple */                 \
  X(FragFirst, "frag_first")                                                                       \
  /* later fragments that found their first's decision in the fragment table */                    \
  X(FragTracked, "frag_tracked")                                                                   \
  /* later fragments held until their first arrives */                                             \
  X(FragHeld, "frag_held")                                                                         \
  /* fragments (first, later or released from hold) sent toward a backend */                       \
  X(FragForwarded, "frag_forwarded")                                                               \
  /* first fragments whose decision the full fragment table could not record (forwarded; later    \
     ones are held until they time out) */                                                        \
  X(FragUntracked, "frag_untracked")                                                               \
  /* full-NAT sessions opened (a source pair taken from the pool) */                              \
  X(FullNatNew, "fullnat_new")                                                                     \
  /* full-NAT sessions ended (timed out or closed; the pair waits out its quiet time) */          \
  X(FullNatEnded, "fullnat_ended")                                                                 \
  /* full-NAT backend packets translated back to the client */                                    \
  X(FullNatReverse, "fullnat_reverse")                                                             \
  /* client segments that carried the PROXY v2 header to the backend (first ones and resends) */  \
  X(ProxyHeaderSent, "proxy_header_sent")                                                          \
  /* fragments handed to their owner worker's ring (fragments of one datagram meet there) */       \
  X(FragHandedOff, "frag_handed_off")                                                              \
  /* backend packets to a full-NAT pair that another worker owns, handed to its ring (RSS put them  \
     on this worker's queue: the pair was not steered, fullnat_unsteered) */                       \
  X(FullNatHandedOff, "fullnat_handed_off")                                                        \
  /* full-NAT sessions, with several workers, whose pair could not be chosen so that RSS brings     \
     the backend's packets to the session's worker (RSS unknown, one RX queue, ports not hashed, or \
     no such pair free): their packets may take the hand-off ring */                               \
  X(FullNatUnsteered, "fullnat_unsteered")                                                         \
  /* tunnelled IPv4 packets (inner DF clear) fragmented on the outer header to fit the egress */  \
  X(TunnelFragmented, "tunnel_fragmented")                                                       \
  /* flow sync (dataplane/sync_rings.h): a record not pushed, the worker's sync_out ring was full   \
     (a new flow is announced again by the sweep, a re-announcement on its next pass) */           \
  X(SyncOutFull, "sync_out_full")                                                                  \
  /* records pushed to sync_out: new confirmed flows and the sweep's re-announcements */           \
  X(SyncAnnounced, "sync_announced")                                                               \
  /* peer records inserted as new entries (no entry, or an expired one) */                         \
  X(SyncInInserted, "sync_in_inserted")                                                            \
  /* peer records that refreshed a peer entry with the same backend */                             \
  X(SyncInRefreshed, "sync_in_refreshed")                                                          \
  /* peer records not applied: the flow has a live local entry (local traffic decides) */          \
  X(SyncInKeptLocal, "sync_in_kept_local")                                                         \
  /* peer records not applied: VIP or backend (address, port) unknown here, the backend down,      \
     or the record malformed */                                                                    \
  X(SyncInUnknown, "sync_in_unknown")                                                              \
  /* packets that hit an entry a peer inserted (peer-table hits); the first local packet takes      \
     the entry over, so this is about one per flow that moved here */                             \
  X(FlowPeerHit, "flow_peer_hit")                                                                  \
  /* peer records that re-pointed a peer entry to another backend (the record was newer) */        \
  X(SyncInReplaced, "sync_in_replaced")                                                            \
  /* peer records not applied: older than the peer entry they name, or already idle past the       \
     state's timeout */                                                                            \
  X(SyncInStale, "sync_in_stale")                                                                  \
  /* peer records not applied: no room in the flow table by the admission rules */                 \
  X(SyncInTableFull, "sync_in_table_full")

#define L4LB_ENUMERATOR(e, name) e,
#define L4LB_NAME(e, name) name,

enum class Drop : uint8_t { L4LB_FOREACH_DROP(L4LB_ENUMERATOR) Count };
constexpr std::string_view kDropNames[] = {L4LB_FOREACH_DROP(L4LB_NAME)};
static_assert(sizeof(kDropNames) / sizeof(kDropNames[0]) == size_t(Drop::Count));
static_assert(size_t(Drop::Ok) == 0, "Ok is 'not dropped': totalDrops() and the stats skip index 0");

inline std::string_view toString(Drop d) { return kDropNames[size_t(d)]; }

enum class Ctr : uint8_t { L4LB_FOREACH_CTR(L4LB_ENUMERATOR) Count };
constexpr std::string_view kCtrNames[] = {L4LB_FOREACH_CTR(L4LB_NAME)};
static_assert(sizeof(kCtrNames) / sizeof(kCtrNames[0]) == size_t(Ctr::Count));

#undef L4LB_ENUMERATOR
#undef L4LB_NAME

// Owned and written by one worker; read (racy but word-atomic on x86-64) by the control plane.
struct alignas(RTE_CACHE_LINE_SIZE) WorkerCounters {
  uint64_t drops[size_t(Drop::Count)] = {};
  uint64_t ctrs[size_t(Ctr::Count)] = {};

  void drop(Drop d) { drops[size_t(d)]++; }
  void add(Ctr c, uint64_t n = 1) { ctrs[size_t(c)] += n; }
  uint64_t get(Drop d) const { return drops[size_t(d)]; }
  uint64_t get(Ctr c) const { return ctrs[size_t(c)]; }
  uint64_t totalDrops() const {
    uint64_t s = 0;
    for (size_t i = 1; i < size_t(Drop::Count); i++) s += drops[i];
    return s;
  }
};

// Per-backend traffic, indexed by backend id (stable across reloads, so a counter keeps
// counting through them). Backend ids >= kMaxCountedBackends are not counted per backend.
// Owned and written by one worker; the control plane sums the workers' arrays.
inline constexpr uint32_t kMaxCountedBackends = 1u << 16;
struct BackendCounters {
  uint64_t packets = 0;      // forwarded to this backend (client -> backend direction)
  uint64_t bytes = 0;        // of those frames as sent (after rewrite / encapsulation)
  uint64_t flows_new = 0;    // flow entries created for it, or re-pointed to it (rehash)
  uint64_t flows_ended = 0;  // its entries expired (swept, or found expired and replaced) or
                             // moved away (rehash); active = new - ended
};

// Per port (Snapshot::ports index), both directions, as the worker saw them.
struct PortCounters {
  uint64_t rx_packets = 0, rx_bytes = 0;
  uint64_t tx_packets = 0, tx_bytes = 0;
};

// Full NAT: one source address's (address, port) pairs by state: held by a session, free, or
// freed and still waiting out the quiet time. A worker publishes its share (WorkerState::
// snat_ports, at most once a second, publishSnatUsage); the control plane sums them.
struct SnatPortCounts {
  uint64_t in_use = 0, free = 0, quiet = 0;
};

// How busy a worker is: loops that received packets, and TSC cycles spent in them versus all
// (l4lb_worker_busy_ratio = busy_cycles / total_cycles). With [eal] idle_backoff, the idle
// sleeps (src/dataplane/idle_backoff.h) and the TSC cycles they took, part of total_cycles.
struct alignas(RTE_CACHE_LINE_SIZE) WorkerLoad {
  uint64_t loops = 0;
  uint64_t busy_loops = 0;
  uint64_t busy_cycles = 0;
  uint64_t total_cycles = 0;
  uint64_t idle_sleeps = 0;
  uint64_t idle_sleep_cycles = 0;
};

}  // namespace l4lb
