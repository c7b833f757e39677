// The fragment path (FragTable, frag_table.h): fragments of a VIP's flows, scheduled by their
// first fragment and forwarded after it, handed between workers on the hand-off rings, held
// until their first arrives. Out of line and cold: processBurst reaches it only for fragments.
#include "dataplane/frag_path.h"

#include <cstring>

#include <rte_ring.h>

#include "dataplane/frag_table.h"
#include "dataplane/fullnat/fullnat_handoff.h"
#include "dataplane/lookup.h"
#include "dataplane/parser.h"
#include "dataplane/pipeline.h"
#include "dataplane/slow_path.h"

namespace l4lb::dataplane {

namespace {

// A later fragment (or one released from hold) sent where its first fragment went.
[[gnu::cold]] void sendFragment(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi,
                                const FragDecision& d, uint16_t ingress, TxBatch& tx, bool released) {
  if (d.drop) {
    dropPkt(w, m, Drop::Fragment);
    return;
  }
  const SnapBackend* b = s.backend(d.backend);
  // A reload between the first fragment and this one may have taken the backend away.
  if (d.vip_index >= s.vips.size() || !usableForExisting(b, d.vip_index)) {
    dropPkt(w, m, Drop::NoBackend);
    return;
  }
  const SnapVip& vip = s.vips[d.vip_index];
  // The decision's VIP must still be this fragment's destination: a reload may have given its
  // index (and a backend id) to another VIP, whose NAT checksum difference is for another address.
  if (vip.addr.isV4() != (pi.family == Family::V4) ||
      std::memcmp(vip.addr.bytes.data(), rte_pktmbuf_mtod(m, const uint8_t*) + pi.daddr_off,
                  pi.family == Family::V4 ? 4 : 16) != 0) {
    dropPkt(w, m, Drop::NoBackend);
    return;
  }
  PktCtx c;
  c.pi = pi;
  c.vip = &vip;
  c.slot_hash = d.slot_hash;
  // A later fragment has no L4 header: NAT rewrites its IP header only.
  const FwdResult r = forwardByMode(w, s, c, *b, m, ingress, [&] { return forwardNatLaterFragment(m, pi, *b, s, ingress); });
  if (r.outcome == FwdOutcome::Sent) {
    w.counters.add(Ctr::FragForwarded);
    if (released && !emitBounded(w, tx, m, r.egress)) return;
    if (d.backend < kMaxCountedBackends) {
      w.backend_ctrs[d.backend].packets++;
      w.backend_ctrs[d.backend].bytes += rte_pktmbuf_pkt_len(m);
    }
    if (!released) emit(tx, m, r.egress);
    return;
  }
  finishForward(w, m, r, d.backend, tx, w.backend_ctrs.get());
}

}  // namespace

// A fragment to a VIP: the first is scheduled as its 5-tuple (scheduleFlow, the unfragmented
// path) and its decision recorded; later ones follow the decision, or are held until it exists.
// Fragments that are not TCP/UDP to a VIP keep the unparsed path (kernel or counted drop).
//
// Across workers: RSS may put the fragments of one datagram on different queues (NICs often
// hash fragments by addresses only and whole packets by the 4-tuple), so each fragment is
// handled by one owner worker, fragOwner(source, destination), handed over on the owner's ring
// (`from_ring`: it came that way). The owner schedules a first fragment with its *own* flow
// table, which stays single-writer: when the 5-tuple's unfragmented packets are served by
// another worker, the two tables hold separate entries for the flow. They agree through the
// stateless choice (Maglev / source hash are a pure function of the snapshot and the 5-tuple,
// decide.h); they can differ only where that choice is not stateless: round-robin schedulers,
// or an entry kept across a backend change (draining) on one worker and not the other.
void handleFragment(WorkerState& w, const Snapshot& s, rte_mbuf* m, const PacketInfo& pi, uint16_t ingress,
                    uint32_t now_ms, TxBatch& tx, bool from_ring) {
  if (pi.frag_proto != kProtoTcp && pi.frag_proto != kProtoUdp && pi.proto != kProtoTcp && pi.proto != kProtoUdp) {
    handleUnparsed(w, s, m, Drop::Fragment, ingress, tx);
    return;
  }
  FragTable& ft = *w.frags;
  const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* saddr = data + pi.saddr_off;
  const uint8_t* daddr = data + pi.daddr_off;
  if (!from_ring && w.handoff_rings.size() > 1) {
    const uint32_t owner = fragOwner(saddr, daddr, pi.family, uint32_t(w.handoff_rings.size()));
    if (owner != w.index) {
      m->hash.usr = ingress;  // the RSS hash is not needed any more; the owner needs the port
      if (rte_ring_mp_enqueue(w.handoff_rings[owner], m) != 0) {
        dropPkt(w, m, Drop::FragRingFull);
        return;
      }
      w.counters.add(Ctr::FragHandedOff);
      return;
    }
  }
  const FragKey key = makeFragKey(saddr, daddr, pi.family, pi.frag_id, pi.frag_proto);
  auto dropAs = [&w](Drop why) { return [&w, why](void* p) { dropPkt(w, static_cast<rte_mbuf*>(p), why); }; };
  if (pi.frag == FragKind::First) {
    uint32_t vip_index = 0;
    const SnapVip* vip = (pi.proto == kProtoTcp || pi.proto == kProtoUdp)
                             ? findVip(s, daddr, pi.family, pi.dport_be, pi.proto, vip_index)
                             : nullptr;
    if (vip == nullptr) {
      handleUnparsed(w, s, m, Drop::Fragment, ingress, tx);
      return;
    }
    w.counters.add(Ctr::FragFirst);
    FragDecision d{vip_index, kNoBackend, 0, true};
    bool ok = false;  // scheduled; when not, scheduleFlow dropped (and freed) the first fragment
    uint32_t bid = kNoBackend, hits = 0;
    PktCtx c;
    c.pi = pi;
    c.vip = vip;
    c.vip_index = vip_index;
    c.path = PktCtx::Path::Flow;
    if (vip->fragments == FragPolicy::Track) {
      // Keyed as the unfragmented packets of its 5-tuple.
      FlowKey4 k4;
      FlowKey6 k6;
      c.v6 = pi.family == Family::V6;
      if (c.v6) {
        makePktFlowKey(k6, saddr, daddr, c);
        c.key = &k6;
      } else {
        makePktFlowKey(k4, saddr, daddr, c);
        c.key = &k4;
      }
      d.slot_hash = c.slot_hash;
      bid = scheduleFlow(w, s, c, m, now_ms, hits);
      w.counters.add(Ctr::FlowHit, hits);
      ok = bid != kDropped;
      d.backend = ok ? bid : kNoBackend;
      d.drop = !ok;
    }
    // The held ones leave first: they arrived before this one.
    auto release = [&](void* p) {
      auto* h = static_cast<rte_mbuf*>(p);
      PacketInfo hpi;
      // Parsed before it was held; the bytes have not changed since.
      if (parsePacket(rte_pktmbuf_mtod(h, const uint8_t*), rte_pktmbuf_data_len(h), hpi, h->ol_flags).verdict != Parse::Fragment) {
        dropPkt(w, h, Drop::Fragment);
        return;
      }
      sendFragment(w, s, h, hpi, d, ingress, tx, true);
    };
    if (!ft.record(key, d, now_ms, s.frag_timeout_ms, release, dropAs(Drop::FragEvicted)))
      w.counters.add(Ctr::FragUntracked);
    if (vip->fragments == FragPolicy::Drop) {
      dropPkt(w, m, Drop::Fragment);
      return;
    }
    if (!ok) return;  // dropped by scheduleFlow, with its reason
    const FwdResult r = forwardTo(w, s, c, s.backends[bid], m, ingress);
    if (r.outcome == FwdOutcome::Sent) w.counters.add(Ctr::FragForwarded);
    finishForward(w, m, r, bid, tx, w.backend_ctrs.get());
    return;
  }
  if (const FragDecision* d = ft.lookup(key, now_ms)) {
    w.counters.add(Ctr::FragTracked);
    const FragDecision copy = *d;
    sendFragment(w, s, m, pi, copy, ingress, tx, false);
    return;
  }
  // No first fragment yet: held only when it is for a VIP address (the port is in the first)
  // where some VIP tracks fragments; to an address whose VIPs all drop them, dropped now.
  if (!isVipAddr(s, daddr, pi.family)) {
    handleUnparsed(w, s, m, Drop::Fragment, ingress, tx);
    return;
  }
  {
    AddrKey k;
    std::memcpy(k.addr.data(), daddr, pi.family == Family::V4 ? 4 : 16);
    k.family = uint32_t(pi.family);
    if (s.frag_track_addrs.find(k) == nullptr) {
      dropPkt(w, m, Drop::Fragment);
      return;
    }
  }
  switch (ft.hold(key, m, now_ms, s.frag_timeout_ms, dropAs(Drop::FragEvicted))) {
    case FragHold::Held: w.counters.add(Ctr::FragHeld); return;
    case FragHold::TableFull: dropPkt(w, m, Drop::FragTableFull); return;
    case FragHold::HeldFull: dropPkt(w, m, Drop::FragHeldFull); return;
    case FragHold::DatagramFull: dropPkt(w, m, Drop::FragDatagramFull); return;
    case FragHold::Decided: break;  // not reached: lookup() found no decision
  }
  dropPkt(w, m, Drop::Fragment);
}

uint16_t drainHandOffRing(WorkerState& w, const Snapshot& s, uint32_t now_ms, TxBatch& tx) {
  if (w.index >= w.handoff_rings.size()) return 0;  // one worker: no rings
  rte_mbuf* pkts[kBurst];
  const unsigned n = rte_ring_sc_dequeue_burst(w.handoff_rings[w.index], reinterpret_cast<void**>(pkts), kBurst, nullptr);
  for (unsigned i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (m->hash.usr & kHandOffFullNat) {
      takeHandedOffReply(w, s, m, now_ms, tx);
      continue;
    }
    const uint16_t ingress = uint16_t(m->hash.usr);
    PacketInfo pi;
    // Parsed by the worker that received it; parsed again here (the ring carries only the mbuf).
    if (ingress >= s.ports.size() ||
        parsePacket(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), pi, m->ol_flags).verdict != Parse::Fragment) {
      dropPkt(w, m, Drop::Fragment);
      continue;
    }
    handleFragment(w, s, m, pi, ingress, now_ms, tx, true);
  }
  return uint16_t(n);
}

uint32_t sweepFrags(WorkerState& w, uint32_t now_ms) {
  if (!w.frags) return 0;
  // 32 ways per loop: a 4096-entry table is walked in 128 loops (well under a millisecond when
  // busy), and no loop spends more than a few hundred nanoseconds here.
  return w.frags->sweep(now_ms, 32, [&w](void* p) { dropPkt(w, static_cast<rte_mbuf*>(p), Drop::FragTimeout); });
}

}  // namespace l4lb::dataplane
