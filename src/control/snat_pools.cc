#include "control/snat_pools.h"

#include <map>

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
  return p;
}

}  // namespace l4lb::control
