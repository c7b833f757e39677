// Prometheus text exposition (format 0.0.4) of what the control plane reads from the workers'
// counters. The control thread sums the per-worker arrays (each written by its own worker only,
// read here without locks: 64-bit loads on x86-64 are atomic, a value may be one burst old) into
// an Observation and renders it; scraping never touches the data path.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/sync/sync_stats.h"
#include "l4lb/counters.h"

namespace l4lb::control {

struct ObservedBackend {
  std::string vip;      // VIP name
  std::string backend;  // "addr:port" (port 0 = keeps the client's port)
  std::string key;      // backendIdentity()
  uint32_t id = 0;
  std::string state;    // healthy, draining, unhealthy
  uint32_t weight = 0;  // effective (a weight command overrides the file's)
  BackendCounters c;
};

struct ObservedWorker {
  WorkerCounters counters;
  WorkerLoad load;
  double busy_ratio = 0;  // busy / total cycles over the last control tick (about 1 s)
  uint64_t flows4 = 0, flows6 = 0;
  // The same entries by admission class (dataplane/flow.h), both families.
  uint64_t embryonic = 0, confirmed = 0;
  uint64_t capacity = 0;  // per family
};

// A full-NAT source address's pairs over all workers (SnatPortCounts).
struct ObservedSnat {
  std::string address;
  SnatPortCounts c;
};

struct ObservedPort {
  std::string name;
  PortCounters c;
};

// Latency histogram with Prometheus' cumulative buckets (upper bounds in seconds).
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,     2.5};
  void observe(double seconds);
  // counts[i]: observations <= kBounds[i] (cumulative); count() includes those above the last.
  const std::array<uint64_t, kBounds.size()>& cumulative() const { return cumulative_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::array<uint64_t, kBounds.size()> cumulative_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

// [bgp] (control/bgp/announcer.h): what this balancer announces and BIRD's sessions.
struct ObservedBgp {
  bool enabled = false;   // [bgp] configured; nothing below is rendered otherwise
  bool drained = false;   // l4lbctl drain-balancer
  std::vector<std::pair<std::string, bool>> vips;      // VIP name, its prefix is announced
  std::vector<std::pair<std::string, bool>> sessions;  // BGP protocol name, Established
  uint64_t bird_errors = 0;
};

struct Observation {
  std::vector<ObservedBackend> backends;
  std::vector<ObservedWorker> workers;
  std::vector<ObservedPort> ports;
  std::vector<ObservedSnat> snat;  // Snapshot::snat_addrs order; empty without fullnat VIPs
  Histogram health_ok, health_failed;  // health check durations by result
  uint64_t reloads_ok = 0, reloads_failed = 0;
  uint64_t publishes = 0, health_transitions = 0;
  double uptime_s = 0;
  std::string version;
  std::optional<sync::SyncStatus> sync;  // [sync] enabled: the sync thread's counters (l4lb_sync_*)
  ObservedBgp bgp;
};

// Label values escaped as the exposition format requires (\\, \", \n).
std::string escapeLabel(const std::string& v);
std::string renderMetrics(const Observation& o);

}  // namespace l4lb::control
