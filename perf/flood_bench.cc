// SYN-flood benchmark: a worker under spoofed SYNs, each from a never-seen 5-tuple,
// mixed with its established flows and with legitimate new connections (SYN, then ACK a burst
// later). On the real clock, as workerMain runs it (processBurst, then the sweep), so embryonic
// entries age and are swept at their real timeouts while the flood lasts.
//
// Per burst kind, from the worker's counters around its own processBurst calls:
//   established  ACKs of the warmed population: the share that hit their entry (must stay 1.0);
//   legit        ACKs of connections opened during the flood: the share that got an entry
//                (tracked, so they keep their backend if the pool changes), not stateless;
//   flood        spoofed SYNs.
// With --admission off (the test-only switch, as L4LB_TEST_NO_ADMISSION), the same run shows
// what admission prevents: the table fills with SYNs and legitimate connections go untracked.
#include <algorithm>
#include <cstdio>
#include <vector>

#include <rte_cycles.h>

#include "bench_common.h"
#include "bench_worker.h"
#include "benches.h"
#include "control/snapshot_builder.h"
#include "dataplane/worker.h"
#include "traffic.h"

namespace l4lb::perf {

using dataplane::kBurst;

namespace {

struct Kind {
  uint64_t packets = 0, cycles = 0;
  uint64_t hit = 0, tracked = 0, untracked = 0;
};

}  // namespace

int floodMain(const Options& o) {
  TrafficSpec t;
  t.flows = uint32_t(o.u64("flows", 10'000));
  const uint32_t cap = uint32_t(o.u64("capacity", 65'536));
  const double seconds = o.dbl("seconds", 4.0);
  // Spoofed SYN bursts per established burst.
  const uint32_t flood_bursts = uint32_t(o.u64("flood-bursts", 8));
  // Legitimate connections opened per second (a burst of 32 SYNs every 32000/rate ms; their ACKs
  // follow in the next cycle). They stay established, so they must fit the table's confirmed room.
  const double legit_per_s = o.dbl("legit-per-s", 2000);
  const std::string adm = o.str("admission", "on");
  const double share = o.dbl("embryonic-share", 0.25);
  const uint32_t syn_timeout_ms = uint32_t(o.u64("syn-timeout-ms", 0));
  const unsigned core = unsigned(o.u64("core", 1));
  const std::string label = o.str("label", "flood");
  const int runs = int(o.u64("runs", 1));
  o.rejectUnknown();
  if (adm != "on" && adm != "off") die("--admission: on or off");
  if (t.flows < 1 || uint64_t(t.flows) * 2 > cap) die("--flows: 1..capacity/2");
  if (legit_per_s < 1 || legit_per_s * seconds + t.flows > cap / 2) die("--legit-per-s: 1..(capacity/2 - flows)/seconds");

  startEal(std::to_string(core), 1024);
  {
    MbufStock stock("perf_flood");
    for (int run = 0; run < runs; run++) {
      control::SnapshotBuilder sb;
      std::unique_ptr<Snapshot> snap = buildSnapshot(sb, benchConfig(t, FwdMode::Dsr, 16));
      snap->admission.enabled = adm == "on";
      snap->admission.embryonic_ppm = uint32_t(share * 1e6);
      if (syn_timeout_ms) snap->timeouts.tcp_syn_ms = syn_timeout_ms;
      dataplane::WorkerState w;
      makeTables(w, cap, 1024);
      warmFlows(w, *snap, t, stock, label);
      const dataplane::FlowTable& ft = *w.flows4;
      const uint32_t embryonic_limit = snap->admission.embryonicLimit(ft.capacity());

      const std::vector<uint32_t> seq = makeSequence(t, 1u << 20);
      size_t seq_pos = 0;
      FrameWriter fw(t);
      uint32_t next_id = t.flows;  // new 5-tuples (legit and spoofed alike) never repeat
      std::vector<uint32_t> legit_open;  // legit connections whose ACK is due next cycle
      Kind est, legit, flood;
      uint32_t embryonic_peak = 0;
      std::vector<std::pair<double, uint32_t>> samples;  // (seconds, embryonic entries)
      rte_mbuf* pkts[kBurst];
      dataplane::TxBatch tx;
      const double hz = double(rte_get_tsc_hz());
      const uint64_t start = rte_rdtsc(), end = start + uint64_t(seconds * hz);
      uint64_t next_sample = start, next_legit = start;
      const uint64_t legit_every = uint64_t(hz * kBurst / legit_per_s);

      // Runs one burst as workerMain would, timed, and adds its counters' change to `k`.
      auto burst = [&](Kind& k) {
        const WorkerCounters before = w.counters;
        const uint32_t now = dataplane::nowMs();
        tx.clear();
        const uint64_t t0 = rte_rdtsc();
        dataplane::processBurst(w, *snap, pkts, kBurst, 0, now, tx);
        dataplane::sweepFlows(w, now, snap->timeouts);
        k.cycles += rte_rdtsc() - t0;
        for (uint16_t p = 0; p < kMaxPorts; p++) stock.give(tx.pkts[p].data(), tx.n[p]);
        k.packets += kBurst;
        k.hit += w.counters.get(Ctr::FlowHit) - before.get(Ctr::FlowHit);
        k.tracked += w.counters.get(Ctr::FlowNew) - before.get(Ctr::FlowNew);
        k.untracked += (w.counters.get(Ctr::FlowTableFull) - before.get(Ctr::FlowTableFull)) +
                       (w.counters.get(Ctr::FlowEmbryonicFull) - before.get(Ctr::FlowEmbryonicFull));
      };
      while (rte_rdtsc() < end) {
        // Established traffic.
        stock.take(pkts, kBurst);
        for (uint16_t i = 0; i < kBurst; i++) fw.write(pkts[i], seq[seq_pos++ % seq.size()], 0x10);
        burst(est);
        // The flood.
        for (uint32_t b = 0; b < flood_bursts; b++) {
          stock.take(pkts, kBurst);
          for (uint16_t i = 0; i < kBurst; i++) fw.write(pkts[i], next_id++, 0x02);
          burst(flood);
        }
        embryonic_peak = std::max(embryonic_peak, ft.embryonic());
        const uint64_t now_tsc = rte_rdtsc();
        if (now_tsc >= next_sample) {
          samples.emplace_back(double(now_tsc - start) / hz, ft.embryonic());
          next_sample += uint64_t(hz / 4);
        }
        // Legitimate connections: last cycle's complete their handshake, new ones open when due.
        if (!legit_open.empty()) {
          stock.take(pkts, kBurst);
          for (uint16_t i = 0; i < kBurst; i++) fw.write(pkts[i], legit_open[i], 0x10);
          burst(legit);
          legit_open.clear();
        }
        if (now_tsc < next_legit) continue;
        next_legit += legit_every;
        stock.take(pkts, kBurst);
        for (uint16_t i = 0; i < kBurst; i++) {
          legit_open.push_back(next_id);
          fw.write(pkts[i], next_id++, 0x02);
        }
        Kind legit_syn;
        burst(legit_syn);
        flood.packets += legit_syn.packets;  // a SYN is a SYN: counted with the flood's packets
        flood.cycles += legit_syn.cycles;
      }
      const uint64_t packets = est.packets + flood.packets + legit.packets;
      const uint64_t cycles = est.cycles + flood.cycles + legit.cycles;
      const double elapsed = double(rte_rdtsc() - start) / hz;
      std::fprintf(stderr, "flood %s run %d: admission=%s capacity=%u embryonic limit=%u; embryonic entries over time:",
                   label.c_str(), run, adm.c_str(), cap, embryonic_limit);
      for (const auto& [s, e] : samples) std::fprintf(stderr, " %.2fs:%u", s, e);
      std::fprintf(stderr, "\n  counters:%s\n", countersLine(w).c_str());
      Record r{"flood", label, run};
      r.tag("admission", adm)
          .add("packets", double(packets))
          .add("mpps", hz / (double(cycles) / double(packets)) / 1e6)
          .add("established_hit_rate", double(est.hit) / double(est.packets))
          .add("legit_tracked_rate", legit.packets ? double(legit.tracked + legit.hit) / double(legit.packets) : 0)
          .add("spoofed_syn_per_s", double(next_id - t.flows) / elapsed)
          .add("embryonic_peak", embryonic_peak)
          .add("embryonic_limit", embryonic_limit)
          .add("capacity", cap)
          .add("flow_embryonic_full", double(w.counters.get(Ctr::FlowEmbryonicFull)))
          .add("flow_embryonic_displaced", double(w.counters.get(Ctr::FlowEmbryonicDisplaced)))
          .add("flow_table_full", double(w.counters.get(Ctr::FlowTableFull)))
          .add("drops", double(w.counters.totalDrops()));
      r.print();
    }
  }
  stopEal();
  return 0;
}

}  // namespace l4lb::perf
