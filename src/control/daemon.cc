#include "control/daemon.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "control/config.h"
#include "control/control_plane.h"
#include "control/log.h"
#include "control/memory_estimate.h"
#include "control/ports.h"
#include "control/snapshot_builder.h"
#include "control/sync/sync_service.h"
#include "control/sync/sync_status.h"
#include "control/worker_totals.h"
#include "control/xdp_reclaim.h"
#include "control/snat_pools.h"
#include "dataplane/sync_rings.h"
#include "dataplane/worker.h"

namespace l4lb::control {

namespace {

nlohmann::json countersJson(const WorkerCounters& c) {
  nlohmann::json drops = nlohmann::json::object(), ctrs = nlohmann::json::object();
  for (size_t i = 1; i < size_t(Drop::Count); i++) drops[std::string(kDropNames[i])] = c.drops[i];
  for (size_t i = 0; i < size_t(Ctr::Count); i++) ctrs[std::string(kCtrNames[i])] = c.ctrs[i];
  return {{"drops", drops}, {"counters", ctrs}};
}

// The checks that need the whole picture (routes, neighbours, NAT reply keys) live in the
// snapshot builder; run it on stand-in port ids so --check-config and start-up refuse the same
// files, and a bad file is refused before the EAL starts. Messages are "file: key.path: ...".
bool validateSnapshot(const Config& cfg, const std::string& path) {
  std::vector<PortRuntime> rt(cfg.ports.size());
  for (size_t i = 0; i < rt.size(); i++) rt[i].port_id = uint16_t(i);
  SnapshotBuilder builder;
  BuildResult built = builder.build(cfg, rt);
  if (built) return true;
  for (const std::string& e : placeMessages(path, built.errors)) std::fprintf(stderr, "%s\n", e.c_str());
  return false;
}

}  // namespace

int checkConfig(const std::string& path) {
  ConfigResult r = loadConfigFile(path);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error.str().c_str());
    return 1;
  }
  if (!validateSnapshot(*r.config, path)) return 1;
  size_t nb = 0;
  for (const auto& v : r.config->vips) nb += v.backends.size();
  std::printf("%s: OK (%zu ports, %zu VIPs, %zu backends, %zu workers)\n", path.c_str(), r.config->ports.size(),
              r.config->vips.size(), nb, r.config->eal.worker_cores.size());
  for (const std::string& n : r.notes) std::printf("%s\n", n.c_str());
  std::printf("%s: memory: %s\n", path.c_str(), describe(estimateMemory(*r.config, pageBytes(r.config->eal))).c_str());
  return 0;
}

int printConfigKeys(const std::string& path) {
  ConfigResult r = loadConfigFile(path);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error.str().c_str());
    return 1;
  }
  // Sorted, so a table's keys follow it: a key that another one extends is a table.
  for (size_t i = 0; i < r.keys.size(); i++) {
    const std::string& k = r.keys[i];
    const bool table = i + 1 < r.keys.size() && r.keys[i + 1].rfind(k + ".", 0) == 0;
    if (!table) std::printf("%s\n", k.c_str());
  }
  return 0;
}

int printConfigSections(const std::string& path) {
  ConfigResult r = loadConfigFile(path);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error.str().c_str());
    return 1;
  }
  for (const std::string& s : r.sections) std::printf("%s\n", s.c_str());
  return 0;
}

namespace {

// What runDaemon has brought up, step by step, so that teardown() takes down exactly that: after
// a clean stop and after a step that failed half-way alike.
struct Daemon {
  std::string config_path;
  Config cfg;
  unsigned nworkers = 0;
  bool eal_up = false;
  bool ports_up = false;
  Ports ports;
  dataplane::DataplaneShared shared;
  std::unique_ptr<ControlPlane> cp;
  std::vector<std::unique_ptr<dataplane::WorkerState>> states;
  std::vector<dataplane::WorkerArgs> args;
  std::vector<rte_ring*> handoff_rings;
  std::unique_ptr<sync::SyncService> sync_service;
  bool workers_launched = false;
};

// Config: load and validate the whole file before anything starts.
bool readConfig(Daemon& d) {
  ConfigResult cr = loadConfigFile(d.config_path);
  if (!cr.ok()) {
    std::fprintf(stderr, "%s\n", cr.error.str().c_str());
    return false;
  }
  d.cfg = *cr.config;
  d.nworkers = unsigned(d.cfg.eal.worker_cores.size());
  for (const std::string& n : cr.notes) logInfo(n);
  logInfo("memory for tables and pools: " + describe(estimateMemory(d.cfg, pageBytes(d.cfg.eal))));
  return validateSnapshot(d.cfg, d.config_path);
}

// EAL: signals blocked first, stale XDP programs reclaimed, then rte_eal_init.
bool startEal(Daemon& d) {
  // Signals are taken synchronously by the control loop (signalfd); block them before EAL
  // starts threads so every thread inherits the mask and none is interrupted.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  if (ControlPlane::testHooksEnabled()) sigaddset(&sigs, SIGUSR2);
  if (admissionDisabledForTests()) logWarn("test hook: flood admission disabled (L4LB_TEST_NO_ADMISSION=1)");
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  std::string err;
  // Before the AF_XDP PMD attaches our program: one a killed l4lb left would make it fail.
  // L4LB_TEST_NO_XDP_RECLAIM=1 (with L4LB_TEST_HOOKS=1) skips this: the tests' negative control.
  const char* no_reclaim = std::getenv("L4LB_TEST_NO_XDP_RECLAIM");
  const bool reclaim = !(ControlPlane::testHooksEnabled() && no_reclaim && std::string(no_reclaim) == "1");
  if (!reclaim) logWarn("test hook: stale XDP programs are not reclaimed (L4LB_TEST_NO_XDP_RECLAIM=1)");
  for (const auto& p : d.cfg.ports) {
    if (!reclaim) break;
    if (p.exception_path == ExceptionPath::Xdp && !reclaimStaleXdp(p.kernel_iface, err)) {
      logError("port " + p.name + ": " + err);
      return false;
    }
  }
  if (!initEal(d.cfg, err)) {
    logError(err);
    return false;
  }
  d.eal_up = true;
  return true;
}

// Ports: pools, queues and links (control/ports.h).
bool startPorts(Daemon& d) {
  std::string err;
  if (!setupPorts(d.cfg, d.nworkers, d.ports, err)) {
    logError(err);
    return false;
  }
  d.ports_up = true;
  return true;
}

// The control plane and the RCU state it publishes snapshots through: one QSBR thread id per
// worker.
bool startControlPlane(Daemon& d) {
  size_t qsz = rte_rcu_qsbr_get_memsize(d.nworkers);
  d.shared.qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("l4lb_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (d.shared.qsbr == nullptr || rte_rcu_qsbr_init(d.shared.qsbr, d.nworkers) != 0) {
    logError("RCU QSBR: " + std::string(rte_strerror(rte_errno)));
    return false;
  }
  std::string err;
  d.cp = std::make_unique<ControlPlane>(d.cfg, d.config_path, d.ports, d.shared);
  if (!d.cp->start(err)) {
    logError(d.config_path + ": " + err);
    return false;
  }
  return true;
}

// Workers: each one's flow tables (on its core's NUMA node) and fragment table.
bool createWorkers(Daemon& d) {
  const Config& cfg = d.cfg;
  std::string err;
  d.args.resize(d.nworkers);
  // The ports' RSS (key, hash types, RETA), for full NAT's steering (snat_pools.h, snatRss).
  std::vector<sync::PortRss> rss;
  if (d.nworkers > 1)
    for (size_t p = 0; p < d.ports.runtime.size(); p++)
      rss.push_back(sync::queryPortRss(d.ports.runtime[p].port_id, d.ports.rx_queues[p]));
  for (unsigned w = 0; w < d.nworkers; w++) {
    auto st = std::make_unique<dataplane::WorkerState>();
    st->index = uint16_t(w);
    int socket = int(rte_lcore_to_socket_id(cfg.eal.worker_cores[w]));
    st->flows4 = dataplane::FlowTable::create("flows4_w" + std::to_string(w), cfg.flow_table.capacity,
                                              sizeof(dataplane::FlowKey4), socket, err);
    if (st->flows4)
      st->flows6 = dataplane::FlowTable::create("flows6_w" + std::to_string(w), cfg.flow_table.capacity,
                                                sizeof(dataplane::FlowKey6), socket, err);
    if (!st->flows4 || !st->flows6) {
      logError(err + " (lower flow_table.capacity or give EAL more memory)");
      return false;
    }
    // Full NAT: this worker's share of every source address, sized once (a reload cannot
    // change the list, reload.cc), its free pairs sorted by where RSS sends their replies.
    if (const SnatPools pools = snatPools(cfg); !pools.addrs.empty()) {
      const dataplane::SnatRss steer = snatRss(rss, w, d.nworkers);
      if (w == 0 && d.nworkers > 1) {
        size_t n = 0;
        for (const auto& p : steer.ports) n += p.mine.empty() ? 0 : 1;
        logInfo("full NAT: replies steered to their worker by RSS on " + std::to_string(n) + " of " +
                std::to_string(steer.ports.size()) + " ports; elsewhere they may take the hand-off ring");
      }
      st->fullnat =
          dataplane::FullNatState::create(pools.addrs, uint16_t(w), uint16_t(d.nworkers), socket, err, steer);
      st->snat_ports.resize(pools.addrs.size());
      if (!st->fullnat) {
        logError(err + " (full NAT's session index; give EAL more memory)");
        return false;
      }
    }
    // Held fragments are mbufs of the shared pool, which setupPorts sized with room for every
    // worker's max_held: holding can never starve RX.
    st->frags = std::make_unique<dataplane::FragTable>(cfg.fragments.table_size, cfg.fragments.max_held,
                                                       cfg.fragments.max_held_per_datagram);
    d.args[w].state = st.get();
    d.args[w].shared = &d.shared;
    d.args[w].idle = {cfg.eal.idle_backoff, cfg.eal.idle_polls_before_sleep, cfg.eal.idle_sleep_max_us};
    d.states.push_back(std::move(st));
  }
  return true;
}

// Rings between workers (several workers only: any worker hands a fragment, or a full-NAT reply,
// to its owner's ring), then the workers shown to the control plane.
bool createRings(Daemon& d) {
  if (d.nworkers > 1) {
    for (unsigned w = 0; w < d.nworkers; w++) {
      const std::string name = "handoff_ring_w" + std::to_string(w);
      rte_ring* r = rte_ring_create(name.c_str(), dataplane::kHandOffRingSize,
                                    int(rte_lcore_to_socket_id(d.cfg.eal.worker_cores[w])), RING_F_SC_DEQ);
      if (r == nullptr) {
        logError("hand-off ring " + name + ": " + rte_strerror(rte_errno));
        return false;
      }
      d.handoff_rings.push_back(r);
    }
    for (auto& st : d.states) st->handoff_rings = d.handoff_rings;
  }
  for (auto& st : d.states) st->outer_frag = {d.ports.frag_direct, d.ports.frag_indirect};
  std::vector<const dataplane::WorkerState*> ro;
  for (const auto& st : d.states) ro.push_back(st.get());
  d.cp->setWorkers(std::move(ro), d.cfg.flow_table.capacity);
  std::vector<dataplane::FlowQuery*> queries;
  for (const auto& st : d.states) queries.push_back(&st->query);
  d.cp->setFlowQueries(std::move(queries));
  return true;
}

// Services ([sync] enabled only): each worker's two sync rings, then the sync thread, before the
// workers start (they push to sync_out from their first packet).
bool startSync(Daemon& d) {
  const Config& cfg = d.cfg;
  if (!cfg.sync.enabled) return true;
  std::string err;
  sync::SyncServiceOptions so;
  so.listen = cfg.sync.listen;
  so.peers = cfg.sync.peers;
  so.key = cfg.sync.key;
  for (auto& st : d.states) {
    if (!dataplane::createSyncRings(*st, sync::kSyncRingSize, err)) {
      logError("sync: " + err);
      return false;
    }
    so.out_rings.push_back(st->sync_out);
    so.in_rings.push_back(st->sync_in);
  }
  std::vector<sync::PortRss> rss;
  for (size_t p = 0; p < d.ports.runtime.size(); p++)
    rss.push_back(sync::queryPortRss(d.ports.runtime[p].port_id, d.ports.rx_queues[p]));
  so.owner = sync::FlowOwner(d.nworkers, std::move(rss));
  d.sync_service = std::make_unique<sync::SyncService>(std::move(so));
  if (!d.sync_service->start(err)) {
    logError(d.config_path + ": " + err);
    d.sync_service.reset();
    return false;
  }
  d.cp->setSync(d.sync_service.get());
  logInfo("sync: listening on " + cfg.sync.listen.str() + ", " + std::to_string(cfg.sync.peers.size()) +
          " peers, announce every " + std::to_string(cfg.sync.announce_interval_ms) + " ms");
  return true;
}

// Launch: RX queues to workers, then every worker on its core. RX queue q of every port goes to
// worker q % workers; every worker has TX queue = its index. A tap's single RX queue (what the
// kernel sends) is polled by worker 0.
bool launchWorkers(Daemon& d) {
  const Snapshot* first = d.cp->current();
  const Ports& ports = d.ports;
  for (size_t p = 0; p < ports.runtime.size(); p++) {
    for (uint16_t q = 0; q < ports.rx_queues[p]; q++)
      d.args[q % d.nworkers].rx.push_back({uint16_t(p), ports.runtime[p].port_id, q});
    if (ports.runtime[p].tap_port_id >= 0) {
      const uint16_t tap = uint16_t(ports.runtime[p].tap_port_id);
      d.args[0].rx.push_back({uint16_t(first->port_index_by_id.at(tap)), tap, 0});
    }
  }
  d.workers_launched = true;  // from here on teardown stops (and waits for) the workers
  for (unsigned w = 0; w < d.nworkers; w++) {
    int ret = rte_eal_remote_launch(dataplane::workerMain, &d.args[w], d.cfg.eal.worker_cores[w]);
    if (ret != 0) {
      logError("launching worker on core " + std::to_string(d.cfg.eal.worker_cores[w]) + ": " + rte_strerror(-ret));
      return false;
    }
  }
  logInfo("started: " + std::to_string(d.nworkers) + " workers, " + std::to_string(ports.runtime.size()) + " ports, " +
          std::to_string(first->vips.size()) + " VIPs (config " + d.config_path + ")");
  // What the EAL's heaps hand out now, beside the estimate --check-config printed.
  uint64_t in_use = 0;
  for (unsigned s = 0; s < rte_socket_count(); s++) {
    rte_malloc_socket_stats st{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(s), &st) == 0) in_use += st.heap_allocsz_bytes;
  }
  logInfo("memory: EAL heap in use " + std::to_string(in_use >> 20) + " MiB; estimated " +
          describe(estimateMemory(d.cfg, pageBytes(d.cfg.eal))));
  return true;
}

// Workers return after sending what they had (TX is per burst); the sync thread stops before
// the rings go with the WorkerStates.
void stopWorkers(Daemon& d) {
  if (d.workers_launched) {
    d.shared.stop.store(true);
    rte_eal_mp_wait_lcore();
    d.workers_launched = false;
  }
  if (d.sync_service) d.sync_service->stop();
}

// After a clean stop: the totals in the log, and the stats file when asked for.
void reportStopped(const Daemon& d, const std::string& stats_file) {
  nlohmann::json workers = nlohmann::json::array();
  std::vector<const dataplane::WorkerState*> ro;
  for (const auto& st : d.states) {
    workers.push_back(countersJson(st->counters));
    ro.push_back(st.get());
  }
  const WorkerCounters total = sumWorkers(ro).counters;
  logInfo("stopped: rx " + std::to_string(total.get(Ctr::RxPackets)) + " tx " +
          std::to_string(total.get(Ctr::TxPackets)) + " dropped " + std::to_string(total.totalDrops()));
  if (stats_file.empty()) return;
  const ControlStats& cs = d.cp->stats();
  nlohmann::json control{{"reloads_ok", cs.reloads_ok},
                         {"reloads_failed", cs.reloads_failed},
                         {"publishes", cs.publishes},
                         {"health_transitions", cs.health_transitions},
                         {"neighbour_changes", cs.neighbour_changes}};
  nlohmann::json stats{{"total", countersJson(total)},
                       {"workers", workers},
                       {"control", control},
                       {"backends", nlohmann::json::parse(d.cp->backendsJson())}};
  if (d.sync_service) stats["sync"] = sync::syncStatusJson(d.sync_service->status());
  std::ofstream f(stats_file);
  f << stats.dump(2) << "\n";
  if (!f) logError("cannot write " + stats_file);
}

// Teardown, the start-up steps in reverse, of whatever came up: the control plane first (it
// frees the last snapshot, and reads the workers' states and the sync service until then),
// then the ports, the workers' tables and rings, the QSBR, the pools, the EAL.
void teardown(Daemon& d) {
  stopWorkers(d);
  d.cp.reset();
  d.sync_service.reset();
  if (d.ports_up) stopPorts(d.ports);
  d.states.clear();
  for (rte_ring* r : d.handoff_rings) {
    void* m;
    while (rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  }
  d.handoff_rings.clear();
  if (d.shared.qsbr != nullptr) rte_free(d.shared.qsbr);
  d.shared.qsbr = nullptr;
  if (d.ports_up) freePools(d.ports);
  if (d.eal_up) rte_eal_cleanup();
}

}  // namespace

int runDaemon(const DaemonOptions& opts) {
  Daemon d;
  d.config_path = opts.config_path;
  if (!readConfig(d)) return 1;
  const bool started = startEal(d) && startPorts(d) && startControlPlane(d) && createWorkers(d) && createRings(d) &&
                       startSync(d) && launchWorkers(d);
  if (started) {
    d.cp->announceReady();
    d.cp->run();
    stopWorkers(d);
    reportStopped(d, opts.stats_file);
  }
  teardown(d);
  return started ? 0 : 1;
}

}  // namespace l4lb::control
