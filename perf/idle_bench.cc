// What the adaptive idle back-off ([eal] idle_backoff, src/dataplane/idle_backoff.h) costs, on
// the real dataplane::workerMain polling a net_ring port on its own lcore:
//  - latency: after the worker has been idle for --idle-ms, one packet is put on its RX ring and
//    the time until its frame is on the TX ring is taken (min / median / p99 / max over
//    --samples), with the back-off off and on;
//  - throughput under continuous load: the control thread keeps --inflight frames circulating
//    (TX ring -> RX ring, unchanged: see kBackendMac), so the worker never sees an empty poll; Mpps forwarded
//    over --seconds, off and on (the back-off's only cost there is one branch per loop);
//  - the worker thread's CPU time while idle, as a share of wall time.
// One JSON line per run (bench "idle"); the ring side runs on the main lcore, so both cores are
// busy during the throughput runs.
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "benches.h"
#include "control/publisher.h"
#include "control/snapshot_builder.h"
#include "dataplane/worker.h"
#include "../tests/common/packet_builder.h"

namespace l4lb::perf {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kRingSize = 4096;
const MacAddr kWanMac{{0x02, 0, 0, 0, 0x0e, 0}};
// The backend's MAC is the wan port's and the lan port's is the client's: a forwarded DSR frame
// is then byte for byte the frame that came in, and the ring side recycles it without touching
// packet data, so the worker, not the recycling, is the bottleneck.
const MacAddr kClientMac{{0x02, 0, 0, 0, 0xc0, 1}};
const MacAddr kLanMac = kClientMac;
const MacAddr kBackendMac = kWanMac;

struct RingPort {
  uint16_t port_id = 0;
  rte_ring* rx = nullptr;
  rte_ring* tx = nullptr;
};

RingPort makePort(const std::string& name, rte_mempool* pool) {
  RingPort p;
  p.rx = rte_ring_create(("ib_" + name + "_rx").c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  p.tx = rte_ring_create(("ib_" + name + "_tx").c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!p.rx || !p.tx) die("ring " + name);
  const int id = rte_eth_from_rings(("net_ring_ib_" + name).c_str(), &p.rx, 1, &p.tx, 1, SOCKET_ID_ANY);
  if (id < 0) die("rte_eth_from_rings " + name);
  p.port_id = uint16_t(id);
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(p.port_id, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(p.port_id, 0, kRingSize, SOCKET_ID_ANY, nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(p.port_id, 0, kRingSize, SOCKET_ID_ANY, nullptr) != 0 || rte_eth_dev_start(p.port_id) != 0)
    die("port setup " + name);
  return p;
}

control::Config benchConfig() {
  control::Config c;
  control::PortConfig wan, lan;
  wan.name = "wan";
  wan.device = "net_ring_ib_wan";
  wan.ipv4 = *Prefix::parse("198.18.0.1/24");
  lan.name = "lan";
  lan.device = "net_ring_ib_lan";
  lan.ipv4 = *Prefix::parse("198.19.0.1/24");
  c.ports = {wan, lan};
  control::VipConfig v;
  v.address = *IpAddr::parse("198.18.1.1");
  v.port = 80;
  v.protocol = Proto::Tcp;
  v.scheduler = Scheduler::Maglev;
  control::BackendConfig b;
  b.address = *IpAddr::parse("198.19.0.10");
  b.mac = kBackendMac;
  v.backends.push_back(b);
  c.vips.push_back(v);
  c.flow_table.tcp_established_timeout_ms = 3'600'000;
  return c;
}

std::vector<uint8_t> frameFor(uint32_t flow) {
  return test::PacketBuilder()
      .eth(kClientMac, kWanMac)
      .ipv4(IpAddr::v4(rte_cpu_to_be_32(0xc6128000u + flow % 0x7fff)), *IpAddr::parse("198.18.1.1"))
      .tcp(uint16_t(1024 + flow % 50000), 80, 0x10)
      .payload(18)  // 64-byte frames
      .build();
}

struct Run {
  dataplane::WorkerArgs args;
  bool rt = false;
  std::atomic<bool> started{false};
  clockid_t cpu{};
};

// SCHED_FIFO, as publish_bench: on this shared machine a CFS thread is descheduled for
// milliseconds at a time, which would let the worker run dry under "continuous" load.
void setRealtime() {
  sched_param p{};
  p.sched_priority = 1;
  if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) != 0) die("SCHED_FIFO refused");
}

int runWorker(void* arg) {
  auto* r = static_cast<Run*>(arg);
  if (r->rt) setRealtime();
  pthread_getcpuclockid(pthread_self(), &r->cpu);
  r->started.store(true, std::memory_order_release);
  return dataplane::workerMain(&r->args);
}

double cpuSeconds(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

}  // namespace

int idleMain(const Options& o) {
  const unsigned worker_core = unsigned(o.u64("worker-core", 1));
  const unsigned main_core = unsigned(o.u64("main-core", 0));
  const int runs = int(o.u64("runs", 3));
  const double seconds = o.dbl("seconds", 2.0);
  const uint32_t samples = uint32_t(o.u64("samples", 200));
  const uint32_t idle_ms = uint32_t(o.u64("idle-ms", 5));
  const uint32_t inflight = uint32_t(o.u64("inflight", 2048));
  const uint32_t flows = uint32_t(o.u64("flows", 1024));
  const uint32_t cap_us = uint32_t(o.u64("cap-us", 1000));
  const uint32_t polls = uint32_t(o.u64("polls", 256));
  const std::string label = o.str("label", "idle");
  const bool rt = o.flag("rt");
  o.rejectUnknown();
  if (inflight + 64 > kRingSize) die("--inflight must be <= " + std::to_string(kRingSize - 64));
  startEal(std::to_string(main_core) + "," + std::to_string(worker_core), 512);
  if (rt) setRealtime();
  const unsigned lcore = rte_get_next_lcore(-1, 1, 0);

  rte_mempool* pool = rte_pktmbuf_pool_create("ib_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool == nullptr) die("mbuf pool");
  RingPort wan = makePort("wan", pool), lan = makePort("lan", pool);
  const size_t qsz = rte_rcu_qsbr_get_memsize(1);
  auto* qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc("ib_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (qs == nullptr || rte_rcu_qsbr_init(qs, 1) != 0) die("qsbr");
  dataplane::DataplaneShared shared;
  shared.qsbr = qs;
  shared.port_ids = {wan.port_id, lan.port_id};
  control::SnapshotBuilder sb;
  control::SnapshotPublisher pub(shared);
  {
    control::BuildResult r = sb.build(benchConfig(), {{wan.port_id, kWanMac}, {lan.port_id, kLanMac}});
    if (!r) die(r.joined());
    pub.publish(std::move(r.snapshot));
  }
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t f = 0; f < flows; f++) frames.push_back(frameFor(f));

  auto inject = [&](uint32_t f) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) die("mbuf pool empty");
    const auto& fr = frames[f % frames.size()];
    std::memcpy(rte_pktmbuf_append(m, uint16_t(fr.size())), fr.data(), fr.size());
    if (rte_ring_enqueue(wan.rx, m) != 0) die("rx ring full");
  };
  auto drain = [&]() {
    rte_mbuf* out[64];
    unsigned total = 0, n;
    while ((n = rte_ring_dequeue_burst(lan.tx, reinterpret_cast<void**>(out), 64, nullptr)) > 0) {
      rte_pktmbuf_free_bulk(out, n);
      total += n;
    }
    return total;
  };

  // Off and on alternate, so that drift in the machine's load hits both alike.
  for (int run = 0; run < runs; run++) {
    for (bool on : {false, true}) {
      const std::string mode = on ? "on" : "off";
      auto state = std::make_unique<dataplane::WorkerState>();
      std::string err;
      state->flows4 = dataplane::FlowTable::create("ib4_" + mode + std::to_string(run), 1u << 16,
                                                   sizeof(dataplane::FlowKey4), SOCKET_ID_ANY, err);
      state->flows6 = dataplane::FlowTable::create("ib6_" + mode + std::to_string(run), 1024,
                                                   sizeof(dataplane::FlowKey6), SOCKET_ID_ANY, err);
      if (!state->flows4 || !state->flows6) die(err);
      Run r;
      r.rt = rt;
      r.args = {state.get(), &shared, {{0, wan.port_id, 0}}, {on, polls, cap_us}};
      shared.stop.store(false);
      if (rte_eal_remote_launch(runWorker, &r, lcore) != 0) die("launch");
      while (!r.started.load(std::memory_order_acquire)) std::this_thread::yield();

      // Throughput: `inflight` frames circulate; the worker never sees an empty ring.
      for (uint32_t i = 0; i < inflight; i++) inject(i);
      uint64_t forwarded = 0;
      const uint64_t sleeps0 = state->load.idle_sleeps;
      const uint64_t busy0 = state->load.busy_cycles, rx0 = state->counters.get(Ctr::RxPackets);
      const auto t0 = Clock::now();
      const auto t_end = t0 + std::chrono::duration<double>(seconds);
      rte_mbuf* out[64];
      while (Clock::now() < t_end) {
        for (int k = 0; k < 16; k++) {
          const unsigned n = rte_ring_dequeue_burst(lan.tx, reinterpret_cast<void**>(out), 64, nullptr);
          const unsigned e = rte_ring_enqueue_burst(wan.rx, reinterpret_cast<void**>(out), n, nullptr);
          if (e != n) die("rx ring full while recycling");
          forwarded += n;
        }
      }
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      const uint64_t load_sleeps = state->load.idle_sleeps - sleeps0;
      // The worker's own cost per packet (TSC cycles of the loops that received packets): what
      // the worker could do, whatever the ring side feeds it.
      const double cyc_per_pkt =
          double(state->load.busy_cycles - busy0) / double(std::max<uint64_t>(state->counters.get(Ctr::RxPackets) - rx0, 1));
      // Let the circulating frames come out, then measure idle CPU and first-packet latency.
      auto until = Clock::now() + std::chrono::seconds(2);
      uint64_t drained = 0;
      while (drained < inflight && Clock::now() < until) drained += drain();
      const double c0 = cpuSeconds(r.cpu);
      const auto w0 = Clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const double idle_cpu = (cpuSeconds(r.cpu) - c0) / std::chrono::duration<double>(Clock::now() - w0).count();
      std::vector<double> lat;
      for (uint32_t s = 0; s < samples; s++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
        const auto p0 = Clock::now();
        inject(s);
        while (drain() == 0) {
          if (Clock::now() - p0 > std::chrono::seconds(2)) die("a packet was not forwarded within 2 s");
        }
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - p0).count());
      }
      shared.stop.store(true);
      rte_eal_wait_lcore(lcore);
      Record rec{"idle", label, run, {}, {}};
      rec.tag("mode", mode)
          .add("cap_us", on ? cap_us : 0)
          .add("polls_before_sleep", on ? polls : 0)
          .add("mpps", double(forwarded) / dt / 1e6)
          .add("busy_cycles_per_pkt", cyc_per_pkt)
          .add("tsc_mhz", double(rte_get_tsc_hz()) / 1e6)
          .add("sleeps_under_load", double(load_sleeps))
          .add("idle_cpu_share", idle_cpu)
          .add("first_pkt_us_min", percentile(lat, 0))
          .add("first_pkt_us_p50", percentile(lat, 50))
          .add("first_pkt_us_p99", percentile(lat, 99))
          .add("first_pkt_us_max", percentile(lat, 100))
          .add("idle_ms", idle_ms);
      rec.print();
    }
  }
  for (RingPort* p : {&wan, &lan}) {
    rte_eth_dev_stop(p->port_id);
    rte_eth_dev_close(p->port_id);
    rte_ring_free(p->rx);
    rte_ring_free(p->tx);
  }
  rte_free(qs);
  rte_mempool_free(pool);
  stopEal();
  return 0;
}

}  // namespace l4lb::perf
