// Per-worker counters: every drop has a named reason and its own counter (grout's verdicts).
// Layout shared by the data plane (writes its own copy) and the control plane (reads and sums).
#pragma once

#include <cstdint>
#include <string_view>

#include <rte_common.h>

namespace l4lb {

// Why a packet was not forwarded. Ok means "not dropped".
enum class Drop : uint8_t {
  Ok = 0,
  TooShort,          // frame shorter than the headers it announces (Ethernet, VLAN, IP, L4)
  NotIp,             // ethertype other than IPv4/IPv6 (LLDP, QinQ, ARP not asking for a VIP ...)
                     // on a port without an exception path
  BadIpHeader,       // version mismatch, IHL < 5, bad IPv4 header checksum, IPv6 ext chain too long
  BadLength,         // IP total/payload length beyond the frame or below the headers, bad UDP length, TCP offset
  Fragment,          // IPv4 MF/offset or IPv6 fragment header: not balanced (no L4 ports in later
                     // fragments); to a VIP address, or on a port without an exception path
  UnsupportedProto,  // L4 protocol other than TCP/UDP/ICMP; to a VIP address, or without an exception path
  Icmp,              // ICMP/ICMPv6 that is not echo, NS or an error about a VIP flow (to a VIP
                     // address, or on a port without an exception path)
  NoVip,             // TCP/UDP neither for a VIP (addr, port, proto) nor a NAT reply: never relayed;
                     // to a VIP address, or on a port without an exception path
  NoBackend,         // VIP has no usable backend
  TtlExceeded,       // NAT forwarding would decrement TTL/hop limit to zero
  TooBig,            // packet larger than the egress MTU and cannot be fragmented (ICMP sent if DF,
                     // never for a forwarded ICMP error)
  NoHeadroom,        // mbuf has no room for the encapsulation header (or a neighbour advertisement)
  NoRoute,           // NAT reply: no port/next hop for the client address
  TxFull,            // the NIC TX queue did not accept the packet
  NoKernelPath,      // a port's or a tap's kernel_port is set but names no valid port (never on a
                     // port without an exception path: its non-balancer traffic keeps the reasons above)
  BadIcmp,           // echo request or ICMP error for a VIP with a wrong ICMP checksum
  BadNd,             // neighbour solicitation for a VIP failing RFC 4861 §7.1.1 validation
  BadIcmpQuote,      // ICMP error to a VIP whose quoted packet is truncated or not VIP -> client TCP/UDP
  IcmpErrorNoFlow,   // ICMP error about a round-robin VIP flow this worker has no entry for
  Count
};

constexpr std::string_view kDropNames[] = {
    "ok",          "too_short",  "not_ip",      "bad_ip_header", "bad_length",
    "fragment",    "unsupported_proto", "icmp",  "no_vip",        "no_backend",
    "ttl_exceeded", "too_big",   "no_headroom", "no_route",      "tx_full",
    "no_kernel_path", "bad_icmp",  "bad_nd",     "bad_icmp_quote", "icmp_error_no_flow",
};
static_assert(sizeof(kDropNames) / sizeof(kDropNames[0]) == size_t(Drop::Count));

inline std::string_view toString(Drop d) { return kDropNames[size_t(d)]; }

// Events that are not drops.
enum class Ctr : uint8_t {
  RxPackets = 0,
  RxBytes,
  TxPackets,
  TxBytes,
  FlowHit,           // packet matched an entry in the flow table
  FlowNew,           // new flow inserted
  FlowTableFull,     // insert failed: packet scheduled by stateless Maglev instead
  FlowRehash,        // entry pointed at a backend no longer usable: re-picked
  FlowExpired,       // entries removed by the sweeper
  NatReverse,        // NAT replies rewritten back to the VIP
  IcmpTooBigSent,    // ICMP fragmentation-needed / ICMPv6 packet-too-big generated
  ToKernel,          // handed to the port's kernel side (exception path)
  FromKernel,        // sent on the port on behalf of the kernel (exception path)
  ArpReply,          // ARP replies for VIP addresses
  NdReply,           // neighbour advertisements for VIP addresses
  EchoReply,         // ICMP/ICMPv6 echo replies from VIP addresses
  IcmpErrorForwarded,  // ICMP errors about a VIP flow sent to the backend that owns the flow
  Count
};

constexpr std::string_view kCtrNames[] = {
    "rx_packets", "rx_bytes",   "tx_packets",  "tx_bytes",    "flow_hit",         "flow_new",
    "flow_table_full", "flow_rehash", "flow_expired", "nat_reverse", "icmp_too_big_sent",
    "to_kernel",  "from_kernel", "arp_reply",   "nd_reply",    "echo_reply",       "icmp_error_forwarded",
};
static_assert(sizeof(kCtrNames) / sizeof(kCtrNames[0]) == size_t(Ctr::Count));

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

// How busy a worker is: loops that received packets, and TSC cycles spent in them versus all
// (l4lb_worker_busy_ratio = busy_cycles / total_cycles).
struct alignas(RTE_CACHE_LINE_SIZE) WorkerLoad {
  uint64_t loops = 0;
  uint64_t busy_loops = 0;
  uint64_t busy_cycles = 0;
  uint64_t total_cycles = 0;
};

}  // namespace l4lb
