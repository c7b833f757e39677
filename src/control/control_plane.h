// The control thread (the EAL main lcore): one epoll loop over signals (SIGHUP reload,
// SIGINT/SIGTERM stop), the health checker's sockets, rtnetlink neighbour events and a 1 s
// timer. Every change (health transition, resolved MAC, reload) rebuilds the whole snapshot
// off the hot path and publishes it with SnapshotPublisher; the workers never wait.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/api/view.h"
#include "control/api_server.h"
#include "control/bgp/announcer.h"
#include "control/config.h"
#include "control/health/health_checker.h"
#include "control/metrics.h"
#include "control/neighbours.h"
#include "control/ports.h"
#include "control/publisher.h"
#include "control/snapshot_builder.h"
#include "control/systemd_notify.h"
#include "control/xdp_map.h"

namespace l4lb::control {

namespace sync {
class SyncService;
}

uint64_t monoMsNow();

// Implements the operator API's view (control/api/view.h): the commands see the control plane
// only through it.
class ControlPlane : public api::OperatorView {
 public:
  ControlPlane(Config cfg, std::string path, const Ports& ports, dataplane::DataplaneShared& shared);
  // Builds and publishes the first snapshot, opens netlink and the XDP maps, starts checks,
  // opens the control socket and the metrics listener (a listener that fails is logged and
  // left off). False with `err` when the config cannot be built on these ports.
  bool start(std::string& err);
  // The workers whose counters the API and metrics sum (read-only; each written by its worker).
  void setWorkers(std::vector<const dataplane::WorkerState*> w, uint32_t flow_capacity);
  // The workers' flow-table question slots (l4lbctl explain), in worker order. The control
  // thread writes them only through the FlowQuery protocol (src/dataplane/worker.h).
  void setFlowQueries(std::vector<dataplane::FlowQuery*> q) { queries_ = std::move(q); }
  // The running sync thread ([sync] enabled), whose counters metrics and the API read; it must
  // outlive this ControlPlane or be unset first.
  void setSync(const sync::SyncService* s) { sync_ = s; }
  // Runs until SIGINT/SIGTERM (signals must be blocked in every thread).
  void run();
  // Tells systemd (Type=notify) that the daemon forwards: call once the workers run; the first
  // snapshot is published by start().
  void announceReady();
  // One line for systemd's STATUS= and the status page: VIPs, healthy backends, workers.
  std::string statusLine() const;
  // Test-only hooks (environment L4LB_TEST_HOOKS=1): SIGUSR2 stalls and releases worker 0, so a
  // test can show that the watchdog stops. Off in production: SIGUSR2 then keeps its default.
  static bool testHooksEnabled();

  const ControlStats& stats() const { return stats_; }
  const Snapshot* current() const { return publisher_.current(); }
  // Backend states and health detail as JSON (stats file; the operator API builds on it).
  std::string backendsJson() const;

  // The operator API (docs/OPERATIONS.md, "Day-to-day operations"; control/api/): one JSON
  // request in, one JSON reply out.
  std::string handleRequest(const std::string& request);
  Observation observe() const;

  // api::OperatorView
  const Config& config() const override { return cfg_; }
  const std::string& configPath() const override { return path_; }
  const DynamicState& dynamicState() const override { return dyn_; }
  DynamicState& dynamicState() override { return dyn_; }
  const Snapshot* snapshot() const override { return publisher_.current(); }
  const SnapshotBuilder& builder() const override { return builder_; }
  const std::vector<PortRuntime>& portRuntime() const override { return ports_.runtime; }
  const HealthChecker::Status* healthStatus(const std::string& key) const override { return health_.status(key); }
  const api::Transition* lastTransition(const std::string& key) const override;
  const std::vector<const dataplane::WorkerState*>& workers() const override { return workers_; }
  api::RunFacts runFacts() const override;
  std::vector<api::FlowAnswer> askFlowTables(bool v6, const void* key, size_t key_len) const override;
  uint32_t workerClockMs() const override;
  std::optional<sync::SyncStatus> syncStatus() const override;
  bool rebuild(const std::string& why) override;
  // Re-reads the config file and applies it whole, or changes nothing (logged and counted).
  api::ReloadOutcome reload() override;
  const bgp::Announcer* announcer() const override { return announcer_.get(); }
  uint64_t monoMs() const override;
  const StatusHistory* history() const override { return &history_; }
  bool setBalancerDrained(bool drained) override;

 private:
  void publish(std::unique_ptr<Snapshot> s, const std::string& why);
  std::vector<HealthTarget> healthTargets(const Config& cfg, const Snapshot& s) const;
  void applyHealth(const std::vector<HealthTransition>& ts);
  void refreshNeighbours(bool request);
  void syncXdp(const Snapshot& s);
  void pruneDynamic();
  void tick();
  // Tells the announcer the VIPs' state (after every publish and each tick).
  void updateBgp();

  Config cfg_;
  std::string path_;
  const Ports& ports_;
  SnapshotBuilder builder_;
  DynamicState dyn_;
  SnapshotPublisher publisher_;
  HealthChecker health_;
  NeighbourResolver neighbours_;
  bool netlink_ok_ = false;
  std::map<std::string, std::unique_ptr<XdpAddrMap>> xdp_;  // kernel iface -> map
  std::map<std::string, std::string> unresolved_logged_;
  ControlStats stats_;

  // Operator interface.
  std::vector<const dataplane::WorkerState*> workers_;
  std::vector<dataplane::FlowQuery*> queries_;
  uint32_t flow_capacity_ = 0;
  OneShotServer api_, metrics_;
  uint64_t started_mono_ms_ = 0;
  int64_t started_unix_ = 0;
  std::string config_sha256_;         // of the file as last loaded (start or reload)
  Histogram health_ok_, health_failed_;
  std::vector<WorkerLoad> prev_load_;
  std::vector<double> busy_ratio_;
  uint64_t prev_flows_new_ = 0, prev_tick_ms_ = 0;
  double flows_per_s_ = 0;
  std::map<uint32_t, BackendCounters> prev_backends_;   // at the last tick, by backend id
  std::map<uint32_t, api::RunFacts::Rate> backend_rates_;
  std::map<std::string, api::Transition> transitions_;  // backend identity -> last state change
  StatusHistory history_;                                // the status page's sparklines and changes
  dataplane::DataplaneShared& shared_;
  const sync::SyncService* sync_ = nullptr;
  SystemdNotifier notify_;
  std::string last_status_;
  // [bgp]: null when absent. forwarding_: the workers run (announceReady) and have not been
  // told to stop.
  std::unique_ptr<bgp::Announcer> announcer_;
  bool forwarding_ = false;
};

}  // namespace l4lb::control
