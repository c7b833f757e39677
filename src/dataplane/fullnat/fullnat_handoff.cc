#include "dataplane/fullnat/fullnat_handoff.h"

#include <rte_ring.h>

#include "dataplane/fullnat/fullnat_path.h"
#include "dataplane/parser.h"
#include "dataplane/pipeline.h"

namespace l4lb::dataplane {

FwdResult handOffReply(WorkerState& w, const PktCtx& c, rte_mbuf* m, uint16_t owner) {
  if (unlikely(owner >= w.handoff_rings.size())) return FwdResult::dropped(Drop::FullNatRingFull);  // no rings
  m->hash.usr = kHandOffFullNat | c.vip_index;  // the RSS hash is not needed any more
  if (rte_ring_mp_enqueue(w.handoff_rings[owner], m) != 0) return FwdResult::dropped(Drop::FullNatRingFull);
  w.counters.add(Ctr::FullNatHandedOff);
  return FwdResult::handedOff();
}

void takeHandedOffReply(WorkerState& w, const Snapshot& s, rte_mbuf* m, uint32_t now_ms, TxBatch& tx) {
  PktCtx c{};
  // Parsed by the worker that received it (a TCP/UDP packet to a source pair); parsed again
  // here, as the ring carries only the mbuf.
  if (parsePacket(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), c.pi, m->ol_flags).verdict != Parse::Ok ||
      (c.pi.proto != kProtoTcp && c.pi.proto != kProtoUdp)) {
    dropPkt(w, m, Drop::FullNatNoSession);
    return;
  }
  c.vip_index = m->hash.usr & 0xffff;
  c.path = PktCtx::Path::FullNatReply;
  c.v6 = c.pi.family == Family::V6;
  const FwdResult r = fullNatReverse(w, s, c, m, now_ms);
  finishForward(w, m, r, kNoBackend, tx, w.backend_ctrs.get());
}

}  // namespace l4lb::dataplane
