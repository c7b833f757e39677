#include "dataplane/sync_rings.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/lookup.h"
#include "dataplane/parser.h"

namespace l4lb::dataplane {

namespace {

constexpr uint32_t kMaxSyncRingSize = 1u << 24;

rte_ring* makeRing(const char* what, uint16_t worker, uint32_t size, std::string& err) {
  // Ring names are global to the process (memzones); tests make many workers with one index.
  static std::atomic<uint32_t> seq{0};
  const std::string name = std::string(what) + std::to_string(worker) + "_" + std::to_string(seq++);
  const int socket = rte_socket_id() == unsigned(SOCKET_ID_ANY) ? SOCKET_ID_ANY : int(rte_socket_id());
  rte_ring* r = rte_ring_create_elem(name.c_str(), sizeof(SyncFlow), size, socket,
                                     RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
  if (r == nullptr)
    err = "worker " + std::to_string(worker) + ": sync ring " + name + " (" + std::to_string(size) +
          " records): " + rte_strerror(rte_errno);
  return r;
}

// A peer entry's last-seen time: the record's idle time ago, and at least min(kFlowRefreshMs,
// timeout) ago so the first local hit rewrites the entry (sync_rings.h) without making it
// expired on arrival. False when the record's flow is already idle past its timeout.
bool peerLastSeen(const SyncFlow& r, FlowState st, const FlowTimeouts& t, uint32_t now_ms, uint32_t& out) {
  const uint32_t timeout = timeoutMs(st, t);
  if (r.idle_ms > timeout) return false;
  out = now_ms - std::max(r.idle_ms, std::min(kFlowRefreshMs, timeout));
  return true;
}

// The local id of the record's backend among VIP `vip`'s, or kNoBackend.
uint32_t localBackend(const Snapshot& s, const SnapVip& vip, const SyncFlow& r) {
  const Family f = r.backend_v6 ? Family::V6 : Family::V4;
  const size_t len = r.backend_v6 ? 16 : 4;
  // Linear in the VIP's backends: a record costs what a Maglev table build costs per backend, and
  // a loop takes at most kSyncDrainBurst records.
  for (uint32_t id : vip.backends) {
    const SnapBackend* b = s.backend(id);
    if (b != nullptr && b->addr.family == f && b->port_be == r.backend_port_be &&
        std::memcmp(b->addr.bytes.data(), r.backend, len) == 0)
      return id;
  }
  return kNoBackend;
}

void countEnd(WorkerState& w, uint32_t bid) {
  if (bid < kMaxCountedBackends && bid != kNoBackend) w.backend_ctrs[bid].flows_ended++;
}
void countNew(WorkerState& w, uint32_t bid) {
  if (bid < kMaxCountedBackends && bid != kNoBackend) w.backend_ctrs[bid].flows_new++;
}

// Stores `v` by the admission rules; counts a displaced victim as handleMiss does.
bool storePeer(WorkerState& w, const Snapshot& s, FlowTable& ft, const void* key, hash_sig_t idx, const FlowValue& v,
               uint32_t now_ms) {
  const AdmitParams ap{s.admission.enabled, s.admission.embryonicLimit(ft.capacity()), now_ms, &s.timeouts};
  FlowValue victim;
  const StoreResult sr = ft.store(key, idx, v.pack() | kFlowPeerBit, ap, victim);
  if (sr == StoreResult::TableFull || sr == StoreResult::EmbryonicFull) return false;
  if (sr == StoreResult::Displaced) {
    w.counters.add(isExpired(victim, now_ms, s.timeouts) ? Ctr::FlowExpired : Ctr::FlowEmbryonicDisplaced);
    countEnd(w, victim.backend_id);
  }
  return true;
}

template <typename Key>
SyncApply applyKeyed(WorkerState& w, const Snapshot& s, const SyncFlow& r, uint32_t now_ms, FlowTable& ft,
                     const FlowValue& v) {
  Key k;
  hash_sig_t idx;
  makeFlowKey(k, r.src, r.dst, r.sport_be, r.dport_be, r.proto, &idx);
  uint64_t raw;
  uint32_t old_backend = kNoBackend;  // an expired entry's, ended by the insert
  if (ft.lookupFamily<std::is_same_v<Key, FlowKey6>>(&k, idx, raw)) {
    const FlowValue e = FlowValue::unpack(raw);
    if (!isExpired(e, now_ms, s.timeouts)) {
      if ((raw & kFlowPeerBit) == 0) return SyncApply::KeptLocal;
      // Newer: the record's flow was seen later than the entry's (wrapping ms clock).
      if (int32_t(v.last_seen_ms - e.last_seen_ms) <= 0) return SyncApply::Stale;
      if (!storePeer(w, s, ft, &k, idx, v, now_ms)) return SyncApply::TableFull;
      if (e.backend_id == v.backend_id) return SyncApply::Refreshed;
      countEnd(w, e.backend_id);
      countNew(w, v.backend_id);
      return SyncApply::Replaced;
    }
    old_backend = e.backend_id;
  }
  if (!storePeer(w, s, ft, &k, idx, v, now_ms)) return SyncApply::TableFull;
  countEnd(w, old_backend);  // as handleMiss's Expired outcome
  countNew(w, v.backend_id);
  return SyncApply::Inserted;
}

uint64_t reannounce(void* ctx, const void* key, uint64_t raw) {
  auto& c = *static_cast<ReannounceCtx*>(ctx);
  const FlowValue v = FlowValue::unpack(raw);
  if (!isAnnounceable(v.state) || !announceFlow(*c.w, *c.s, key, c.v6, v, c.now_ms)) return raw;
  return raw | kFlowAnnouncedBit;
}

}  // namespace

bool createSyncRings(WorkerState& w, uint32_t size, std::string& err) {
  if (w.sync_out != nullptr || w.sync_in != nullptr) {
    err = "worker " + std::to_string(w.index) + ": sync rings exist already";
    return false;
  }
  if (size < 1 || size > kMaxSyncRingSize) {
    err = "worker " + std::to_string(w.index) + ": sync ring size " + std::to_string(size) + " must be 1.." +
          std::to_string(kMaxSyncRingSize);
    return false;
  }
  rte_ring* out = makeRing("sync_out", w.index, size, err);
  if (out == nullptr) return false;
  rte_ring* in = makeRing("sync_in", w.index, size, err);
  if (in == nullptr) {
    rte_ring_free(out);
    return false;
  }
  w.sync_out = out;
  w.sync_in = in;
  return true;
}

bool makeSyncFlow(const Snapshot& s, const void* key, bool v6, const FlowValue& v, uint32_t now_ms, SyncFlow& out) {
  const SnapBackend* b = s.backend(v.backend_id);
  if (b == nullptr) return false;
  out = SyncFlow{};
  if (v6) {
    const auto& k = *static_cast<const FlowKey6*>(key);
    out.v6 = 1;
    std::memcpy(out.src, k.saddr, 16);
    std::memcpy(out.dst, k.daddr, 16);
    out.sport_be = k.sport;
    out.dport_be = k.dport;
    out.proto = k.proto;
  } else {
    const auto& k = *static_cast<const FlowKey4*>(key);
    std::memcpy(out.src, &k.saddr, 4);
    std::memcpy(out.dst, &k.daddr, 4);
    out.sport_be = k.sport;
    out.dport_be = k.dport;
    out.proto = k.proto;
  }
  out.state = uint8_t(v.state);
  out.backend_v6 = b->addr.isV4() ? 0 : 1;
  std::memcpy(out.backend, b->addr.bytes.data(), b->addr.isV4() ? 4 : 16);
  out.backend_port_be = b->port_be;
  out.idle_ms = now_ms - v.last_seen_ms;
  out.generation = s.generation;
  return true;
}

bool announceFlow(WorkerState& w, const Snapshot& s, const void* key, bool v6, const FlowValue& v, uint32_t now_ms) {
  SyncFlow r;
  if (!makeSyncFlow(s, key, v6, v, now_ms, r)) return false;
  if (rte_ring_sp_enqueue_elem(w.sync_out, &r, sizeof(r)) != 0) {
    w.counters.add(Ctr::SyncOutFull);
    return false;
  }
  w.counters.add(Ctr::SyncAnnounced);
  return true;
}

uint64_t syncOnRewrite(WorkerState& w, const Snapshot& s, const void* key, bool v6, uint64_t raw, uint64_t value,
                       uint32_t now_ms) {
  if (raw & kFlowPeerBit) w.counters.add(Ctr::FlowPeerHit);
  // Announced when it becomes announceable here; an entry that was a peer's is the sweep's to
  // re-announce (its peers have it already).
  if (w.sync_out != nullptr && s.sync_announce_ms != 0 && (raw & kFlowPeerBit) == 0 &&
      isAnnounceable(stateOfRaw(value)) && !isAnnounceable(stateOfRaw(raw)) &&
      announceFlow(w, s, key, v6, FlowValue::unpack(value), now_ms))
    value |= kFlowAnnouncedBit;
  return value;
}

SyncApply applySyncFlow(WorkerState& w, const Snapshot& s, const SyncFlow& r, uint32_t now_ms) {
  SyncApply res = SyncApply::Unknown;
  do {
    if (r.v6 > 1 || r.backend_v6 > 1 || (r.proto != kProtoTcp && r.proto != kProtoUdp) ||
        r.state > uint8_t(FlowState::TcpReset))
      break;
    const auto st = FlowState(r.state);
    uint32_t vip_index = 0;
    const SnapVip* vip = findVip(s, r.dst, r.v6 ? Family::V6 : Family::V4, r.dport_be, r.proto, vip_index);
    if (vip == nullptr) break;
    const uint32_t bid = localBackend(s, *vip, r);
    if (!usableForExisting(s.backend(bid), vip_index)) break;
    FlowValue v;
    v.backend_id = bid;
    v.state = st;
    v.pinned = isRoundRobin(*vip);  // not the stateless choice here either
    if (!peerLastSeen(r, st, s.timeouts, now_ms, v.last_seen_ms)) {
      res = SyncApply::Stale;
      break;
    }
    res = r.v6 ? applyKeyed<FlowKey6>(w, s, r, now_ms, *w.flows6, v) : applyKeyed<FlowKey4>(w, s, r, now_ms, *w.flows4, v);
  } while (false);
  switch (res) {
    case SyncApply::Inserted: w.counters.add(Ctr::SyncInInserted); break;
    case SyncApply::Refreshed: w.counters.add(Ctr::SyncInRefreshed); break;
    case SyncApply::Replaced: w.counters.add(Ctr::SyncInReplaced); break;
    case SyncApply::KeptLocal: w.counters.add(Ctr::SyncInKeptLocal); break;
    case SyncApply::Stale: w.counters.add(Ctr::SyncInStale); break;
    case SyncApply::Unknown: w.counters.add(Ctr::SyncInUnknown); break;
    case SyncApply::TableFull: w.counters.add(Ctr::SyncInTableFull); break;
  }
  return res;
}

uint32_t drainSyncIn(WorkerState& w, const Snapshot& s, uint32_t now_ms) {
  // Raw storage: SyncFlow's member initialisers would zero 2.5 KiB per loop, records or not.
  alignas(SyncFlow) unsigned char buf[kSyncDrainBurst * sizeof(SyncFlow)];
  const unsigned n = rte_ring_sc_dequeue_burst_elem(w.sync_in, buf, sizeof(SyncFlow), kSyncDrainBurst, nullptr);
  for (unsigned i = 0; i < n; i++) {
    SyncFlow r;
    std::memcpy(&r, buf + i * sizeof(SyncFlow), sizeof(r));
    applySyncFlow(w, s, r, now_ms);
  }
  return n;
}

FlowTable::LiveVisit reannounceVisit(ReannounceCtx& ctx) {
  return FlowTable::LiveVisit{kFlowPeerBit | kFlowAnnouncedBit, &reannounce, &ctx};
}

}  // namespace l4lb::dataplane
