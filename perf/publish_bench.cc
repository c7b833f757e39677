// Snapshot publish latency: SnapshotPublisher::publish (release store, rte_rcu_qsbr_synchronize
// until the worker has passed a quiescent state, free the old snapshot) while a worker on its own
// lcore forwards in-memory traffic flat out, with the same per-loop QSBR protocol as
// dataplane::workerMain (quiescent, load the snapshot once, process a burst, sweep).
// The build (SnapshotBuilder::build) is timed separately: it runs before publish on the control
// thread and never blocks the workers.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "benches.h"
#include "control/publisher.h"
#include "control/snapshot_builder.h"
#include "dataplane/worker.h"
#include "traffic.h"

namespace l4lb::perf {

namespace {

using dataplane::kBurst;

struct BusyWorker {
  dataplane::DataplaneShared* shared;
  dataplane::WorkerState* state;
  const TrafficSpec* spec;
  const std::vector<uint32_t>* seq;
  bool sweep;
  bool rt;
  std::atomic<uint64_t> packets{0}, sent{0}, loops{0};
};

// SCHED_FIFO: what an isolated core gives a production worker, on a machine where the cores are
// shared. The kernel's RT throttling (sched_rt_runtime_us) still leaves other tasks 5 %.
void setRealtime() {
  sched_param p{};
  p.sched_priority = 1;
  if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) != 0) die("SCHED_FIFO refused");
}

int busyWorkerMain(void* arg) {
  auto* b = static_cast<BusyWorker*>(arg);
  dataplane::WorkerState& w = *b->state;
  dataplane::DataplaneShared& sh = *b->shared;
  MbufStock stock("perf_pub_worker");
  BurstSource src(*b->spec, *b->seq);
  rte_mbuf* pkts[kBurst];
  dataplane::TxBatch tx;
  uint64_t packets = 0, sent = 0, loops = 0;
  if (b->rt) setRealtime();
  rte_rcu_qsbr_thread_register(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_online(sh.qsbr, w.index);
  while (!sh.stop.load(std::memory_order_relaxed)) {
    rte_rcu_qsbr_quiescent(sh.qsbr, w.index);
    const Snapshot* s = sh.snapshot.load(std::memory_order_acquire);
    const uint32_t now = dataplane::nowMs();
    stock.take(pkts, kBurst);
    src.fill(pkts, kBurst);
    tx.clear();
    dataplane::processBurst(w, *s, pkts, kBurst, 0, now, tx);
    for (uint16_t p = 0; p < kMaxPorts; p++) {
      stock.give(tx.pkts[p].data(), tx.n[p]);
      sent += tx.n[p];
    }
    if (b->sweep) {
      dataplane::sweepFlows(w, now, s->timeouts);
    }
    packets += kBurst;
    if ((++loops & 255) == 0) {
      b->packets.store(packets, std::memory_order_relaxed);
      b->sent.store(sent, std::memory_order_relaxed);
      b->loops.store(loops, std::memory_order_relaxed);
    }
  }
  b->packets.store(packets);
  b->sent.store(sent);
  b->loops.store(loops);
  rte_rcu_qsbr_thread_offline(sh.qsbr, w.index);
  rte_rcu_qsbr_thread_unregister(sh.qsbr, w.index);
  return 0;
}

}  // namespace

int publishMain(const Options& o) {
  const uint32_t count = uint32_t(o.u64("count", 500));
  const int runs = int(o.u64("runs", 5));
  const uint32_t backends = uint32_t(o.u64("backends", 100));
  const uint32_t flows = uint32_t(o.u64("flows", 10'000));
  const unsigned control_core = unsigned(o.u64("control-core", 0));
  const unsigned worker_core = unsigned(o.u64("worker-core", 1));
  const uint64_t gap_us = o.u64("gap-us", 1000);
  const std::string label = o.str("label", "publish");
  // --no-sweep: the loop without FlowTable::sweep, to show the latency a cheaper loop would give.
  const bool sweep = !o.flag("no-sweep");
  // --rt: worker and control thread SCHED_FIFO (see setRealtime).
  const bool rt = o.flag("rt");
  o.rejectUnknown();
  if (backends < 2) die("--backends: at least 2");
  startEal(std::to_string(control_core) + "," + std::to_string(worker_core), 1024);
  {
    TrafficSpec t;
    t.flows = flows;
    const auto seq = makeSequence(t, 1u << 20);
    control::Config cfg = benchConfig(t, FwdMode::Dsr, backends);
    control::SnapshotBuilder sb;

    dataplane::DataplaneShared shared;
    const size_t qsz = rte_rcu_qsbr_get_memsize(1);
    shared.qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("perf_qsbr", qsz, RTE_CACHE_LINE_SIZE));
    if (shared.qsbr == nullptr || rte_rcu_qsbr_init(shared.qsbr, 1) != 0) die("rte_rcu_qsbr_init failed");
    control::SnapshotPublisher pub(shared);
    pub.publish(buildSnapshot(sb, cfg));

    dataplane::WorkerState w;
    w.index = 0;
    std::string err;
    w.flows4 = dataplane::FlowTable::create("pub4", 1u << 20, sizeof(dataplane::FlowKey4), SOCKET_ID_ANY, err);
    w.flows6 = dataplane::FlowTable::create("pub6", 1u << 20, sizeof(dataplane::FlowKey6), SOCKET_ID_ANY, err);
    if (!w.flows4 || !w.flows6) die(err);

    BusyWorker bw{&shared, &w, &t, &seq, sweep, rt};
    if (rt) setRealtime();
    if (rte_eal_remote_launch(busyWorkerMain, &bw, worker_core) != 0) die("cannot launch the worker lcore");
    while (bw.loops.load() < 256) std::this_thread::yield();

    const double hz = double(rte_get_tsc_hz());
    for (int run = 0; run < runs; run++) {
      std::vector<double> build_ms, publish_ms;
      const uint64_t p0 = bw.packets.load(), l0 = bw.loops.load();
      const uint64_t c0 = rte_rdtsc();
      for (uint32_t i = 0; i < count; i++) {
        // A real change every time: one backend's weight flips between 1 and 2.
        auto& be = cfg.vips[0].backends[i % backends];
        be.weight = be.weight == 1 ? 2 : 1;
        const uint64_t t0 = rte_rdtsc();
        auto next = buildSnapshot(sb, cfg);
        const uint64_t t1 = rte_rdtsc();
        pub.publish(std::move(next));
        const uint64_t t2 = rte_rdtsc();
        build_ms.push_back(double(t1 - t0) / hz * 1e3);
        publish_ms.push_back(double(t2 - t1) / hz * 1e3);
        std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
      }
      const double secs = double(rte_rdtsc() - c0) / hz;
      const uint64_t pk = bw.packets.load() - p0, loops = bw.loops.load() - l0;
      if (loops < count) die("worker made " + std::to_string(loops) + " loops during " + std::to_string(count) + " publishes: not busy");
      Record{"publish", label, run}
          .tag("sweep", sweep ? "yes" : "no")
          .tag("sched", rt ? "fifo" : "other")
          .add("publishes", count)
          .add("backends", backends)
          .add("publish_p50_ms", percentile(publish_ms, 50))
          .add("publish_p99_ms", percentile(publish_ms, 99))
          .add("publish_max_ms", percentile(publish_ms, 100))
          .add("build_p50_ms", percentile(build_ms, 50))
          .add("build_p99_ms", percentile(build_ms, 99))
          .add("worker_mpps", double(pk) / secs / 1e6)
          .print();
    }
    shared.stop.store(true);
    rte_eal_wait_lcore(worker_core);
    if (bw.sent.load() != bw.packets.load() || w.counters.totalDrops() != 0)
      die("worker dropped " + std::to_string(bw.packets.load() - bw.sent.load()) + " packets");
    w.flows4.reset();
    w.flows6.reset();
    rte_free(shared.qsbr);  // the publisher's destructor needs only shared.snapshot
  }
  // The publisher (destroyed above) freed the last snapshot; the QSBR area is ours.
  stopEal();
  return 0;
}

}  // namespace l4lb::perf
