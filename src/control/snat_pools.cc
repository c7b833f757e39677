#include "control/snat_pools.h"

#include <algorithm>
#include <map>

#include "l4lb/limits.h"

namespace l4lb::control {

SnatPools snatPools(const Config& cfg) {
  SnatPools p;
  std::map<std::string, uint32_t> index;
  std::map<std::string, std::string> taken;  // VIP and backend addresses -> where
  for (size_t vi = 0; vi < cfg.vips.size(); vi++) {
    const VipConfig& v = cfg.vips[vi];
    taken.emplace(v.address.str(), "the address of vips[" + std::to_string(vi) + "]");
    for (size_t bi = 0; bi < v.backends.size(); bi++)
      taken.emplace(v.backends[bi].address.str(),
                    "a backend of vips[" + std::to_string(vi) + "] (backends[" + std::to_string(bi) + "])");
  }
  p.v4.resize(cfg.vips.size());
  p.v6.resize(cfg.vips.size());
  for (size_t vi = 0; vi < cfg.vips.size(); vi++) {
    const VipConfig& v = cfg.vips[vi];
    if (v.forwarding != FwdMode::FullNat) continue;
    const std::string where = "vips[" + std::to_string(vi) + "].snat_addresses: ";
    for (const IpAddr& a : v.snat_addresses) {
      const SnapSnatAddr want{a, v.snat_port_lo, v.snat_port_hi, v.snat_quiet_ms};
      if (auto t = taken.find(a.str()); t != taken.end())
        p.errors.push_back(where + a.str() + " is " + t->second + ": a source address must be the balancer's alone");
      auto [it, fresh] = index.emplace(a.str(), uint32_t(p.addrs.size()));
      if (fresh) {
        p.addrs.push_back(want);
      } else if (!(p.addrs[it->second] == want)) {
        p.errors.push_back(where + a.str() + " is listed by another fullnat VIP with other snat_ports or "
                                   "snat_quiet_time: one address has one range");
        continue;
      }
      (a.isV4() ? p.v4 : p.v6)[vi].push_back(it->second);
    }
  }
  if (p.addrs.size() > kMaxSnatAddrs)
    p.errors.push_back("vips: " + std::to_string(p.addrs.size()) + " distinct snat_addresses, at most " +
                       std::to_string(kMaxSnatAddrs));
  return p;
}

namespace {

bool steerable(const sync::PortRss& p) {
  const size_t n = p.reta.size();
  return p.rx_queues > 1 && p.rss && p.key.size() >= 40 && n > 1 && n <= dataplane::kMaxSnatBuckets && (n & (n - 1)) == 0;
}

}  // namespace

dataplane::SnatRss snatRss(const std::vector<sync::PortRss>& ports, unsigned worker, unsigned workers) {
  dataplane::SnatRss r;
  r.ports.resize(ports.size());
  if (workers <= 1) return r;
  for (const sync::PortRss& p : ports) {
    if (!steerable(p)) continue;
    if (r.key.empty()) r.key = p.key;
    if (p.key == r.key) r.buckets = std::max<uint32_t>(r.buckets, uint32_t(p.reta.size()));
  }
  if (r.key.empty()) return r;
  for (size_t i = 0; i < ports.size(); i++) {
    const sync::PortRss& p = ports[i];
    if (!steerable(p) || p.key != r.key) continue;
    r.ports[i].hash_types = p.hash_types;
    for (uint32_t b = 0; b < r.buckets; b++)
      if (p.reta[b % p.reta.size()] % workers == worker) r.ports[i].mine.push_back(uint16_t(b));
  }
  return r;
}

}  // namespace l4lb::control
