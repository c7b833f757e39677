#include "control/snapshot_builder.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>

#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "l4lb/maglev.h"
#include "l4lb/net.h"
#include "control/snat_pools.h"

namespace l4lb::control {

std::string vipIdentity(const VipConfig& v) {
  return v.address.str() + "/" + std::to_string(v.port) + "/" + std::string(toString(v.protocol));
}

std::string backendIdentity(const VipConfig& v, const BackendConfig& b) {
  return vipIdentity(v) + "|" + b.address.str() + ":" + std::to_string(b.port);
}

namespace {

bool resolvesNeighbours(const PortConfig& p) { return p.exception_path != ExceptionPath::None; }

bool onLink(const PortConfig& p, const IpAddr& a) {
  return a.isV4() ? p.ipv4 && p.ipv4->contains(a) : p.ipv6 && p.ipv6->contains(a);
}
bool hasGateway(const PortConfig& p, const IpAddr& a) { return (a.isV4() ? p.gateway4 : p.gateway6).has_value(); }

// The port a backend leaves by (-1: none reaches it), and whether it is on that port's link
// (its own MAC is the next hop) or behind the port's gateway. The named port (via), else the
// port whose connected prefix holds the backend, else a port with a gateway of its family,
// else the only port.
struct Egress {
  int port = -1;
  bool connected = false;
};
Egress egressOf(const Config& cfg, const BackendConfig& b) {
  Egress e;
  for (size_t pi = 0; pi < cfg.ports.size(); pi++) {
    const PortConfig& p = cfg.ports[pi];
    if (!b.via.empty()) {
      if (p.name == b.via) e.port = int(pi), e.connected = onLink(p, b.address) || !hasGateway(p, b.address);
      continue;
    }
    if (onLink(p, b.address)) return {int(pi), true};
  }
  if (e.port >= 0 || !b.via.empty()) return e;
  for (size_t pi = 0; pi < cfg.ports.size(); pi++)
    if (hasGateway(cfg.ports[pi], b.address)) return {int(pi), false};
  if (cfg.ports.size() == 1) return {0, true};
  return e;
}

uint64_t backendKey(const BackendConfig& b) {
  std::string s = b.address.str() + ":" + std::to_string(b.port);
  return hash64(s.data(), s.size(), 0x6c34);
}

}  // namespace

BackendRewrite buildRewrite(const SnapVip& v, const SnapBackend& b, const SnapPort& out) {
  BackendRewrite rw;
  uint8_t* h = rw.hdr.data();
  const bool tunnel = v.mode == FwdMode::Ipip || v.mode == FwdMode::Gue;
  const bool gue = v.mode == FwdMode::Gue;
  // The frame carries the outer header's family for tunnels and the backend's for full NAT (which
  // may translate the family: fullnat/family_xlate.h), else the VIP's (NAT keeps it).
  const bool l3v4 = tunnel || v.mode == FwdMode::FullNat ? b.addr.isV4() : v.addr.isV4();
  std::memcpy(h, b.next_hop_mac.bytes.data(), 6);
  std::memcpy(h + 6, out.mac.bytes.data(), 6);
  const uint16_t ethertype_be = rte_cpu_to_be_16(l3v4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
  std::memcpy(h + 12, &ethertype_be, 2);
  rw.hdr_len = net::kEthHdrLen;
  rw.max_l3_len = out.mtu;

  if (v.mode == FwdMode::Nat) {
    // The packets forwardNat rewrites are addressed to exactly v.addr (the VIP lookup matched
    // it) and, when the backend has a port, to v.port_be (a nonzero backend port needs a
    // nonzero VIP port, checked in buildVip()), so the old words are known here.
    const size_t alen = v.addr.isV4() ? 4 : 16;
    uint64_t l4 = net::csumDiffBytes(v.addr.bytes.data(), b.addr.bytes.data(), unsigned(alen));
    if (b.port_be != 0)
      l4 = net::csumDiffBytes(reinterpret_cast<const uint8_t*>(&v.port_be), reinterpret_cast<const uint8_t*>(&b.port_be),
                              2, l4);
    rw.nat_l4_delta = net::csumFold64(l4);
    if (v.addr.isV4()) {
      // TTL - 1: the stored word [TTL, protocol] goes down by the stored form of [1, 0], and
      // ~m + m' = -[1, 0], which in one's complement is ~[1, 0].
      const uint8_t ttl_one[2] = {1, 0};
      uint16_t one;
      std::memcpy(&one, ttl_one, 2);
      rw.nat_ip_delta = net::csumFold64(net::csumDiffBytes(v.addr.bytes.data(), b.addr.bytes.data(), 4, uint16_t(~one)));
    }
  }
  if (!tunnel) return rw;

  const uint16_t ip_len = b.addr.isV4() ? net::kIpv4HdrLen : net::kIpv6HdrLen;
  const uint16_t overhead = net::encapOverhead(b.addr.isV4(), gue);
  rw.hdr_len = uint8_t(net::kEthHdrLen + overhead);
  rw.max_l3_len = out.mtu > overhead ? uint16_t(out.mtu - overhead) : 0;
  // RFC 2003 §3.1 (4: IPv4 inside), RFC 2473 §3 / RFC 4213 (41: IPv6 inside); GUE: UDP.
  const uint8_t proto = gue ? uint8_t(IPPROTO_UDP) : v.addr.isV4() ? uint8_t(IPPROTO_IPIP) : uint8_t(IPPROTO_IPV6);
  uint8_t* ip = h + net::kEthHdrLen;
  if (b.addr.isV4()) {
    ip[0] = RTE_IPV4_VHL_DEF;
    ip[8] = kTunnelTtl;
    ip[9] = proto;
    std::memcpy(ip + 12, b.tunnel_src.bytes.data(), 4);
    std::memcpy(ip + 16, b.addr.bytes.data(), 4);
    rw.outer_sum = net::csumFold64(net::csumAddWords32(ip, net::kIpv4HdrLen));  // per-packet words still 0
  } else {
    ip[0] = 6 << 4;
    ip[6] = proto;
    ip[7] = kTunnelTtl;
    std::memcpy(ip + 8, b.tunnel_src.bytes.data(), 16);
    std::memcpy(ip + 24, b.addr.bytes.data(), 16);
  }
  if (gue) std::memcpy(ip + ip_len + 2, &v.gue_port_be, 2);  // UDP destination port
  return rw;
}

uint32_t SnapshotBuilder::idFor(const std::string& identity) {
  auto it = ids_.find(identity);
  if (it != ids_.end()) return it->second;
  uint32_t id = next_id_++;
  ids_.emplace(identity, id);
  return id;
}

std::vector<uint32_t> buildWrrSequence(const std::vector<std::pair<uint32_t, uint32_t>>& id_weights,
                                       uint32_t max_len) {
  std::vector<std::pair<uint32_t, uint64_t>> w;
  uint64_t g = 0, total = 0;
  for (auto [id, wt] : id_weights)
    if (wt > 0) g = std::gcd(g, uint64_t(wt));
  for (auto [id, wt] : id_weights)
    if (wt > 0) {
      w.emplace_back(id, wt / g);
      total += wt / g;
    }
  if (w.empty()) return {};
  if (total > max_len) {
    // Scale down, every backend keeping at least one turn; raising the ones that round to 0
    // can overshoot max_len by up to one per backend, taken back from the heaviest.
    uint64_t t2 = 0;
    for (auto& [id, wt] : w) {
      wt = std::max<uint64_t>(1, wt * max_len / total);
      t2 += wt;
    }
    while (t2 > max_len) {
      auto heaviest = std::max_element(w.begin(), w.end(), [](auto& a, auto& b) { return a.second < b.second; });
      if (heaviest->second <= 1) break;  // more backends than max_len: one turn each
      heaviest->second--;
      t2--;
    }
    total = t2;
  }
  std::vector<int64_t> current(w.size(), 0);
  std::vector<uint32_t> seq;
  seq.reserve(total);
  for (uint64_t n = 0; n < total; n++) {
    size_t best = 0;
    for (size_t i = 0; i < w.size(); i++) {
      current[i] += int64_t(w[i].second);
      if (current[i] > current[best]) best = i;
    }
    current[best] -= int64_t(total);
    seq.push_back(w[best].first);
  }
  return seq;
}

std::string BuildResult::joined() const {
  std::string out;
  for (const std::string& e : errors) out += (out.empty() ? "" : "\n") + e;
  return out;
}

// One build's working state: the inputs, the snapshot being filled, what the parts hand to each
// other, and every error found so far.
struct SnapshotBuilder::Work {
  const Config& cfg;
  const std::vector<PortRuntime>& rt;
  const DynamicState* dyn;
  Snapshot& s;
  std::vector<std::string> errors;
  std::map<std::string, MacAddr> neigh_by_addr;  // IpAddr::str() -> MAC (static, then learned)
  std::vector<std::pair<ServiceKey, uint32_t>> vip_keys;
  std::vector<std::pair<ServiceKey, NatReverse>> nat_keys;
  std::map<std::string, size_t> nat_owner;  // NAT reply key -> index of the VIP it serves
  std::vector<SnapBackend> backends;        // every VIP's, in build order

  const MacAddr* macOf(const IpAddr& a) const {
    auto it = neigh_by_addr.find(a.str());
    return it == neigh_by_addr.end() ? nullptr : &it->second;
  }
};

bool admissionDisabledForTests() {
  // Read once (at the daemon's start: daemon.cc asks before the first build), never again.
  static const bool off = [] {
    const char* hooks = std::getenv("L4LB_TEST_HOOKS");
    const char* no_adm = std::getenv("L4LB_TEST_NO_ADMISSION");
    return hooks != nullptr && std::string(hooks) == "1" && no_adm != nullptr && std::string(no_adm) == "1";
  }();
  return off;
}

BuildResult SnapshotBuilder::build(const Config& cfg, const std::vector<PortRuntime>& rt,
                                   const DynamicState* dyn) {
  BuildResult r;
  auto s = std::make_unique<Snapshot>();
  s->generation = ++generation_;
  s->timeouts = {cfg.flow_table.tcp_syn_timeout_ms, cfg.flow_table.tcp_established_timeout_ms,
                 cfg.flow_table.tcp_fin_timeout_ms, cfg.flow_table.udp_timeout_ms,
                 cfg.flow_table.udp_new_timeout_ms};
  s->admission = {!admissionDisabledForTests(), cfg.flow_table.embryonic_ppm};
  s->icmp_errors = cfg.icmp.errors;
  s->frag_timeout_ms = cfg.fragments.timeout_ms;
  // [sync] announce_interval: how often workers re-announce an active flow; 0: sync is off.
  s->sync_announce_ms = cfg.sync.enabled ? cfg.sync.announce_interval_ms : 0;
  Work w{cfg, rt, dyn, *s, {}, {}, {}, {}, {}, {}};
  buildNeighbours(w);
  if (rt.size() != cfg.ports.size() || cfg.ports.size() > kMaxPorts) {
    r.errors.push_back("ports: " + std::to_string(cfg.ports.size()) + " configured, at most " +
                       std::to_string(kMaxPorts));
    return r;
  }
  buildPorts(w);
  if (cfg.vips.size() > kMaxVips)
    w.errors.push_back("vips: " + std::to_string(cfg.vips.size()) + " VIPs, at most " + std::to_string(kMaxVips));
  for (size_t vi = 0; vi < cfg.vips.size(); vi++) buildVip(w, vi);
  // Full NAT's source addresses: one list over the VIPs (snat_pools.h).
  SnatPools pools = snatPools(cfg);
  for (auto& e : pools.errors) w.errors.push_back(std::move(e));
  s->snat_addrs = pools.addrs;
  for (size_t vi = 0; vi < s->vips.size() && vi < cfg.vips.size(); vi++) {
    s->vips[vi].snat4 = pools.v4[vi];
    s->vips[vi].snat6 = pools.v6[vi];
    s->vips[vi].proxy_v2 = cfg.vips[vi].proxy_v2;
  }
  buildIndexes(w);
  r.errors = std::move(w.errors);
  if (r.errors.empty()) r.snapshot = std::move(s);
  return r;
}

// Neighbours: static entries, each backend's static MAC, then what the kernel resolved.
void SnapshotBuilder::buildNeighbours(Work& w) {
  std::vector<std::pair<AddrKey, MacAddr>> neigh;
  auto addNeigh = [&](const IpAddr& a, const MacAddr& m) {
    neigh.emplace_back(AddrKey::make(a), m);
    w.neigh_by_addr[a.str()] = m;
  };
  for (const auto& n : w.cfg.neighbours) addNeigh(n.address, n.mac);
  for (const auto& v : w.cfg.vips)
    for (const auto& b : v.backends)
      if (b.mac) addNeigh(b.address, *b.mac);
  if (w.dyn != nullptr)  // learned entries never override static ones
    for (const auto& [a, m] : w.dyn->resolved)
      if (!w.neigh_by_addr.count(a))
        if (auto ip = IpAddr::parse(a)) addNeigh(*ip, m);
  w.s.neighbours = FlatMap<AddrKey, MacAddr>(neigh);
}

// The configured ports with their gateways' MACs, then their kernel sides.
void SnapshotBuilder::buildPorts(Work& w) {
  const Config& cfg = w.cfg;
  Snapshot& s = w.s;
  for (size_t i = 0; i < cfg.ports.size(); i++) {
    const PortConfig& pc = cfg.ports[i];
    SnapPort p;
    p.name = pc.name;
    p.port_id = w.rt[i].port_id;
    p.mtu = pc.mtu;
    p.mac = pc.mac ? *pc.mac : w.rt[i].mac;
    if (pc.ipv4) p.has_v4 = true, p.v4 = *pc.ipv4;
    if (pc.ipv6) p.has_v6 = true, p.v6 = *pc.ipv6;
    auto gw = [&](const std::optional<IpAddr>& g, bool& has, MacAddr& mac, const char* key) {
      if (!g) return;
      if (const MacAddr* m = w.macOf(*g)) {
        has = true;
        mac = *m;
      } else if (resolvesNeighbours(pc)) {
        // Not resolved yet: no route through it until the kernel learns its MAC.
      } else {
        w.errors.push_back("ports[" + std::to_string(i) + "]." + key + ": no MAC known for " + g->str() +
                           " (add a [[neighbours]] entry)");
      }
    };
    gw(pc.gateway4, p.has_gw4, p.gw4_mac, "gateway4");
    gw(pc.gateway6, p.has_gw6, p.gw6_mac, "gateway6");
    if (s.port_index_by_id.size() <= p.port_id) s.port_index_by_id.resize(p.port_id + 1u, -1);
    s.port_index_by_id[p.port_id] = int16_t(i);
    s.ports.push_back(p);
  }
  // Kernel sides (exception_path = tap) come after the configured ports, paired both ways.
  for (size_t i = 0; i < cfg.ports.size(); i++) {
    if (w.rt[i].tap_port_id < 0) continue;
    SnapPort k;
    k.name = cfg.ports[i].name + "-kernel";
    k.port_id = uint16_t(w.rt[i].tap_port_id);
    k.mtu = cfg.ports[i].mtu;
    k.mac = s.ports[i].mac;
    k.is_kernel = true;
    k.kernel_port = int16_t(i);
    s.ports[i].kernel_port = int16_t(s.ports.size());
    if (s.port_index_by_id.size() <= k.port_id) s.port_index_by_id.resize(k.port_id + 1u, -1);
    s.port_index_by_id[k.port_id] = int16_t(s.ports.size());
    s.ports.push_back(k);
  }
  if (s.ports.size() > kMaxPorts)
    w.errors.push_back("ports: " + std::to_string(s.ports.size()) + " ports with their kernel interfaces, at most " +
                       std::to_string(kMaxPorts));
}

// VIP `vi` and its backends: next hops, states, tunnel sources, NAT reply keys, rewrites, then
// the Maglev table and round-robin sequence over the backends in service.
void SnapshotBuilder::buildVip(Work& w, size_t vi) {
  const Config& cfg = w.cfg;
  const VipConfig& vc = cfg.vips[vi];
  const std::string where = "vips[" + std::to_string(vi) + "]";
  SnapVip v;
  v.name = vc.name;
  v.addr = vc.address;
  v.port_be = rte_cpu_to_be_16(vc.port);
  v.proto = vc.protocol;
  v.scheduler = vc.scheduler;
  v.mode = vc.forwarding;
  v.fragments = vc.fragments;
  v.gue_port_be = rte_cpu_to_be_16(vc.gue_port);
  if (vc.new_flow_rate != 0) {
    // Per worker (dataplane/token_bucket.h): an even share of the rate and of the burst (at least one flow).
    const uint64_t workers = std::max<size_t>(cfg.eal.worker_cores.size(), 1);
    const uint64_t burst = vc.new_flow_burst != 0 ? vc.new_flow_burst : vc.new_flow_rate;
    v.new_flow.per_ms = std::max<uint64_t>(uint64_t(vc.new_flow_rate) * (kTokensPerFlow / 1000) / workers, 1);
    v.new_flow.burst = std::max<uint64_t>(burst * kTokensPerFlow / workers, kTokensPerFlow);
    v.new_flow.drop = vc.over_rate_drop;
  }
  const bool tunnel = vc.forwarding == FwdMode::Ipip || vc.forwarding == FwdMode::Gue;
  w.vip_keys.emplace_back(ServiceKey::make(vc.address, v.port_be, uint8_t(vc.protocol)), uint32_t(vi));

  struct Candidate {
    uint32_t id;
    uint64_t key;
    uint32_t weight;
    std::string identity;
  };
  const size_t first_backend = w.backends.size();
  std::vector<Candidate> in_service, fallback;  // fallback: down but not drained (on_all_down = keep)
  for (size_t bi = 0; bi < vc.backends.size(); bi++) {
    const BackendConfig& bc = vc.backends[bi];
    const std::string bwhere = where + ".backends[" + std::to_string(bi) + "]";
    SnapBackend b;
    const std::string identity = backendIdentity(vc, bc);
    b.id = idFor(identity);
    if (b.id > kMaxBackendId) {
      w.errors.push_back(bwhere + ": backend ids exhausted (restart to renumber)");
      continue;
    }
    b.addr = bc.address;
    b.port_be = rte_cpu_to_be_16(bc.port);
    const BackendRuntime* br = nullptr;
    if (w.dyn != nullptr) {
      auto it = w.dyn->backends.find(identity);
      if (it != w.dyn->backends.end()) br = &it->second;
    }
    const uint32_t weight = br && br->weight ? *br->weight : bc.weight;
    b.weight = uint16_t(weight);
    b.vip_index = uint16_t(vi);
    bool down = br && br->down;
    const auto [egress, connected] = egressOf(cfg, bc);
    if (egress < 0) {
      w.errors.push_back(bwhere + ": no port reaches " + bc.address.str() +
                         " (give a port a connected prefix or gateway for it, or set via)");
      continue;
    }
    b.egress = uint16_t(egress);
    const SnapPort& out = w.s.ports[b.egress];
    const bool resolves = resolvesNeighbours(cfg.ports[b.egress]);
    if (bc.mac) {
      b.next_hop_mac = *bc.mac;
    } else if (connected) {
      if (const MacAddr* m = w.macOf(bc.address)) b.next_hop_mac = *m;
      else if (resolves) down = true;  // until ARP/ND answers
      else w.errors.push_back(bwhere + ".mac: no MAC known for " + bc.address.str() +
                              " (set mac, add a [[neighbours]] entry, or give port " + out.name +
                              " an exception_path)");
    } else if (bc.address.isV4() ? out.has_gw4 : out.has_gw6) {
      b.next_hop_mac = bc.address.isV4() ? out.gw4_mac : out.gw6_mac;
    } else {
      down = true;  // its gateway is not resolved yet
    }
    // Unhealthy wins over draining: a backend that cannot answer must lose its flows too.
    b.state = down ? BackendState::Unhealthy
                   : (weight == 0 || (br && br->drained)) ? BackendState::Draining : BackendState::Healthy;
    if (tunnel) {
      // The outer source is per backend: the VIP's tunnel_source4/6 for the backend's family,
      // else the address of the backend's own egress port.
      const auto& src = bc.address.isV4() ? vc.tunnel_source4 : vc.tunnel_source6;
      IpAddr& dst = b.tunnel_src;
      if (src) dst = *src;
      else if (bc.address.isV4() && out.has_v4) dst = out.v4.addr;
      else if (!bc.address.isV4() && out.has_v6) dst = out.v6.addr;
      else w.errors.push_back(where + ": tunnel_source" + (bc.address.isV4() ? "4" : "6") +
                              ": needed for backend " + bc.address.str() + " (port " + out.name +
                              " has no address of that family)");
    }
    if (vc.forwarding == FwdMode::Nat) {
      // Replies are matched statelessly on the backend's (address, source port, protocol),
      // so every worker can reverse them whatever RSS queue they land on; that needs the key
      // to name one VIP.
      uint16_t rport = bc.port ? bc.port : vc.port;
      if (vc.port == 0 && bc.port != 0)
        w.errors.push_back(bwhere + ".port: must be 0 when the VIP's port is 0 (replies could not be mapped back)");
      std::string nk = bc.address.str() + ":" + std::to_string(rport) + "/" + std::string(toString(vc.protocol));
      auto [it, fresh] = w.nat_owner.emplace(nk, vi);
      if (!fresh && it->second != vi)
        w.errors.push_back(bwhere + ": NAT backend " + nk + " already serves vips[" + std::to_string(it->second) +
                           "]; replies could not be told apart");
      w.nat_keys.emplace_back(ServiceKey::make(bc.address, rte_cpu_to_be_16(rport), uint8_t(vc.protocol)),
                              NatReverse{uint32_t(vi), b.id});
    }
    // Everything the rewrite reads is final here: the VIP's addresses and ports, and this
    // backend's next hop, port and tunnel source.
    b.rw = buildRewrite(v, b, out);
    v.backends.push_back(b.id);
    if (b.state == BackendState::Healthy) in_service.push_back({b.id, backendKey(bc), weight, identity});
    else if (b.state == BackendState::Unhealthy && weight > 0 && !(br && br->drained) && b.next_hop_mac != MacAddr{})
      fallback.push_back({b.id, backendKey(bc), weight, identity});
    w.backends.push_back(b);
  }
  // on_all_down = keep: with nothing in service, keep sending to the set that was last in
  // service (those of it still configured and reachable), marked healthy for the workers so
  // their flows stay put. A degraded pool rather than none.
  const std::string vid = vipIdentity(vc);
  // Recorded whatever the policy, so a reload that switches to keep has a set to keep.
  if (!in_service.empty()) {
    std::vector<std::string> ids;
    for (const auto& c : in_service) ids.push_back(c.identity);
    last_in_service_[vid] = ids;
  } else if (vc.on_all_down == AllDownPolicy::Keep) {
    if (auto it = last_in_service_.find(vid); it != last_in_service_.end()) {
      for (const auto& c : fallback)
        if (std::find(it->second.begin(), it->second.end(), c.identity) != it->second.end()) {
          in_service.push_back(c);
          for (size_t i = first_backend; i < w.backends.size(); i++)
            if (w.backends[i].id == c.id) w.backends[i].state = BackendState::Healthy;
        }
    }
  }
  std::vector<MaglevEndpoint> eps;
  std::vector<std::pair<uint32_t, uint32_t>> rr;
  for (const auto& c : in_service) {
    eps.push_back({c.id, c.key, c.weight});
    rr.emplace_back(c.id, vc.scheduler == Scheduler::WeightedRoundRobin ? c.weight : 1);
  }
  v.maglev = buildMaglevTable(eps, vc.maglev_table_size);
  v.rr = buildWrrSequence(rr);
  w.s.vips.push_back(std::move(v));
}

// The lookup tables over what the parts built: backends by id, VIPs by key and by address, NAT
// replies by backend key.
void SnapshotBuilder::buildIndexes(Work& w) {
  Snapshot& s = w.s;
  uint32_t max_id = 0;
  for (const auto& b : w.backends) max_id = std::max(max_id, b.id);
  s.backends.resize(size_t(max_id) + 1);
  for (const auto& b : w.backends) s.backends[b.id] = b;
  s.vip_by_key = FlatMap<ServiceKey, uint32_t>(w.vip_keys);
  std::vector<std::pair<AddrKey, uint32_t>> vip_addrs;
  std::set<std::string> seen_addr;
  for (size_t vi = 0; vi < s.vips.size(); vi++)
    if (seen_addr.insert(s.vips[vi].addr.str()).second)
      vip_addrs.emplace_back(AddrKey::make(s.vips[vi].addr), uint32_t(vi));
  // Full NAT's source addresses are the balancer's as VIPs are: ARP, ND and echo answered, and
  // nothing else to them goes to the kernel.
  std::vector<std::pair<AddrKey, uint32_t>> snat_by_addr;
  for (size_t i = 0; i < s.snat_addrs.size(); i++) {
    snat_by_addr.emplace_back(AddrKey::make(s.snat_addrs[i].addr), uint32_t(i));
    if (seen_addr.insert(s.snat_addrs[i].addr.str()).second)
      vip_addrs.emplace_back(AddrKey::make(s.snat_addrs[i].addr), uint32_t(0));
  }
  s.snat_by_addr = FlatMap<AddrKey, uint32_t>(snat_by_addr);
  s.vip_addrs = FlatMap<AddrKey, uint32_t>(vip_addrs);
  std::vector<std::pair<AddrKey, uint32_t>> frag_addrs;
  std::set<std::string> seen_frag;
  for (size_t vi = 0; vi < s.vips.size(); vi++)
    if (s.vips[vi].fragments == FragPolicy::Track && seen_frag.insert(s.vips[vi].addr.str()).second)
      frag_addrs.emplace_back(AddrKey::make(s.vips[vi].addr), uint32_t(vi));
  s.frag_track_addrs = FlatMap<AddrKey, uint32_t>(frag_addrs);
  s.nat_reverse = FlatMap<ServiceKey, NatReverse>(w.nat_keys);
}

std::vector<std::pair<IpAddr, std::string>> SnapshotBuilder::neighboursToResolve(const Config& cfg) {
  std::vector<std::pair<IpAddr, std::string>> out;
  std::map<std::string, bool> seen;
  std::map<std::string, bool> static_macs;
  for (const auto& n : cfg.neighbours) static_macs[n.address.str()] = true;
  auto add = [&](const IpAddr& a, const PortConfig& p) {
    if (!resolvesNeighbours(p) || static_macs.count(a.str())) return;
    if (seen.emplace(a.str() + "%" + p.kernel_iface, true).second) out.emplace_back(a, p.kernel_iface);
  };
  for (const auto& p : cfg.ports) {
    if (p.gateway4) add(*p.gateway4, p);
    if (p.gateway6) add(*p.gateway6, p);
  }
  for (const auto& v : cfg.vips)
    for (const auto& b : v.backends) {
      if (b.mac) continue;
      // Behind a gateway, the gateway is resolved instead.
      if (const auto [port, connected] = egressOf(cfg, b); port >= 0 && connected) add(b.address, cfg.ports[size_t(port)]);
    }
  return out;
}

}  // namespace l4lb::control
