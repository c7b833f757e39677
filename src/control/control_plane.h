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

#include "control/config.h"
#include "control/health/health_checker.h"
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

class ControlPlane {
 public:
  ControlPlane(Config cfg, std::string path, const Ports& ports, dataplane::DataplaneShared& shared);
  // Builds and publishes the first snapshot, opens netlink and the XDP maps, starts checks.
  // False with `err` when the config cannot be built on these ports.
  bool start(std::string& err);
  // Runs until SIGINT/SIGTERM (signals must be blocked in every thread).
  void run();

  // Re-reads the config file and applies it whole, or changes nothing (logged and counted).
  bool reload();

  const ControlStats& stats() const { return stats_; }
  const Snapshot* current() const { return publisher_.current(); }
  // Backend states and health detail as JSON (stats file; the operator API builds on it).
  std::string backendsJson() const;

 private:
  bool rebuild(const std::string& why);
  void publish(std::unique_ptr<Snapshot> s, const std::string& why);
  std::vector<HealthTarget> healthTargets(const Config& cfg, const Snapshot& s) const;
  void applyHealth(const std::vector<HealthTransition>& ts);
  void refreshNeighbours(bool request);
  void syncXdp(const Snapshot& s);
  void pruneDynamic();

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
};

}  // namespace l4lb::control
