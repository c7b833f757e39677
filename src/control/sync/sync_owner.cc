#include "control/sync/sync_owner.h"

#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_thash.h>

#include <cstring>
#include <optional>

namespace l4lb::control::sync {

FlowOwner::FlowOwner(unsigned workers, std::vector<PortRss> ports)
    : workers_(workers == 0 ? 1 : workers),
      all_(workers_ >= 64 ? ~uint64_t{0} : (uint64_t{1} << workers_) - 1),
      ports_(std::move(ports)) {}

std::optional<uint32_t> FlowOwner::rssHash(const PortRss& p, const SyncFlow& f) {
  const bool tcp = f.proto == IPPROTO_TCP;
  const uint64_t l4 = f.v6 ? (tcp ? RTE_ETH_RSS_NONFRAG_IPV6_TCP : RTE_ETH_RSS_NONFRAG_IPV6_UDP)
                           : (tcp ? RTE_ETH_RSS_NONFRAG_IPV4_TCP : RTE_ETH_RSS_NONFRAG_IPV4_UDP);
  const uint64_t l3 = f.v6 ? (RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER | RTE_ETH_RSS_FRAG_IPV6)
                           : (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER | RTE_ETH_RSS_FRAG_IPV4);
  const bool withPorts = (p.hash_types & l4) != 0;
  if (!withPorts && (p.hash_types & l3) == 0) return std::nullopt;
  if (p.key.size() < 40) return std::nullopt;
  // rte_softrss wants the tuple in CPU order, 32-bit word by word (rte_thash.h).
  union rte_thash_tuple t;
  std::memset(&t, 0, sizeof(t));
  uint32_t len;
  if (!f.v6) {
    uint32_t s, d;
    std::memcpy(&s, f.src, 4);
    std::memcpy(&d, f.dst, 4);
    t.v4.src_addr = rte_be_to_cpu_32(s);
    t.v4.dst_addr = rte_be_to_cpu_32(d);
    t.v4.sport = rte_be_to_cpu_16(f.sport_be);
    t.v4.dport = rte_be_to_cpu_16(f.dport_be);
    len = withPorts ? RTE_THASH_V4_L4_LEN : RTE_THASH_V4_L3_LEN;
  } else {
    for (int i = 0; i < 4; i++) {
      uint32_t s, d;
      std::memcpy(&s, f.src + 4 * i, 4);
      std::memcpy(&d, f.dst + 4 * i, 4);
      s = rte_be_to_cpu_32(s);
      d = rte_be_to_cpu_32(d);
      std::memcpy(t.v6.src_addr + 4 * i, &s, 4);
      std::memcpy(t.v6.dst_addr + 4 * i, &d, 4);
    }
    t.v6.sport = rte_be_to_cpu_16(f.sport_be);
    t.v6.dport = rte_be_to_cpu_16(f.dport_be);
    len = withPorts ? RTE_THASH_V6_L4_LEN : RTE_THASH_V6_L3_LEN;
  }
  return rte_softrss(reinterpret_cast<uint32_t*>(&t), len, p.key.data());
}

PortRss queryPortRss(uint16_t port_id, uint16_t rx_queues) {
  PortRss p;
  p.rx_queues = rx_queues;
  if (rx_queues <= 1) return p;
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port_id, &info) != 0 || info.reta_size == 0 || info.hash_key_size < 40) return p;
  p.key.assign(info.hash_key_size, 0);
  rte_eth_rss_conf conf{};
  conf.rss_key = p.key.data();
  conf.rss_key_len = info.hash_key_size;
  if (rte_eth_dev_rss_hash_conf_get(port_id, &conf) != 0 || conf.rss_hf == 0) return p;
  p.hash_types = conf.rss_hf;
  std::vector<rte_eth_rss_reta_entry64> reta((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
  for (auto& e : reta) e.mask = ~uint64_t{0};
  if (rte_eth_dev_rss_reta_query(port_id, reta.data(), info.reta_size) != 0) return p;
  p.reta.resize(info.reta_size);
  for (uint16_t i = 0; i < info.reta_size; i++)
    p.reta[i] = reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  p.rss = true;
  return p;
}

uint64_t FlowOwner::owners(const SyncFlow& f) const {
  if (workers_ == 1) return 1;
  uint64_t mask = 0;
  for (const PortRss& p : ports_) {
    uint16_t queue = 0;
    if (p.rx_queues > 1) {
      if (!p.rss || p.reta.empty()) return all_;
      if (auto h = rssHash(p, f)) queue = p.reta[*h % p.reta.size()];
    }
    mask |= uint64_t{1} << (queue % workers_);
  }
  return mask == 0 ? all_ : mask;
}

}  // namespace l4lb::control::sync
