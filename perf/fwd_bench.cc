// Forwarding benchmark: the production l4lb::dataplane::processBurst on in-memory traffic, and the
// 5tswap baseline on the same packet stream, interleaved in every run so their ratio is taken
// under the same machine conditions.
//
// Only processBurst (or swap5Tuple) is inside the timed region (rdtsc around each burst). Writing
// the frames into mbufs and recycling them happens outside it, so the figure is the worker's,
// not the generator's or the allocator's. What this leaves out: the NIC driver's RX/TX (real
// workers also pay rte_eth_rx_burst / tx_burst) and cold packet data (the generator has just
// written the headers, so they are in L1, as with DDIO at best).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define L4LB_CALLGRIND_TOGGLE() CALLGRIND_TOGGLE_COLLECT
#define L4LB_CALLGRIND_START() CALLGRIND_START_INSTRUMENTATION
#define L4LB_CALLGRIND_STOP() \
  do {                        \
    CALLGRIND_STOP_INSTRUMENTATION; \
    CALLGRIND_DUMP_STATS;     \
  } while (0)
#define L4LB_HAVE_CALLGRIND 1
#else
#define L4LB_CALLGRIND_TOGGLE() \
  do {                          \
  } while (0)
#define L4LB_CALLGRIND_START() L4LB_CALLGRIND_TOGGLE()
#define L4LB_CALLGRIND_STOP() L4LB_CALLGRIND_TOGGLE()
#define L4LB_HAVE_CALLGRIND 0
#endif

#include "baseline_5tswap.h"
#include "bench_common.h"
#include "bench_worker.h"
#include "benches.h"
#include "control/snapshot_builder.h"
#include "dataplane/flow_index.h"
#include "dataplane/sync_rings.h"
#include "dataplane/worker.h"
#include "traffic.h"

namespace l4lb::perf {

using dataplane::FlowKey4;
using dataplane::FlowKey6;
using dataplane::FlowTable;
using dataplane::kBurst;
using dataplane::TxBatch;
using dataplane::WorkerState;

namespace {

constexpr const char* kBaseline = "5tswap";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

TrafficSpec specFrom(const Options& o) {
  TrafficSpec t;
  t.flows = uint32_t(o.u64("flows", 10'000));
  if (t.flows < 1 || t.flows > 10'000'000) die("--flows: 1..10000000");
  const uint64_t size = o.u64("size", 64);
  if (size < 64 || size > 1500) die("--size: 64..1500");
  t.frame_size = uint16_t(size);
  const std::string proto = o.str("proto", "tcp");
  if (proto != "tcp" && proto != "udp") die("--proto: tcp or udp");
  t.tcp = proto == "tcp";
  const uint64_t fam = o.u64("family", 4);
  if (fam != 4 && fam != 6) die("--family: 4 or 6");
  t.ipv6 = fam == 6;
  t.proxy_v2 = o.flag("proxy-v2");
  const std::string dist = o.str("dist", "uniform");
  if (dist == "zipf") {
    t.popularity = Popularity::Zipf;
  } else if (dist != "uniform") {
    die("--dist: uniform or zipf");
  }
  t.zipf_s = o.dbl("zipf-s", 1.0);
  t.new_flow_share = o.dbl("new-share", 0.0);
  if (t.new_flow_share < 0 || t.new_flow_share > 1) die("--new-share: 0..1");
  t.seed = o.u64("seed", 1);
  return t;
}

FwdMode modeFrom(const std::string& m) {
  auto f = parseFwdMode(m);
  if (!f) die("--modes: unknown mode '" + m + "' (dsr, ipip, gue, nat, fullnat, 5tswap)");
  return *f;
}

// One contender: the balancer in one forwarding mode (own snapshot, own flow tables), or the
// baseline.
struct Contender {
  std::string name;
  bool baseline = false;
  control::SnapshotBuilder builder;
  std::unique_ptr<Snapshot> snap;
  std::unique_ptr<WorkerState> worker;
};

struct Measure {
  uint64_t packets = 0, cycles = 0, sent = 0;
};

// --sync: flow sync's cost on the worker. "on": the worker has its sync rings (announce on,
// sync_announce_ms 2000) and polls sync_in after each burst as workerMain does (inside the
// timed region; nothing arrives on it), while a consumer, outside it, empties sync_out as the
// sync thread would. "noconsumer": the same without the consumer (announcements beyond the
// ring's room are sync_out_full).
enum class SyncMode { Off, On, NoConsumer };
constexpr uint32_t kBenchSyncRing = 4096;

void drainSyncOut(WorkerState& w) {
  SyncFlow recs[64];
  while (rte_ring_sc_dequeue_burst_elem(w.sync_out, recs, sizeof(SyncFlow), 64, nullptr) != 0) {
  }
}

// `frozen_ms`: 0 = the real clock (nowMs, once per burst, as workerMain); else a fixed time, so
// no flow ever reaches its refresh interval (kFlowRefreshMs) and the instruction count does not
// depend on how slowly the run goes (valgrind).
Measure measure(Contender& c, BurstSource& src, MbufStock& stock, uint64_t packets, bool sweep, bool callgrind,
                uint32_t frozen_ms, SyncMode sync) {
  Measure r;
  rte_mbuf* pkts[kBurst];
  rte_mbuf* out[kBurst];
  TxBatch tx;
  if (callgrind) L4LB_CALLGRIND_START();
  for (uint64_t done = 0; done < packets; done += kBurst) {
    stock.take(pkts, kBurst);
    src.fill(pkts, kBurst);  // with the spec's rx_ol_flags (--rx-cksum-good)
    if (c.baseline) {
      const uint64_t t0 = rte_rdtsc();
      if (callgrind) L4LB_CALLGRIND_TOGGLE();
      swap5Tuple(pkts, kBurst, out);
      if (callgrind) L4LB_CALLGRIND_TOGGLE();
      r.cycles += rte_rdtsc() - t0;
      stock.give(out, kBurst);
      r.sent += kBurst;
    } else {
      WorkerState& w = *c.worker;
      const uint32_t now = frozen_ms ? frozen_ms : dataplane::nowMs();  // workerMain: once per loop
      tx.clear();
      const uint64_t t0 = rte_rdtsc();
      if (callgrind) L4LB_CALLGRIND_TOGGLE();
      dataplane::processBurst(w, *c.snap, pkts, kBurst, 0, now, tx);
      // What workerMain does after each loop.
      if (unlikely(w.sync_in != nullptr)) dataplane::drainSyncIn(w, *c.snap, now);
      if (sweep) dataplane::sweepFlows(w, now, *c.snap);
      if (callgrind) L4LB_CALLGRIND_TOGGLE();
      r.cycles += rte_rdtsc() - t0;
      if (sync == SyncMode::On) drainSyncOut(w);  // the sync thread's side
      for (uint16_t p = 0; p < kMaxPorts; p++) {
        stock.give(tx.pkts[p].data(), tx.n[p]);
        r.sent += tx.n[p];
      }
    }
    r.packets += kBurst;
  }
  if (callgrind) L4LB_CALLGRIND_STOP();
  return r;
}

}  // namespace

int fwdMain(const Options& o) {
  TrafficSpec t = specFrom(o);
  const auto modes = split(o.str("modes", "dsr,5tswap"), ',');
  const uint64_t packets = o.u64("packets", 10'000'000) / kBurst * kBurst;
  const int runs = int(o.u64("runs", 5));
  const uint32_t backends = uint32_t(o.u64("backends", 16));
  const bool sweep = o.flag("sweep");
  const bool callgrind = o.flag("callgrind");
  const std::string clock = o.str("clock", "real");  // "frozen": see measure()
  if (clock != "real" && clock != "frozen") die("--clock: real or frozen");
  const std::string label = o.str("label", "fwd");
  const unsigned core = unsigned(o.u64("core", 1));
  const uint64_t new_per_run = uint64_t(double(packets) * t.new_flow_share * 1.05) + kBurst;
  // Production default capacity (1M per family) unless the population needs more; with new
  // flows, room for every flow a run opens (the table is rebuilt before each run).
  const uint64_t need = uint64_t(t.flows) + (t.new_flow_share > 0 ? new_per_run : 0);
  const uint32_t cap = uint32_t(o.u64("capacity", std::max<uint64_t>(1u << 20, need + need / 4)));
  const uint32_t mem = uint32_t(o.u64("mem", 2048));
  // --huge: EAL memory (flow tables, mbufs) on hugepages; 4 KiB pages (--no-huge) otherwise.
  const bool huge = o.flag("huge");
  // --rx-cksum-good: every packet arrives marked RTE_MBUF_F_RX_IP_CKSUM_GOOD, as from a NIC
  // with IPv4 checksum offload (the parser then skips its own check). Set by the generator when
  // it writes each mbuf (FrameWriter::write, outside the timed region). A separate pass over the
  // burst's mbufs after they were written, as before, ran right before the timed region and
  // slowed the 5tswap baseline 1.4-2.6x (perf/RESULTS.md, "`fwd_10k_nic_cksum`, explained and fixed").
  const uint64_t rx_flags = o.flag("rx-cksum-good") ? RTE_MBUF_F_RX_IP_CKSUM_GOOD : 0;
  t.rx_ol_flags = rx_flags;
  const std::string sync_opt = o.str("sync", "off");
  if (sync_opt != "off" && sync_opt != "on" && sync_opt != "noconsumer") die("--sync: off, on or noconsumer");
  const SyncMode sync = sync_opt == "on" ? SyncMode::On : sync_opt == "noconsumer" ? SyncMode::NoConsumer : SyncMode::Off;
  o.rejectUnknown();
  if (modes.empty()) die("--modes: empty");
  if (callgrind && !L4LB_HAVE_CALLGRIND) die("--callgrind: built without valgrind/callgrind.h");
  // A frozen clock is for exact, repeatable instruction counts (perf/gate.py): the flow-index
  // key is then fixed too, so every run puts the flows in the same buckets (the per-process
  // random key moves a few of them into a neighbour bucket, +-0.01 instructions per packet).
  if (clock == "frozen")
    dataplane::setFlowIndexKey(dataplane::FlowIndexKey{{0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0,
                                                        0x082efa98ec4e6c89, 0x452821e638d01377, 0xbe5466cf34e90c6c}});

  startEal(std::to_string(core), mem, huge);
  {
    // --clock frozen: the warm-up and every burst see this one time, so no flow is ever due for
    // a refresh however long the warm-up takes (1M flows under valgrind: seconds).
    const uint32_t frozen_ms = clock == "frozen" ? dataplane::nowMs() : 0;
    const size_t seq_len = std::clamp<size_t>(size_t(t.flows) * 2, 1u << 20, 1u << 24);
    const std::vector<uint32_t> seq = makeSequence(t, seq_len);
    MbufStock stock("perf_fwd");
    std::vector<std::unique_ptr<Contender>> cs;
    for (const auto& m : modes) {
      auto c = std::make_unique<Contender>();
      c->name = m;
      c->baseline = m == kBaseline;
      if (!c->baseline) {
        c->snap = buildSnapshot(c->builder, benchConfig(t, modeFrom(m), backends));
        c->worker = std::make_unique<WorkerState>();
        makeTables(*c->worker, t.ipv6 ? 1u << 20 : cap, t.ipv6 ? cap : 1u << 20);
        makeFullNat(*c->worker, *c->snap);
        if (sync != SyncMode::Off) {
          std::string err;
          if (!dataplane::createSyncRings(*c->worker, kBenchSyncRing, err)) die(err);
          c->snap->sync_announce_ms = 2000;
        }
        warmFlows(*c->worker, *c->snap, t, stock, c->name, frozen_ms);
        if (sync == SyncMode::On) drainSyncOut(*c->worker);
      }
      cs.push_back(std::move(c));
    }
    const double hz = double(rte_get_tsc_hz());
    std::fprintf(stderr,
                 "fwd %s: flows=%u frame=%u %s/IPv%d %s new-share=%.2f capacity=%u backends=%u tsc=%.0f MHz "
                 "pages=%s rx-cksum-good=%s sync=%s\n",
                 label.c_str(), t.flows, effectiveFrameSize(t), t.tcp ? "TCP" : "UDP", t.ipv6 ? 6 : 4,
                 t.popularity == Popularity::Zipf ? "zipf" : "uniform", t.new_flow_share, cap, backends, hz / 1e6,
                 huge ? "huge" : "4k", rx_flags ? "yes" : "no", sync_opt.c_str());
    for (int run = 0; run < runs; run++) {
      std::vector<double> mpps(cs.size());
      std::vector<Record> recs;
      for (size_t i = 0; i < cs.size(); i++) {
        Contender& c = *cs[i];
        if (!c.baseline && t.new_flow_share > 0 && run > 0) {
          // Every run starts from the same table state: the population only.
          makeTables(*c.worker, t.ipv6 ? 1u << 20 : cap, t.ipv6 ? cap : 1u << 20);
          makeFullNat(*c.worker, *c.snap);
          c.worker->counters = WorkerCounters{};
          warmFlows(*c.worker, *c.snap, t, stock, c.name, frozen_ms);
          if (sync == SyncMode::On) drainSyncOut(*c.worker);
        }
        BurstSource src(t, seq);  // same seed: every contender gets the same packets
        const WorkerCounters before = c.baseline ? WorkerCounters{} : c.worker->counters;
        const Measure m = measure(c, src, stock, packets, sweep, callgrind, frozen_ms, sync);
        if (m.sent != m.packets) {
          die(label + "/" + c.name + ": " + std::to_string(m.packets - m.sent) + " of " + std::to_string(m.packets) +
              " packets not forwarded; counters:" + countersLine(*c.worker));
        }
        const double cpp = double(m.cycles) / double(m.packets);
        mpps[i] = hz / cpp / 1e6;
        Record r{"fwd", label, run};
        r.tag("mode", c.name)
            .tag("pages", huge ? "huge" : "4k")
            .tag("sync", sync_opt)
            .add("packets", double(m.packets))
            .add("mpps", mpps[i])
            .add("ns_per_pkt", cpp / hz * 1e9)
            .add("cycles_per_pkt", cpp);
        if (!c.baseline) {
          const auto& a = c.worker->counters;
          r.add("flow_new", double(a.get(Ctr::FlowNew) - before.get(Ctr::FlowNew)))
              .add("flow_hit", double(a.get(Ctr::FlowHit) - before.get(Ctr::FlowHit)))
              .add("flow_table_full", double(a.get(Ctr::FlowTableFull) - before.get(Ctr::FlowTableFull)));
          if (sync != SyncMode::Off)
            r.add("sync_announced", double(a.get(Ctr::SyncAnnounced) - before.get(Ctr::SyncAnnounced)))
                .add("sync_out_full", double(a.get(Ctr::SyncOutFull) - before.get(Ctr::SyncOutFull)));
        }
        recs.push_back(r);
      }
      for (size_t i = 0; i < cs.size(); i++) {
        recs[i].add("vs_first", mpps[i] / mpps[0]);
        for (size_t j = 0; j < cs.size(); j++)
          if (cs[j]->baseline) recs[i].add("vs_5tswap", mpps[i] / mpps[j]);
        recs[i].print();
      }
    }
    cs.clear();
  }
  stopEal();
  return 0;
}

// Writes the fwd benchmark's input (same flags) as a pcap file, for dpdk-testpmd's net_pcap.
int pcapMain(const Options& o) {
  const TrafficSpec t = specFrom(o);
  const std::string path = o.str("out", "");
  const uint64_t count = o.u64("count", 16384);
  o.rejectUnknown();
  if (path.empty()) die("--out FILE required");
  const auto seq = makeSequence(t, count);
  FrameWriter fw(t);
  std::ofstream f(path, std::ios::binary);
  auto w32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto w16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  w32(0xa1b2c3d4);  // libpcap file format, microsecond timestamps, host byte order
  w16(2);
  w16(4);
  w32(0);
  w32(0);
  w32(65535);
  w32(1);  // LINKTYPE_ETHERNET
  for (uint64_t i = 0; i < count; i++) {
    const auto fr = fw.frame(seq[i], 0x10);
    w32(uint32_t(i / 1'000'000));
    w32(uint32_t(i % 1'000'000));
    w32(uint32_t(fr.size()));
    w32(uint32_t(fr.size()));
    f.write(reinterpret_cast<const char*>(fr.data()), std::streamsize(fr.size()));
  }
  if (!f) die(path + ": write failed");
  return 0;
}

}  // namespace l4lb::perf
