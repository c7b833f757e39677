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
#include "control/ports.h"
#include "control/snapshot_builder.h"
#include "control/sync/sync_service.h"
#include "control/sync/sync_status.h"
#include "control/worker_totals.h"
#include "control/xdp_reclaim.h"
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
  for (const std::string& e : built.errors) std::fprintf(stderr, "%s: %s\n", path.c_str(), e.c_str());
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

int runDaemon(const DaemonOptions& opts) {
  ConfigResult cr = loadConfigFile(opts.config_path);
  if (!cr.ok()) {
    std::fprintf(stderr, "%s\n", cr.error.str().c_str());
    return 1;
  }
  const Config cfg = *cr.config;
  if (!validateSnapshot(cfg, opts.config_path)) return 1;

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
  for (const auto& p : cfg.ports) {
    if (!reclaim) break;
    if (p.exception_path == ExceptionPath::Xdp && !reclaimStaleXdp(p.kernel_iface, err)) {
      logError("port " + p.name + ": " + err);
      return 1;
    }
  }
  if (!initEal(cfg, err)) {
    logError(err);
    return 1;
  }
  const unsigned nworkers = unsigned(cfg.eal.worker_cores.size());
  Ports ports;
  if (!setupPorts(cfg, nworkers, ports, err)) {
    logError(err);
    rte_eal_cleanup();
    return 1;
  }

  dataplane::DataplaneShared shared;
  size_t qsz = rte_rcu_qsbr_get_memsize(nworkers);
  shared.qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("l4lb_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (shared.qsbr == nullptr || rte_rcu_qsbr_init(shared.qsbr, nworkers) != 0) {
    logError("RCU QSBR: " + std::string(rte_strerror(rte_errno)));
    stopPorts(ports);
    rte_eal_cleanup();
    return 1;
  }
  auto fail = [&](const std::string& msg) {
    logError(msg);
    stopPorts(ports);
    rte_free(shared.qsbr);
    rte_eal_cleanup();
    return 1;
  };

  auto cp = std::make_unique<ControlPlane>(cfg, opts.config_path, ports, shared);
  if (!cp->start(err)) {
    cp.reset();
    return fail(opts.config_path + ": " + err);
  }

  std::vector<std::unique_ptr<dataplane::WorkerState>> states;
  std::vector<dataplane::WorkerArgs> args(nworkers);
  for (unsigned w = 0; w < nworkers; w++) {
    auto st = std::make_unique<dataplane::WorkerState>();
    st->index = uint16_t(w);
    int socket = int(rte_lcore_to_socket_id(cfg.eal.worker_cores[w]));
    st->flows4 = dataplane::FlowTable::create("flows4_w" + std::to_string(w), cfg.flow_table.capacity,
                                              sizeof(dataplane::FlowKey4), socket, err);
    if (st->flows4)
      st->flows6 = dataplane::FlowTable::create("flows6_w" + std::to_string(w), cfg.flow_table.capacity,
                                                sizeof(dataplane::FlowKey6), socket, err);
    if (!st->flows4 || !st->flows6) {
      cp.reset();
      return fail(err + " (lower flow_table.capacity or give EAL more memory)");
    }
    // Held fragments are mbufs of the shared pool, which setupPorts sized with room for every
    // worker's max_held: holding can never starve RX.
    st->frags = std::make_unique<dataplane::FragTable>(cfg.fragments.table_size, cfg.fragments.max_held,
                                                       cfg.fragments.max_held_per_datagram);
    args[w].state = st.get();
    args[w].shared = &shared;
    args[w].idle = {cfg.eal.idle_backoff, cfg.eal.idle_polls_before_sleep, cfg.eal.idle_sleep_max_us};
    states.push_back(std::move(st));
  }
  // Fragment rings (several workers only): any worker hands a fragment to its owner's ring.
  std::vector<rte_ring*> frag_rings;
  if (nworkers > 1) {
    for (unsigned w = 0; w < nworkers; w++) {
      const std::string name = "frag_ring_w" + std::to_string(w);
      rte_ring* r = rte_ring_create(name.c_str(), dataplane::kFragRingSize,
                                    int(rte_lcore_to_socket_id(cfg.eal.worker_cores[w])), RING_F_SC_DEQ);
      if (r == nullptr) {
        for (rte_ring* x : frag_rings) rte_ring_free(x);
        cp.reset();
        return fail("fragment ring " + name + ": " + rte_strerror(rte_errno));
      }
      frag_rings.push_back(r);
    }
    for (auto& st : states) st->frag_rings = frag_rings;
  }
  for (auto& st : states) st->outer_frag = {ports.frag_direct, ports.frag_indirect};
  {
    std::vector<const dataplane::WorkerState*> ro;
    for (const auto& st : states) ro.push_back(st.get());
    cp->setWorkers(std::move(ro), cfg.flow_table.capacity);
    std::vector<dataplane::FlowQuery*> queries;
    for (const auto& st : states) queries.push_back(&st->query);
    cp->setFlowQueries(std::move(queries));
  }
  // Flow sync ([sync] enabled only): each worker's two rings, then the sync thread, before the
  // workers start (they push to sync_out from their first packet).
  std::unique_ptr<sync::SyncService> sync_service;
  if (cfg.sync.enabled) {
    sync::SyncServiceOptions so;
    so.listen = cfg.sync.listen;
    so.peers = cfg.sync.peers;
    so.key = cfg.sync.key;
    for (auto& st : states) {
      if (!dataplane::createSyncRings(*st, sync::kSyncRingSize, err)) {
        states.clear();
        cp.reset();
        return fail("sync: " + err);
      }
      so.out_rings.push_back(st->sync_out);
      so.in_rings.push_back(st->sync_in);
    }
    std::vector<sync::PortRss> rss;
    for (size_t p = 0; p < ports.runtime.size(); p++)
      rss.push_back(sync::queryPortRss(ports.runtime[p].port_id, ports.rx_queues[p]));
    so.owner = sync::FlowOwner(nworkers, std::move(rss));
    sync_service = std::make_unique<sync::SyncService>(std::move(so));
    if (!sync_service->start(err)) {
      sync_service.reset();
      states.clear();
      cp.reset();
      return fail(opts.config_path + ": " + err);
    }
    cp->setSync(sync_service.get());
    logInfo("sync: listening on " + cfg.sync.listen.str() + ", " + std::to_string(cfg.sync.peers.size()) +
            " peers, announce every " + std::to_string(cfg.sync.announce_interval_ms) + " ms");
  }

  // RX queue q of every port goes to worker q % workers; every worker has TX queue = its index.
  // A tap's single RX queue (what the kernel sends) is polled by worker 0.
  const Snapshot* first = cp->current();
  for (size_t p = 0; p < ports.runtime.size(); p++) {
    for (uint16_t q = 0; q < ports.rx_queues[p]; q++)
      args[q % nworkers].rx.push_back({uint16_t(p), ports.runtime[p].port_id, q});
    if (ports.runtime[p].tap_port_id >= 0) {
      const uint16_t tap = uint16_t(ports.runtime[p].tap_port_id);
      args[0].rx.push_back({uint16_t(first->port_index_by_id.at(tap)), tap, 0});
    }
  }

  for (unsigned w = 0; w < nworkers; w++) {
    int ret = rte_eal_remote_launch(dataplane::workerMain, &args[w], cfg.eal.worker_cores[w]);
    if (ret != 0) {
      shared.stop = true;
      rte_eal_mp_wait_lcore();
      if (sync_service) sync_service->stop();
      cp.reset();
      return fail("launching worker on core " + std::to_string(cfg.eal.worker_cores[w]) + ": " + rte_strerror(-ret));
    }
  }
  logInfo("started: " + std::to_string(nworkers) + " workers, " + std::to_string(ports.runtime.size()) + " ports, " +
          std::to_string(first->vips.size()) + " VIPs (config " + opts.config_path + ")");
  cp->announceReady();

  cp->run();

  shared.stop.store(true);
  rte_eal_mp_wait_lcore();  // workers return after sending what they had (TX is per burst)
  if (sync_service) sync_service->stop();  // before the rings go with the WorkerStates

  nlohmann::json workers = nlohmann::json::array();
  std::vector<const dataplane::WorkerState*> ro;
  for (const auto& st : states) {
    workers.push_back(countersJson(st->counters));
    ro.push_back(st.get());
  }
  const WorkerCounters total = sumWorkers(ro).counters;
  logInfo("stopped: rx " + std::to_string(total.get(Ctr::RxPackets)) + " tx " +
          std::to_string(total.get(Ctr::TxPackets)) + " dropped " + std::to_string(total.totalDrops()));
  if (!opts.stats_file.empty()) {
    const ControlStats& cs = cp->stats();
    nlohmann::json control{{"reloads_ok", cs.reloads_ok},
                           {"reloads_failed", cs.reloads_failed},
                           {"publishes", cs.publishes},
                           {"health_transitions", cs.health_transitions},
                           {"neighbour_changes", cs.neighbour_changes}};
    nlohmann::json stats{{"total", countersJson(total)},
                         {"workers", workers},
                         {"control", control},
                         {"backends", nlohmann::json::parse(cp->backendsJson())}};
    if (sync_service) stats["sync"] = sync::syncStatusJson(sync_service->status());
    std::ofstream f(opts.stats_file);
    f << stats.dump(2) << "\n";
    if (!f) logError("cannot write " + opts.stats_file);
  }

  cp.reset();  // frees the last snapshot: workers have stopped
  stopPorts(ports);
  states.clear();
  for (rte_ring* r : frag_rings) {
    void* m;
    while (rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  }
  rte_free(shared.qsbr);
  freePools(ports);
  rte_eal_cleanup();
  return 0;
}

}  // namespace l4lb::control
