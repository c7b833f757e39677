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

#include <nlohmann/json_fwd.hpp>

#include "control/api_server.h"
#include "control/config.h"
#include "control/health/health_checker.h"
#include "control/metrics.h"
#include "control/neighbours.h"
#include "control/ports.h"
#include "control/publisher.h"
#include "control/snapshot_builder.h"
#include "control/xdp_map.h"

namespace l4lb::control {

struct ControlStats {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;   // invalid file, or refused (needs a restart)
  uint64_t publishes = 0;
  uint64_t health_transitions = 0;
  uint64_t neighbour_changes = 0;
};

uint64_t monoMsNow();
// SHA-256 of a file's bytes, "" when it cannot be read.
std::string fileSha256Of(const std::string& path);

class ControlPlane {
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
  // Runs until SIGINT/SIGTERM (signals must be blocked in every thread).
  void run();

  // Re-reads the config file and applies it whole, or changes nothing (logged and counted).
  bool reload();

  const ControlStats& stats() const { return stats_; }
  const Snapshot* current() const { return publisher_.current(); }
  // Backend states and health detail as JSON (stats file; the operator API builds on it).
  std::string backendsJson() const;

  // The operator API (docs/OPERATIONS.md): one JSON request {"cmd": ..., "args": [...]}, one
  // JSON reply {"ok": bool, "error"?: ..., ...}. Public for unit tests; the API server calls it.
  std::string handleRequest(const std::string& request);
  Observation observe() const;

 private:
  bool rebuild(const std::string& why);
  void publish(std::unique_ptr<Snapshot> s, const std::string& why);
  std::vector<HealthTarget> healthTargets(const Config& cfg, const Snapshot& s) const;
  void applyHealth(const std::vector<HealthTransition>& ts);
  void refreshNeighbours(bool request);
  void syncXdp(const Snapshot& s);
  void pruneDynamic();
  void tick();
  // Operator commands (operator_api.cc); each returns the reply body or throws ApiError.
  nlohmann::json cmdStatus() const;
  nlohmann::json cmdVips() const;
  nlohmann::json cmdBackends(const std::vector<std::string>& args) const;
  nlohmann::json cmdStats() const;
  nlohmann::json cmdDrain(const std::vector<std::string>& args, bool drain);
  nlohmann::json cmdWeight(const std::vector<std::string>& args);
  nlohmann::json cmdReload();
  nlohmann::json cmdExplain(const std::vector<std::string>& args) const;
  nlohmann::json cmdDiff(const std::vector<std::string>& args) const;
  static constexpr uint64_t kFlowQueryWaitMs = 100;
  // What each worker's flow table holds for a key (FlowQuery), waiting up to kFlowQueryWaitMs.
  struct FlowAnswer {
    bool answered = false;
    bool hit = false;
    uint64_t value = 0;
  };
  std::vector<FlowAnswer> askFlowTables(bool v6, const void* key, size_t key_len, uint32_t sig) const;
  std::vector<std::pair<const VipConfig*, const BackendConfig*>> matchBackends(const std::vector<std::string>& args,
                                                                                size_t first) const;

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
  struct Transition {
    int64_t unix_time = 0;
    std::string from, to, why;
  };
  std::map<std::string, Transition> transitions_;  // backend identity -> last state change
  std::vector<std::string> last_reload_messages_;
};

}  // namespace l4lb::control
