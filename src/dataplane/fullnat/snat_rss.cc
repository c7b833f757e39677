#include "dataplane/fullnat/snat_rss.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_thash.h>

#include "dataplane/parser.h"

namespace l4lb::dataplane {

namespace {

// rte_softrss wants the tuple in CPU order, 32-bit word by word (rte_thash.h), as
// control/sync/sync_owner.cc builds it for the client's packets.
uint32_t softrss(const uint8_t* key, bool v6, const uint8_t* src, const uint8_t* dst, uint16_t sport, uint16_t dport) {
  union rte_thash_tuple t;
  std::memset(&t, 0, sizeof(t));
  if (!v6) {
    uint32_t s, d;
    std::memcpy(&s, src, 4);
    std::memcpy(&d, dst, 4);
    t.v4.src_addr = rte_be_to_cpu_32(s);
    t.v4.dst_addr = rte_be_to_cpu_32(d);
    t.v4.sport = sport;
    t.v4.dport = dport;
    return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, key);
  }
  for (int i = 0; i < 4; i++) {
    uint32_t s, d;
    std::memcpy(&s, src + 4 * i, 4);
    std::memcpy(&d, dst + 4 * i, 4);
    s = rte_be_to_cpu_32(s);
    d = rte_be_to_cpu_32(d);
    std::memcpy(t.v6.src_addr + 4 * i, &s, 4);
    std::memcpy(t.v6.dst_addr + 4 * i, &d, 4);
  }
  t.v6.sport = sport;
  t.v6.dport = dport;
  return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V6_L4_LEN, key);
}

constexpr uint8_t kZero[16] = {};

}  // namespace

bool rssHashesPorts(uint64_t hash_types, bool v6, uint8_t proto) {
  const bool tcp = proto == kProtoTcp;
  const uint64_t l4 = v6 ? (tcp ? RTE_ETH_RSS_NONFRAG_IPV6_TCP : RTE_ETH_RSS_NONFRAG_IPV6_UDP)
                         : (tcp ? RTE_ETH_RSS_NONFRAG_IPV4_TCP : RTE_ETH_RSS_NONFRAG_IPV4_UDP);
  return (proto == kProtoTcp || proto == kProtoUdp) && (hash_types & l4) != 0;
}

uint32_t rssPortTerm(const uint8_t* key, bool v6, uint16_t port) { return softrss(key, v6, kZero, kZero, 0, port); }

uint32_t rssFixedTerm(const uint8_t* key, bool v6, const uint8_t* backend, uint16_t backend_port_be, const uint8_t* snat) {
  return softrss(key, v6, backend, snat, rte_be_to_cpu_16(backend_port_be), 0);
}

}  // namespace l4lb::dataplane
