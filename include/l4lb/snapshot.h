// The immutable tables the control plane publishes to the workers (RCU-style: built whole off the
// hot path, published with one atomic pointer store, freed after every worker has passed a
// quiescent state). Workers only read a Snapshot; nothing in it changes after publication.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "l4lb/addr.h"
#include "l4lb/flat_map.h"
#include "l4lb/limits.h"
#include "l4lb/types.h"

namespace l4lb {

// Backend id 0 means "none" (as in Katran): a Maglev slot or flow entry holding 0 has no backend.
inline constexpr uint32_t kNoBackend = 0;
inline constexpr uint8_t kTunnelTtl = 64;  // outer TTL / hop limit of ipip and gue packets

// (address, port, protocol) of a VIP, or of a NAT backend for the reverse lookup. Ports in network
// byte order. No implicit padding (hashed and compared bytewise); 8-byte aligned for the hash.
struct alignas(8) ServiceKey {
  std::array<uint8_t, 16> addr{};
  uint16_t port_be = 0;
  uint8_t proto = 0;
  uint8_t family = 0;
  uint32_t pad = 0;
  static ServiceKey make(const IpAddr& a, uint16_t port_be, uint8_t proto) {
    ServiceKey k;
    k.addr = a.bytes;
    k.port_be = port_be;
    k.proto = proto;
    k.family = uint8_t(a.family);
    return k;
  }
};
static_assert(sizeof(ServiceKey) == 24);

struct alignas(8) AddrKey {
  std::array<uint8_t, 16> addr{};
  uint32_t family = 0;
  uint32_t pad = 0;
  static AddrKey make(const IpAddr& a) { return AddrKey{a.bytes, uint32_t(a.family), 0}; }
};
static_assert(sizeof(AddrKey) == 24);

struct SnapPort {
  uint16_t port_id = 0;      // DPDK port id
  uint16_t mtu = 1500;
  MacAddr mac;
  bool has_v4 = false, has_v6 = false;
  Prefix v4, v6;             // own address + connected prefix
  bool has_gw4 = false, has_gw6 = false;
  MacAddr gw4_mac, gw6_mac;  // next hop for destinations outside the connected prefixes
  std::string name;
  // Exception path (tap): the kernel's side of this port is Snapshot::ports[kernel_port], and
  // that port's kernel_port points back. -1: no kernel side (non-balancer traffic is dropped
  // and counted). A port with is_kernel set is a tap: everything received on it is sent
  // unchanged out of its kernel_port; it is never a backend's egress.
  int16_t kernel_port = -1;
  bool is_kernel = false;
};

// A backend's per-packet constants, precomputed by the snapshot builder so the worker copies and
// adds rather than building headers field by field (Katran keeps its per-real encapsulation data
// the same way). Checksum words are "as stored": 16-bit loads of network-order bytes, which RFC
// 1071 §2(B) allows whatever the host's byte order.
struct BackendRewrite {
  // The frame's first bytes as sent. ipip/gue: [Ethernet][outer IPv4|IPv6][UDP for gue] with the
  // per-packet fields zero (IPv4: TOS, total length, ID, flags, checksum; IPv6: traffic class,
  // flow label, payload length; UDP: source port, length, checksum). dsr/nat: the Ethernet header.
  std::array<uint8_t, 64> hdr{};
  uint8_t hdr_len = 0;       // 14 + 20|40 (+ 8 for gue); 14 for dsr and nat
  // The largest IP packet (inner, for tunnels) that fits the egress MTU with the added headers.
  uint16_t max_l3_len = 0;
  // ipip/gue over IPv4: RFC 1071 sum of the outer header's constant words (version/IHL, TTL and
  // protocol, addresses), folded to 1..0xffff; the worker adds TOS, length, ID and flags.
  uint16_t outer_sum = 0;
  // nat: RFC 1624 eqn. 3 difference (sum of ~old + new words, folded) of what forwardNat changes,
  // constant per (VIP, backend): the address VIP -> backend (and port, when the backend has one)
  // in the L4 checksum, whose pseudo-header covers the address; the address and the TTL
  // decrement in the IPv4 header checksum. 0 only when nothing changes.
  uint16_t nat_l4_delta = 0;
  uint16_t nat_ip_delta = 0;
};

struct SnapBackend {
  uint32_t id = kNoBackend;  // kNoBackend: this id is not in the snapshot
  IpAddr addr;
  uint16_t port_be = 0;      // NAT destination port; 0 = keep the client's
  uint16_t weight = 0;
  BackendState state = BackendState::Healthy;
  uint16_t vip_index = 0;
  uint16_t egress = 0;       // index into Snapshot::ports
  MacAddr next_hop_mac;      // resolved next hop (the backend itself when connected)
  // ipip/gue outer source: the VIP's tunnel_source4/6 for this backend's family, else the
  // address of the port the backend is reached through (per backend: two backends behind two
  // ports leave from two addresses).
  IpAddr tunnel_src;
  BackendRewrite rw;
};

// A token bucket's parameters, in millionths of a flow. per_ms 0: unlimited.
struct NewFlowLimit {
  uint64_t per_ms = 0;  // tokens added per millisecond (rate in flows/s x 1000 / workers)
  uint64_t burst = 0;   // bucket size (burst in flows x 10^6 / workers, at least one flow)
  bool drop = false;    // over the rate: drop (Drop::RateLimited), else forward statelessly
};
inline constexpr uint64_t kTokensPerFlow = 1'000'000;

// A full-NAT source address (vips.snat_addresses) with its port range and quiet time. Its index
// in Snapshot::snat_addrs is fixed for the daemon's life: the workers size their session tables
// by the list at start, and a reload that changes it needs a restart (control/snat_pools.h).
struct SnapSnatAddr {
  IpAddr addr;
  uint16_t port_lo = 1024, port_hi = 65535;
  uint32_t quiet_ms = 60'000;
  bool operator==(const SnapSnatAddr&) const = default;
};

struct SnapVip {
  std::string name;
  IpAddr addr;
  uint16_t port_be = 0;      // 0 = all ports
  Proto proto = Proto::Tcp;
  Scheduler scheduler = Scheduler::Maglev;
  FwdMode mode = FwdMode::Dsr;
  uint16_t gue_port_be = 0;
  std::vector<uint32_t> maglev;     // slot -> backend id (healthy backends only); prime size
  std::vector<uint32_t> rr;         // round-robin sequence of backend ids (weighted for wrr)
  std::vector<uint32_t> backends;   // every backend id of this VIP, whatever its state
  // Optional new-flow rate limit (dataplane/rate_limit.h), per worker: the snapshot builder
  // splits the configured new_flow_rate and new_flow_burst evenly over the workers.
  NewFlowLimit new_flow;
  FragPolicy fragments = FragPolicy::Track;
  // fullnat: the source addresses (Snapshot::snat_addrs indexes) for IPv4 and IPv6 backends, and
  // whether the client's address goes to the backend in a PROXY v2 header.
  std::vector<uint32_t> snat4, snat6;
  bool proxy_v2 = false;
};

struct NatReverse {
  uint32_t vip_index = 0;
  uint32_t backend_id = 0;
};

struct Snapshot {
  uint64_t generation = 0;
  std::vector<SnapPort> ports;            // index = our port index (egress in SnapBackend)
  std::vector<int16_t> port_index_by_id;  // DPDK port id -> our index (-1: not ours)
  std::vector<SnapVip> vips;
  std::vector<SnapBackend> backends;      // indexed by backend id; [0] is "none"
  FlatMap<ServiceKey, uint32_t> vip_by_key;      // (addr, port|0, proto) -> vips index
  FlatMap<ServiceKey, NatReverse> nat_reverse;   // (backend addr, backend port, proto) -> VIP
  FlatMap<AddrKey, MacAddr> neighbours;          // neighbour table (static + resolved)
  FlatMap<AddrKey, uint32_t> vip_addrs;          // VIP address -> a vips index (ARP/ND/echo replies)
  // VIP addresses with at least one VIP tracking fragments (fragments = "track"): a later
  // fragment whose first is unknown is held only for these; for the others it is dropped.
  FlatMap<AddrKey, uint32_t> frag_track_addrs;
  // Full NAT's source addresses, and each one's index by address (a backend's reply is for one).
  std::vector<SnapSnatAddr> snat_addrs;
  FlatMap<AddrKey, uint32_t> snat_by_addr;
  FlowTimeouts timeouts;
  FlowAdmission admission;  // [flow_table] embryonic_share; the test-only switch
  IcmpErrorLimit icmp_errors;  // per worker (slow_path.cc)
  uint32_t frag_timeout_ms = 2000;  // [fragments] timeout: a fragment-table entry's lifetime
  // Flow sync ([sync] announce_interval): a live, locally active flow is re-announced to the
  // peers at least this often (dataplane/sync_rings.h). 0: sync off.
  uint32_t sync_announce_ms = 0;

  const SnapBackend* backend(uint32_t id) const {
    // Bounded by bytes, not by size(): size() divides by sizeof(SnapBackend) (a multiply and
    // shifts on every flow-table hit, decide.h).
    const auto* first = reinterpret_cast<const char*>(backends.data());
    const auto* last = reinterpret_cast<const char*>(backends.data() + backends.size());
    if (size_t(id) * sizeof(SnapBackend) >= size_t(last - first)) return nullptr;
    return backends[id].id == id && id != kNoBackend ? &backends[id] : nullptr;
  }
};

}  // namespace l4lb
