// The worker loop (workerMain): poll the RX queues in bursts, flush TX, drain the fragment and
// sync rings, pace the flow-table and fragment-table sweeps, answer the flow-query mailbox, back
// off when idle, and account its loops (WorkerLoad).
#include <sys/prctl.h>

#include <algorithm>

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "dataplane/flow_query.h"
#include "dataplane/fullnat/fullnat_path.h"
#include "dataplane/sync_rings.h"
#include "dataplane/worker.h"

namespace l4lb::dataplane {

uint32_t nowMs() {
  static const uint64_t hz_ms = rte_get_tsc_hz() / 1000;
  return uint32_t(rte_rdtsc() / hz_ms);
}

namespace {

inline uint32_t sweepShare(FlowTable& ft, uint32_t& debt, uint32_t elapsed_ms, uint32_t pass_ms) {
  const uint32_t per_ms = std::max((ft.capacity() + pass_ms - 1) / pass_ms, kSweepMinPerMs);
  debt = uint32_t(std::min<uint64_t>(uint64_t(debt) + uint64_t(per_ms) * elapsed_ms, ft.capacity()));
  return debt;
}

// At most kSweepChunk of a table's owed positions, with flow sync's re-announce when `s` is set.
uint32_t sweepChunk(WorkerState& w, FlowTable& ft, uint32_t& debt, bool v6, uint32_t now_ms, const FlowTimeouts& t,
                    const Snapshot* s) {
  const uint32_t b = std::min(debt, kSweepChunk);
  debt -= b;
  ReannounceCtx ctx{&w, s, now_ms, v6};
  const FlowTable::LiveVisit visit = reannounceVisit(ctx);
  return ft.sweep(now_ms, t, b, w.backend_ctrs.get(), s != nullptr ? &visit : nullptr);
}

// `pass_ms`: how long one pass over a table may take. `s`: with it, flow sync's re-announce
// rides along (sync_rings.h).
uint32_t sweepPaced(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t, uint32_t pass_ms, const Snapshot* s) {
  if (now_ms != w.sweep_last_ms) {
    // At most 10 ms accrue at once: the first call (sweep_last_ms 0) or a stalled worker does
    // not owe a whole pass; the pass then just takes a little longer.
    const uint32_t elapsed = std::min(now_ms - w.sweep_last_ms, 10u);
    w.sweep_last_ms = now_ms;
    sweepShare(*w.flows4, w.sweep_debt4, elapsed, pass_ms);
    sweepShare(*w.flows6, w.sweep_debt6, elapsed, pass_ms);
  }
  if ((w.sweep_debt4 | w.sweep_debt6) == 0) return 0;
  uint32_t expired = 0;
  if (w.sweep_debt4 != 0) expired += sweepChunk(w, *w.flows4, w.sweep_debt4, false, now_ms, t, s);
  if (w.sweep_debt6 != 0) expired += sweepChunk(w, *w.flows6, w.sweep_debt6, true, now_ms, t, s);
  if (expired) w.counters.add(Ctr::FlowExpired, expired);
  return expired;
}

}  // namespace

uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const FlowTimeouts& t) {
  return sweepPaced(w, now_ms, t, kSweepPassMs, nullptr);
}

uint32_t sweepFlows(WorkerState& w, uint32_t now_ms, const Snapshot& s) {
  // Full NAT's sessions: once a millisecond, a thousandth of them (a pass a second), so a pair
  // goes back to its pool within a second of its flow's timeout.
  if (unlikely(w.fullnat != nullptr) && now_ms != w.fullnat->sweep_last_ms) {
    w.fullnat->sweep_last_ms = now_ms;
    sweepFullNat(w, now_ms, s.timeouts, uint32_t(std::max<uint64_t>(w.fullnat->totalSlots() / 1000 + 1, 16)));
    if (uint32_t(now_ms - w.snat_published_ms) >= kSnatPublishMs) publishSnatUsage(w, now_ms);
  }
  // Flow sync: every live entry is visited at least once per sync_announce_ms.
  if (unlikely(w.sync_out != nullptr && s.sync_announce_ms != 0))
    return sweepPaced(w, now_ms, s.timeouts, std::min(kSweepPassMs, s.sync_announce_ms), &s);
  return sweepPaced(w, now_ms, s.timeouts, kSweepPassMs, nullptr);
}

namespace {

// Sends what a burst queued, per port; what the driver does not take is a tx_full drop.
inline void flushTx(WorkerState& w, const Snapshot& s, TxBatch& tx) {
  for (uint16_t p = 0; p < s.ports.size(); p++) {
    const uint16_t cnt = tx.n[p];
    if (cnt == 0) continue;
    uint64_t bytes = 0;  // read before the driver owns (and may free) the mbufs
    for (uint16_t k = 0; k < cnt; k++) bytes += rte_pktmbuf_pkt_len(tx.pkts[p][k]);
    uint16_t sent = rte_eth_tx_burst(s.ports[p].port_id, w.index, tx.pkts[p].data(), cnt);
    for (uint16_t k = sent; k < cnt; k++) {
      bytes -= rte_pktmbuf_pkt_len(tx.pkts[p][k]);
      dropPkt(w, tx.pkts[p][k], Drop::TxFull);
    }
    w.counters.add(Ctr::TxPackets, sent);
    w.counters.add(Ctr::TxBytes, bytes);
    w.port_ctrs[p].tx_packets += sent;
    w.port_ctrs[p].tx_bytes += bytes;
  }
}

}  // namespace

int workerMain(void* arg) {
  auto* a = static_cast<WorkerArgs*>(arg);
  WorkerState& w = *a->state;
  DataplaneShared& sh = *a->shared;
  TxBatch tx;
  rte_mbuf* pkts[kBurst];
  rte_rcu_qsbr_thread_register(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
  const bool backoff = a->idle.enabled;
  IdleBackoff idle(a->idle);
  // Linux adds up to 50 us of timer slack to a normal thread's nanosleep: a 1 us back-off sleep
  // would take 50. Best effort (a failure leaves the default slack: longer sleeps, still correct).
  if (backoff) prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  LoopClock clock;
  while (!sh.stop.load(std::memory_order_relaxed)) {
    bool busy = false;
    // Quiescent: this worker holds no snapshot pointer from the previous iteration.
    rte_rcu_qsbr_quiescent(sh.qsbr, w.index);
    const Snapshot* s = sh.snapshot.load(std::memory_order_acquire);
    const uint32_t now = nowMs();
    for (const RxQueue& q : a->rx) {
      uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, kBurst);
      if (n == 0) continue;
      busy = true;
      tx.clear();
      processBurst(w, *s, pkts, n, q.port_index, now, tx);
      flushTx(w, *s, tx);
    }
    if (unlikely(!w.handoff_rings.empty())) {
      tx.clear();
      if (drainHandOffRing(w, *s, now, tx) != 0) {
        busy = true;
        flushTx(w, *s, tx);
      }
    }
    if (unlikely(w.sync_in != nullptr) && drainSyncIn(w, *s, now) != 0) busy = true;
    sweepFlows(w, now, *s);
    sweepFrags(w, now);
    if (unlikely(sh.test_stall.load(std::memory_order_relaxed)) && w.index == 0) {
      rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
      while (sh.test_stall.load(std::memory_order_relaxed) && !sh.stop.load(std::memory_order_relaxed)) rte_pause();
      rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
      clock.restart();  // the stall is no loop's time either
      continue;          // not a loop: the stall must not count (WorkerLoad::loops)
    }
    if (unlikely(w.query.request.load(std::memory_order_relaxed) != w.query.answer.load(std::memory_order_relaxed)))
      answerFlowQuery(w, s, now);
    // Adaptive idle back-off (idle_backoff.h); off: this one branch. A sleeping worker is
    // RCU-offline, so a snapshot publish never waits for its sleep to end (it holds no snapshot
    // pointer past this point; the next loop reloads it after going online).
    if (unlikely(backoff)) {
      if (busy) {
        idle.busy();
      } else if (const uint32_t us = idle.idle(); us != 0) {
        const uint64_t t0 = rte_rdtsc();
        if (likely(!a->idle.test_sleep_online)) {
          rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
          rte_delay_us_sleep(us);
          rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
        } else {
          rte_delay_us_sleep(us);
        }
        w.load.idle_sleeps++;
        w.load.idle_sleep_cycles += rte_rdtsc() - t0;
      }
    }
    clock.endLoop(w.load, busy);
  }
  rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_unregister(sh.qsbr, w.index);
  return 0;
}

}  // namespace l4lb::dataplane
