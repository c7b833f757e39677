#include "dataplane/outer_frag.h"

#include <cerrno>
#include <cstring>

#include <rte_ip.h>
#include <rte_ip_frag.h>

#include "dataplane/pipeline.h"
#include "dataplane/worker.h"
#include "l4lb/net.h"

namespace l4lb::dataplane {

OuterFragResult fragmentOuter(rte_mbuf* m, uint16_t mtu, const OuterFragPools& pools, rte_mbuf** out,
                              uint16_t max_out) {
  constexpr uint16_t kEth = net::kEthHdrLen;
  if (pools.direct == nullptr || pools.indirect == nullptr) return {Drop::FragOutNomem, 0};
  if (rte_pktmbuf_data_len(m) < kEth + net::kIpv4HdrLen) return {Drop::TooBig, 0};
  uint8_t eth[kEth];
  std::memcpy(eth, rte_pktmbuf_mtod(m, const uint8_t*), kEth);
  // rte_ipv4_fragment_packet wants the packet to start at the IP header.
  rte_pktmbuf_adj(m, kEth);
  const int32_t n = rte_ipv4_fragment_packet(m, out, max_out, mtu, pools.direct, pools.indirect);
  if (n <= 0) {
    rte_pktmbuf_prepend(m, kEth);  // give the frame back as it came
    return {n == -ENOMEM ? Drop::FragOutNomem : Drop::TooBig, 0};
  }
  for (int32_t i = 0; i < n; i++) {
    rte_mbuf* f = out[i];
    // The direct mbuf (the headers) starts at its pool's full headroom: room for Ethernet.
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(f, kEth));
    std::memcpy(p, eth, kEth);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + kEth);
    ip->hdr_checksum = 0;  // librte_ip_frag leaves it to the caller
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    f->l2_len = kEth;
  }
  rte_pktmbuf_free(m);  // the fragments keep its data alive (indirect references)
  return {Drop::Ok, uint16_t(n)};
}

// The worker's emitter (pipeline.h): a tunnelled packet encapsulated whole but longer than the
// egress MTU (FwdOutcome::Fragment), fragmented on the outer header and its fragments queued to
// the same egress. They count against the TX batch like fragments released from hold (emitBounded): at most up
// to kTxBatchCap - kBurst, so the burst's own packets always fit; past that, all of them are
// one tx_full drop. Out of line and cold: reached from finishForward's drop branch only.
void emitOuterFragments(WorkerState& w, rte_mbuf* m, uint16_t egress, uint16_t frag_mtu, uint32_t bid, TxBatch& tx) {
  const uint32_t need = outerFragCount(rte_pktmbuf_pkt_len(m) - kEthLen, frag_mtu);
  if (need == 0 || need > kMaxOuterFrags) {
    dropPkt(w, m, Drop::TooBig);
    return;
  }
  if (uint32_t(tx.n[egress]) + need > uint32_t(kTxBatchCap - kBurst)) {
    dropPkt(w, m, Drop::TxFull);
    return;
  }
  rte_mbuf* out[kMaxOuterFrags];
  const OuterFragResult f = fragmentOuter(m, frag_mtu, w.outer_frag, out, kMaxOuterFrags);
  if (f.drop != Drop::Ok) {
    dropPkt(w, m, f.drop);
    return;
  }
  w.counters.add(Ctr::TunnelFragmented);
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < f.n; i++) {
    bytes += rte_pktmbuf_pkt_len(out[i]);
    emit(tx, out[i], egress);
  }
  if (bid < kMaxCountedBackends && bid != kNoBackend) {
    w.backend_ctrs[bid].packets += f.n;
    w.backend_ctrs[bid].bytes += bytes;
  }
}

}  // namespace l4lb::dataplane
