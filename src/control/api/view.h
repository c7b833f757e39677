// What the operator commands may see and do: a narrow view of the control plane. ControlPlane
// implements it over the running daemon; unit tests implement it over a Config, a Snapshot from
// SnapshotBuilder and hand-filled WorkerStates, with no EAL and no ports. Every call runs on the
// control thread (between epoll events), so nothing here takes a lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/health/health_checker.h"
#include "control/metrics.h"
#include "control/snapshot_builder.h"
#include "control/status_history.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {
struct WorkerState;
}
namespace l4lb::control::bgp {
class Announcer;
}

namespace l4lb::control {

struct ControlStats {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;  // invalid file, or refused (needs a restart)
  uint64_t publishes = 0;
  uint64_t health_transitions = 0;
  uint64_t neighbour_changes = 0;
};

namespace api {

// A backend's last state change (healthy/draining/unhealthy), as `backends` reports it.
using Transition = StatusHistory::Change;

// How long askFlowTables waits for the workers' answers.
inline constexpr uint64_t kFlowQueryWaitMs = 100;

// What one worker's flow table holds for a key (dataplane::FlowQuery).
struct FlowAnswer {
  bool answered = false;  // false: the worker did not answer in time
  bool hit = false;
  uint64_t value = 0;     // dataplane::FlowValue::pack() when hit
  bool room = true;       // the worker's table could take a new confirmed flow
  bool room_embryonic = true;  // ... and a new embryonic one (SYN, first UDP packet: quota)
  // Full NAT: the worker holds a session for the key, from this source pair.
  bool snat_hit = false;
  uint32_t snat_addr = 0;  // Snapshot::snat_addrs index
  uint16_t snat_port = 0;
};

// Facts about the running process that `status` and /metrics report.
struct RunFacts {
  int64_t started_unix = 0;
  double uptime_s = 0;
  std::string config_sha256;    // of the file as last loaded (start or reload)
  std::string metrics_listen;   // "" when the metrics listener is off
  ControlStats stats;
  Histogram health_ok, health_failed;  // health check durations by result
  std::vector<double> busy_ratio;      // per worker, over the last control tick
  uint32_t flow_capacity = 0;          // per worker and family
  double new_flows_per_s = 0;
  // Per backend id, over the last control tick (about 1 s): the status page's rates.
  using Rate = StatusHistory::Rate;
  std::map<uint32_t, Rate> backend_rates;
};

struct ReloadOutcome {
  bool ok = false;
  std::vector<std::string> messages;  // what the reload logged, in order
};

class OperatorView {
 public:
  virtual ~OperatorView() = default;

  // ---- read ----
  virtual const Config& config() const = 0;
  virtual const std::string& configPath() const = 0;
  virtual const DynamicState& dynamicState() const = 0;
  virtual const Snapshot* snapshot() const = 0;  // the published one; null before the first
  // Backend ids (idOf) and, copied, the trial build of `diff`.
  virtual const SnapshotBuilder& builder() const = 0;
  virtual const std::vector<PortRuntime>& portRuntime() const = 0;
  virtual const HealthChecker::Status* healthStatus(const std::string& backend_key) const = 0;
  virtual const Transition* lastTransition(const std::string& backend_key) const = 0;
  // The workers whose counters are summed (sumWorkers, control/worker_totals.h), in order.
  virtual const std::vector<const dataplane::WorkerState*>& workers() const = 0;
  virtual RunFacts runFacts() const = 0;
  // Asks every worker what its flow table holds for the key; one answer per worker.
  virtual std::vector<FlowAnswer> askFlowTables(bool v6, const void* key, size_t key_len) const = 0;
  // The workers' clock (dataplane::nowMs: flow entries' last_seen_ms are on it).
  virtual uint32_t workerClockMs() const = 0;
  // Flow sync's counters (control/sync/sync_status.h renders them); nullopt when [sync] is off.
  virtual std::optional<sync::SyncStatus> syncStatus() const { return std::nullopt; }
  // The BGP announcer ([bgp]); null when [bgp] is absent.
  virtual const bgp::Announcer* announcer() const { return nullptr; }
  // Monotonic milliseconds (the announcer's clock).
  virtual uint64_t monoMs() const { return 0; }
  // The status page's history of rates and state changes; null when none is kept.
  virtual const StatusHistory* history() const { return nullptr; }

  // ---- change ----
  // Drains and weights set by command live here; rebuild() publishes them.
  virtual DynamicState& dynamicState() = 0;
  virtual bool rebuild(const std::string& why) = 0;
  virtual ReloadOutcome reload() = 0;
  // l4lbctl drain-balancer / undrain-balancer: withdraw every VIP / announce again, applied at
  // once. False when [bgp] is absent (there is nothing to withdraw).
  virtual bool setBalancerDrained(bool drained) {
    (void)drained;
    return false;
  }
};

}  // namespace api
}  // namespace l4lb::control
