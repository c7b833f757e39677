#include "baseline_5tswap.h"

#include <cstring>
#include <utility>

#include <rte_prefetch.h>

namespace l4lb::perf {

namespace {

template <size_t N>
inline void swapBytes(uint8_t* a, uint8_t* b) {
  uint8_t t[N];
  std::memcpy(t, a, N);
  std::memcpy(a, b, N);
  std::memcpy(b, t, N);
}

inline uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

}  // namespace

void swap5Tuple(rte_mbuf** pkts, uint16_t n, rte_mbuf** out) {
  for (uint16_t i = 0; i < n; i++) {
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));  // as testpmd: one ahead
    rte_mbuf* m = pkts[i];
    out[i] = m;
    uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
    swapBytes<6>(p, p + 6);
    uint16_t type = be16(p + 12);
    p += 14;
    m->l2_len = 14;  // testpmd records the header lengths for TX offloads: same stores here
    while (type == 0x8100 || type == 0x88a8) {
      type = be16(p + 2);
      p += 4;
      m->l2_len += 4;
    }
    uint8_t proto;
    if (type == 0x0800) {
      swapBytes<4>(p + 12, p + 16);
      proto = p[9];
      m->l3_len = (p[0] & 0x0f) * 4;
    } else if (type == 0x86dd) {
      swapBytes<16>(p + 8, p + 24);
      proto = p[6];
      m->l3_len = 40;
    } else {
      continue;
    }
    p += m->l3_len;
    if (proto == 17) {
      swapBytes<2>(p, p + 2);
      m->l4_len = 8;
    } else if (proto == 6) {
      swapBytes<2>(p, p + 2);
      m->l4_len = (p[12] & 0xf0) >> 2;
    }
  }
}

}  // namespace l4lb::perf
