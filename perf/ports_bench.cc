// The whole worker on real ports (perf/RESULTS.md, "The whole worker on ports"):
// dataplane::workerMain itself (quiescent state, the
// sweep, flow queries, TX accounting, every port's RX queue polled: the production loop) on two
// net_ring ports "wan" and "lan", next to a dpdk-testpmd --forward-mode=5tswap equivalent and an
// "io" loop (testpmd's io mode: RX to TX, packets untouched) on the same ports, same packets,
// same run. Contenders alternate within each run.
//
// Traffic: a fixed population of --mbufs mbufs (default 1M, 512 B data rooms: 704 MiB) carrying
// --flows established DSR IPv4 TCP flows, 64 B frames, in a random order. The population
// circulates FIFO: lan's TX queue q -> wan's RX queue q, so a packet comes back only after every
// other packet of its queue has been forwarded once; its mbuf and headers are cold. Why 1M: the
// lines touched per pass (mbuf struct, headers: 3 x 64 B per packet, 192 MiB) must exceed the
// caches, and this VM reports a 480 MiB shared L3; at 256k mbufs (48 MiB touched) the 5tswap
// loop's cost varied from 60 to 114 cycles per packet between runs (part of it stayed in L3),
// at 1M it is steady (perf/RESULTS.md, "The whole worker on ports").
//  - generator mode (default): the main thread (--gen-core) moves the pointers from lan's TX
//    rings to wan's RX rings without touching the packets; the contenders run on --cores.
//  - --wire: lan's TX queue q *is* wan's RX queue q (no generator); for --cores with 2 cores
//    (two workers, each on its own RX/TX queue pair) on a 2-vCPU machine.
// Packets reach queue q by RSS: the Toeplitz hash of the IPv4 4-tuple with the default key and a
// 128-entry redirection table, as a NIC spreads them.
//
// The MACs are chosen so that a forwarded DSR frame is byte for byte the frame that came in
// (the backends' MAC is wan's, lan's is the client's): the population needs no rewriting, and
// the generator never touches packet data. 5tswap changes frames (every pass swaps them back),
// so the population is rewritten before each l4lb phase.
//
// One JSON line per run and contender (bench "ports", tag mode = l4lb | 5tswap | io).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_thash.h>

#include "baseline_5tswap.h"
#include "bench_worker.h"
#include "benches.h"
#include "control/publisher.h"
#include "control/snapshot_builder.h"
#include "control/worker_totals.h"
#include "dataplane/worker.h"
#include "ring_ports.h"
#include "traffic.h"

namespace l4lb::perf {

namespace {

using Clock = std::chrono::steady_clock;
using dataplane::kBurst;

// FrameWriter's addresses (traffic.cc): frames go to wan's MAC from the client's.
const MacAddr kWanMac = *MacAddr::parse("02:00:00:00:00:10");
const MacAddr kClientMac = *MacAddr::parse("02:00:00:00:c0:01");

// Per contender thread, written only by it (its own cache lines), read by the main thread.
struct alignas(RTE_CACHE_LINE_SIZE) LoopStats {
  uint64_t rx = 0, tx = 0, tx_dropped = 0;
  WorkerLoad load;
};

enum class Mode { L4lb, Swap5, Io };
const char* name(Mode m) { return m == Mode::L4lb ? "l4lb" : m == Mode::Swap5 ? "5tswap" : "io"; }

struct Contender {
  Mode mode = Mode::L4lb;
  unsigned core = 1;
  bool rt = false;
  dataplane::WorkerArgs args;  // l4lb: workerMain's; the others use rx/shared from it
  uint16_t tx_port = 0;        // the others: lan, where wan's packets go out (and lan's come in)
  LoopStats* stats = nullptr;
  std::atomic<bool> started{false};
};

void setRealtime(int prio) {
  sched_param p{};
  p.sched_priority = prio;
  if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) != 0) die("SCHED_FIFO refused");
}

// testpmd's forwarding loop for one core with two streams (wan q -> lan q, lan q -> wan q:
// testpmd's paired port topology), 5tswap or io, with workerMain's loop accounting (one TSC read
// per loop) so that the cycles per packet compare.
void testpmdLoop(Contender& c) {
  const uint16_t q = c.args.rx[0].queue;
  const uint16_t wan = c.args.rx[0].port_id, lan = c.tx_port;
  const struct {
    uint16_t rx, tx;
  } streams[2] = {{wan, lan}, {lan, wan}};
  rte_mbuf* pkts[kBurst];
  rte_mbuf* out[kBurst];
  LoopStats& st = *c.stats;
  dataplane::LoopClock clock;  // workerMain's loop accounting
  while (!c.args.shared->stop.load(std::memory_order_relaxed)) {
    bool busy = false;
    for (const auto& s : streams) {
      const uint16_t n = rte_eth_rx_burst(s.rx, q, pkts, kBurst);
      if (n == 0) continue;
      busy = true;
      st.rx += n;
      rte_mbuf** send = pkts;
      if (c.mode == Mode::Swap5) {
        swap5Tuple(pkts, n, out);
        send = out;
      }
      const uint16_t sent = rte_eth_tx_burst(s.tx, q, send, n);
      st.tx += sent;
      if (unlikely(sent < n)) {
        st.tx_dropped += n - sent;
        rte_pktmbuf_free_bulk(send + sent, n - sent);
      }
    }
    clock.endLoop(st.load, busy);
  }
}

void runContender(Contender* c) {
  pinThread(c->core);
  if (rte_thread_register() != 0) die("rte_thread_register");  // an lcore id: mempool caches work
  if (c->rt) setRealtime(1);
  c->started.store(true, std::memory_order_release);
  if (c->mode == Mode::L4lb) {
    dataplane::workerMain(&c->args);
  } else {
    testpmdLoop(*c);
  }
  rte_thread_unregister();
}

// What a contender did in the measured window (differences of its counters).
struct Sample {
  uint64_t rx = 0, tx = 0, dropped = 0, loops = 0, busy_loops = 0, busy_cycles = 0, total_cycles = 0;
};
Sample sample(Mode m, const dataplane::WorkerState& w, const LoopStats& st) {
  Sample s;
  if (m == Mode::L4lb) {
    s.rx = w.counters.get(Ctr::RxPackets);
    s.tx = w.counters.get(Ctr::TxPackets);
    s.dropped = w.counters.totalDrops();
    s.loops = w.load.loops;
    s.busy_loops = w.load.busy_loops;
    s.busy_cycles = w.load.busy_cycles;
    s.total_cycles = w.load.total_cycles;
  } else {
    s.rx = st.rx;
    s.tx = st.tx;
    s.dropped = st.tx_dropped;
    s.loops = st.load.loops;
    s.busy_loops = st.load.busy_loops;
    s.busy_cycles = st.load.busy_cycles;
    s.total_cycles = st.load.total_cycles;
  }
  return s;
}
Sample operator-(const Sample& a, const Sample& b) {
  return {a.rx - b.rx, a.tx - b.tx, a.dropped - b.dropped, a.loops - b.loops, a.busy_loops - b.busy_loops,
          a.busy_cycles - b.busy_cycles, a.total_cycles - b.total_cycles};
}

std::vector<unsigned> parseCores(const std::string& s) {
  std::vector<unsigned> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(unsigned(std::stoul(item)));
  if (v.empty() || v.size() > 2) die("--cores: one or two cores, e.g. 1 or 0,1");
  return v;
}

std::vector<Mode> parseModes(const std::string& s) {
  std::vector<Mode> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "l4lb") v.push_back(Mode::L4lb);
    else if (item == "5tswap") v.push_back(Mode::Swap5);
    else if (item == "io") v.push_back(Mode::Io);
    else die("--modes: l4lb, 5tswap, io");
  }
  return v;
}

// RSS: the NIC's queue for a frame (Toeplitz over src/dst IPv4 and ports, default key,
// 128-entry redirection table filled round-robin).
uint16_t rssQueue(const rte_mbuf* m, uint16_t queues) {
  static const uint8_t key[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                                  0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                                  0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
  const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*) + 14;
  auto be32 = [](const uint8_t* b) { return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]; };
  uint32_t tuple[3] = {be32(p + 12), be32(p + 16), be32(p + 20)};  // src, dst, sport << 16 | dport
  const uint32_t h = rte_softrss(tuple, 3, key);
  return uint16_t((h % 128) % queues);
}

}  // namespace

int portsMain(const Options& o) {
  const int runs = int(o.u64("runs", 5));
  const double seconds = o.dbl("seconds", 1.0);
  const double warm_s = o.dbl("warm", 0.3);
  const uint32_t nmbufs = uint32_t(o.u64("mbufs", 1u << 20));
  const uint32_t buf_size = uint32_t(o.u64("buf-size", 512));  // data room incl. 128 B headroom
  const unsigned gen_core = unsigned(o.u64("gen-core", 0));
  const std::vector<unsigned> cores = parseCores(o.str("cores", "1"));
  const std::vector<Mode> modes = parseModes(o.str("modes", "l4lb,5tswap,io"));
  const bool wire = o.flag("wire");
  const bool rt = o.flag("rt");
  const bool huge = o.flag("huge");
  const double ctl_hz = o.dbl("ctl-hz", 10);  // the control plane summing the workers' counters
  const std::string label = o.str("label", "ports");
  TrafficSpec t;
  t.flows = uint32_t(o.u64("flows", 10'000));
  t.frame_size = uint16_t(o.u64("size", 64));
  const uint32_t backends = uint32_t(o.u64("backends", 16));
  o.rejectUnknown();
  const uint16_t nq = uint16_t(cores.size());
  if (uint32_t(effectiveFrameSize(t)) + RTE_PKTMBUF_HEADROOM > buf_size)
    die("--buf-size " + std::to_string(buf_size) + " has no room for " + std::to_string(effectiveFrameSize(t)) +
        " B frames after the " + std::to_string(RTE_PKTMBUF_HEADROOM) + " B headroom");
  if (!wire && std::find(cores.begin(), cores.end(), gen_core) != cores.end())
    die("--gen-core must differ from --cores (or use --wire)");

  const uint64_t elt = sizeof(rte_mbuf) + buf_size + 64;
  startEal(std::to_string(gen_core), uint32_t(uint64_t(nmbufs) * elt / (1 << 20) + 512), huge);
  if (rt) setRealtime(2);  // above the contenders: the main thread must end the window on time

  rte_mempool* pool = rte_pktmbuf_pool_create("pb_pool", nmbufs, 0, 0, uint16_t(buf_size), SOCKET_ID_ANY);
  if (pool == nullptr) die("mbuf pool of " + std::to_string(nmbufs));
  // Rings: room for the whole population in every ring that may hold it.
  uint32_t ring_size = 1;
  while (ring_size < nmbufs + 4 * kBurst) ring_size <<= 1;
  std::vector<rte_ring*> wan_rx, wan_tx, lan_rx, lan_tx, owned;
  for (uint16_t q = 0; q < nq; q++) {
    const std::string s = std::to_string(q);
    wan_rx.push_back(makeRing("pb_wan_rx" + s, ring_size));
    wan_tx.push_back(makeRing("pb_wan_tx" + s, ring_size));
    lan_rx.push_back(makeRing("pb_lan_rx" + s, 1024));
    lan_tx.push_back(wire ? wan_rx[q] : makeRing("pb_lan_tx" + s, ring_size));
    owned.insert(owned.end(), {wan_rx[q], wan_tx[q], lan_rx[q]});
    if (!wire) owned.push_back(lan_tx[q]);
  }
  const RingPort wan = makeRingPort("net_ring_pb_wan", wan_rx, wan_tx, pool);
  const RingPort lan = makeRingPort("net_ring_pb_lan", lan_rx, lan_tx, pool);

  // The control plane's side: snapshot, RCU, one WorkerState per worker (flows warmed in each).
  const size_t qsz = rte_rcu_qsbr_get_memsize(nq);
  auto* qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc("pb_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (qs == nullptr || rte_rcu_qsbr_init(qs, nq) != 0) die("qsbr");
  dataplane::DataplaneShared shared;
  shared.qsbr = qs;
  shared.port_ids = {wan.port_id, lan.port_id};
  control::SnapshotBuilder sb;
  control::SnapshotPublisher pub(shared);
  std::vector<uint32_t> backend_ids;
  {
    control::Config cfg = benchConfig(t, FwdMode::Dsr, backends);
    for (auto& b : cfg.vips[0].backends) b.mac = kWanMac;
    control::BuildResult r = sb.build(cfg, {{wan.port_id, kWanMac}, {lan.port_id, kClientMac}});
    if (!r) die(r.joined());
    pub.publish(std::move(r.snapshot));
    for (const SnapVip& v : pub.current()->vips) backend_ids.insert(backend_ids.end(), v.backends.begin(), v.backends.end());
  }
  std::vector<std::unique_ptr<dataplane::WorkerState>> states;
  std::vector<const dataplane::WorkerState*> state_ptrs;
  {
    MbufStock stock("pb_warm");
    for (uint16_t q = 0; q < nq; q++) {
      states.push_back(std::make_unique<dataplane::WorkerState>());
      states[q]->index = q;
      makeTables(*states[q], std::max<uint32_t>(1u << 16, t.flows * 2), 1024);
      warmFlows(*states[q], *pub.current(), t, stock, "ports worker " + std::to_string(q));
      state_ptrs.push_back(states[q].get());
    }
  }
  auto stats = std::unique_ptr<LoopStats[]>(new LoopStats[nq]);

  // The population: random flow order; each mbuf's queue by RSS.
  std::vector<rte_mbuf*> pop(nmbufs);
  if (rte_pktmbuf_alloc_bulk(pool, pop.data(), nmbufs) != 0) die("population alloc");
  const std::vector<uint32_t> seq = makeSequence(t, nmbufs);
  FrameWriter fw(t);
  std::vector<uint16_t> home(nmbufs);
  std::vector<uint64_t> per_queue(nq, 0);
  for (uint32_t i = 0; i < nmbufs; i++) {
    fw.write(pop[i], seq[i], 0x10);
    home[i] = rssQueue(pop[i], nq);
    per_queue[home[i]]++;
  }
  // Puts the population back on wan's RX queues in its original order, frames rewritten.
  auto load = [&](bool rewrite) {
    for (uint32_t i = 0; i < nmbufs; i++) {
      if (rewrite) fw.write(pop[i], seq[i], 0x10);
      if (rte_ring_enqueue(wan_rx[home[i]], pop[i]) != 0) die("rx ring full while loading");
    }
  };
  // Takes every mbuf back out of the rings; exits unless all of them are there (no packet lost).
  auto collect = [&](const char* what) {
    uint32_t n = 0;
    for (uint16_t q = 0; q < nq; q++)
      for (rte_ring* r : {wan_rx[q], wire ? nullptr : lan_tx[q], wan_tx[q], lan_rx[q]}) {  // wire: lan_tx is wan_rx
        if (r == nullptr) continue;
        rte_mbuf* m;
        while (rte_ring_dequeue(r, reinterpret_cast<void**>(&m)) == 0) n++;
      }
    if (n != nmbufs)
      die(std::string(what) + ": " + std::to_string(n) + " of " + std::to_string(nmbufs) + " mbufs came back");
  };
  std::ostringstream spread;  // (not string operator+: GCC 12 -O3 raises a false -Wrestrict on it)
  for (uint16_t q = 0; q < nq; q++) spread << (q ? "/" : "") << per_queue[q];
  std::fprintf(stderr,
               "ports: %u mbufs of %u B data room (%.0f MiB; the headers and mbuf structs touched per pass: %.0f MiB), "
               "%u flows, %u worker(s) on core(s) %s, %s, RSS spread %s, ring %u slots, ctl reads %.0f Hz\n",
               nmbufs, buf_size, double(nmbufs) * double(elt) / double(1 << 20),
               double(nmbufs) * 3 * 64 / double(1 << 20), t.flows, unsigned(nq), o.str("cores", "1").c_str(),
               wire ? "wire (no generator)" : ("generator on core " + std::to_string(gen_core)).c_str(), spread.str().c_str(),
               ring_size, ctl_hz);

  bool rewrite = false;
  for (int run = 0; run < runs; run++) {
    double l4lb_mpps = 0, swap_mpps = 0;
    std::vector<Record> recs;
    int l4lb_rec = -1;
    for (Mode mode : modes) {
      load(rewrite && mode == Mode::L4lb);
      if (mode == Mode::Swap5) rewrite = true;
      if (mode == Mode::L4lb) rewrite = false;
      shared.stop.store(false);
      std::vector<std::unique_ptr<Contender>> cs;
      for (uint16_t q = 0; q < nq; q++) {
        auto c = std::make_unique<Contender>();
        c->mode = mode;
        c->core = cores[q];
        c->rt = rt;
        c->args = {states[q].get(), &shared, {{0, wan.port_id, q}, {1, lan.port_id, q}}, {}};
        c->tx_port = lan.port_id;
        c->stats = &stats[q];
        cs.push_back(std::move(c));
      }
      std::vector<std::thread> threads;
      for (auto& c : cs) threads.emplace_back(runContender, c.get());
      // Sleeping, not yielding: with --wire the main thread shares a core with worker 0, and as
      // the higher SCHED_FIFO priority a yielding main thread would never let it start.
      for (auto& c : cs)
        while (!c->started.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(100));

      // The generator (or, with --wire, a sleeping main thread) and the control plane's reads.
      uint64_t moved = 0, polls = 0, empty_polls = 0, ctl_reads = 0, gen_cycles = 0, gen_busy_cycles = 0;
      uint32_t min_fill = UINT32_MAX;
      std::vector<Sample> s0(nq), s1(nq);
      const uint64_t hz = rte_get_tsc_hz();
      // 0: never; a rate above the loop's own (e.g. 1e9): back to back, as a worst case.
      const uint64_t ctl_every = ctl_hz > 0 ? std::max<uint64_t>(1, uint64_t(double(hz) / ctl_hz)) : UINT64_MAX / 2;
      auto phase = [&](double secs, bool count) {
        const uint64_t end = rte_rdtsc() + uint64_t(secs * double(hz));
        uint64_t next_ctl = rte_rdtsc() + ctl_every;
        void* ptrs[256];
        uint64_t prev = rte_rdtsc();
        bool prev_busy = false;
        for (uint64_t it = 0;; it++) {
          const uint64_t now = rte_rdtsc();
          if (count) {  // the generator's time in iterations that moved packets
            gen_cycles += now - prev;
            if (prev_busy) gen_busy_cycles += now - prev;
          }
          prev = now;
          prev_busy = false;
          if (now >= end) break;
          if (now >= next_ctl) {
            const control::WorkerTotals tot = control::sumWorkers(state_ptrs, backend_ids, 2);
            ctl_reads += tot.counters.get(Ctr::RxPackets) != 0;
            next_ctl += ctl_every;
          }
          if (wire) {
            const uint64_t until = std::min(end, next_ctl);
            const uint64_t t_now = rte_rdtsc();
            if (until > t_now) std::this_thread::sleep_for(std::chrono::nanoseconds((until - t_now) * 1'000'000'000 / hz));
            continue;
          }
          for (uint16_t q = 0; q < nq; q++) {
            const unsigned n = rte_ring_dequeue_burst(lan_tx[q], ptrs, 256, nullptr);
            prev_busy |= n != 0;
            if (count) {
              polls++;
              empty_polls += n == 0;
              moved += n;
            }
            if (n != 0 && rte_ring_enqueue_burst(wan_rx[q], ptrs, n, nullptr) != n) die("rx ring full");
            if (count && (it & 63) == 0) min_fill = std::min(min_fill, rte_ring_count(wan_rx[q]));
          }
        }
      };
      phase(warm_s, false);
      for (uint16_t q = 0; q < nq; q++) s0[q] = sample(mode, *states[q], stats[q]);
      const auto t0 = Clock::now();
      phase(seconds, true);
      for (uint16_t q = 0; q < nq; q++) s1[q] = sample(mode, *states[q], stats[q]);
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      shared.stop.store(true);
      for (auto& th : threads) th.join();
      collect(name(mode));

      Sample d;
      double max_share = 0;
      for (uint16_t q = 0; q < nq; q++) {
        const Sample x = s1[q] - s0[q];
        d.rx += x.rx;
        d.tx += x.tx;
        d.dropped += x.dropped;
        d.loops += x.loops;
        d.busy_loops += x.busy_loops;
        d.busy_cycles += x.busy_cycles;
        d.total_cycles += x.total_cycles;
        max_share = std::max(max_share, double(x.tx));
      }
      if (d.dropped != 0) die(std::string(name(mode)) + ": " + std::to_string(d.dropped) + " packets dropped");
      const double mpps = double(d.tx) / dt / 1e6;
      if (mode == Mode::L4lb) l4lb_mpps = mpps;
      if (mode == Mode::Swap5) swap_mpps = mpps;
      Record rec{"ports", label, run, {}, {}};
      rec.tag("mode", name(mode))
          .add("mpps", mpps)
          .add("workers", nq)
          .add("mpps_per_worker", mpps / nq)
          // Worker-side cost: TSC cycles of the loops that received packets, per packet.
          .add("cycles_per_pkt", double(d.busy_cycles) / double(std::max<uint64_t>(d.rx, 1)))
          .add("tsc_mhz", double(hz) / 1e6)
          // Starvation: the share of the worker's time in loops whose RX polls all came back empty
          // (0: it always had work, so the rate is the worker's own), and of its loops.
          .add("worker_idle_time_share",  // (racy reads: total may lead busy by one loop)
               double(d.total_cycles > d.busy_cycles ? d.total_cycles - d.busy_cycles : 0) /
                   double(std::max<uint64_t>(d.total_cycles, 1)))
          .add("worker_empty_loop_share", double(d.loops - d.busy_loops) / double(std::max<uint64_t>(d.loops, 1)))
          .add("busiest_worker_share", d.tx ? max_share / double(d.tx) : 0)
          .add("mbufs", nmbufs)
          .add("ctl_reads", double(ctl_reads));
      if (!wire) {
        rec.add("gen_mpps", double(moved) / dt / 1e6)
            .add("gen_empty_poll_share", double(empty_polls) / double(std::max<uint64_t>(polls, 1)))
            // The generator's time moving packets: far below 1 means it waited for the contender.
            .add("gen_busy_time_share", double(gen_busy_cycles) / double(std::max<uint64_t>(gen_cycles, 1)))
            .add("rx_ring_min_fill", min_fill == UINT32_MAX ? NAN : double(min_fill));
      }
      if (mode == Mode::L4lb) l4lb_rec = int(recs.size());
      recs.push_back(rec);
    }
    // The ratio of the same run, both contenders on the same ports and packets.
    if (l4lb_rec >= 0 && swap_mpps > 0) recs[size_t(l4lb_rec)].add("vs_testpmd", l4lb_mpps / swap_mpps);
    for (const Record& r : recs) r.print();
  }
  for (rte_mbuf* m : pop) rte_pktmbuf_free(m);
  closeRingPort(wan);
  closeRingPort(lan);
  for (rte_ring* r : owned) rte_ring_free(r);
  states.clear();
  rte_free(qs);
  rte_mempool_free(pool);
  stopEal();
  return 0;
}

}  // namespace l4lb::perf
