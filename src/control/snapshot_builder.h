// Builds the immutable Snapshot the workers read from a validated Config (Envoy-style: built
// whole off the hot path, then published). Keeps backend ids stable across builds, so a flow
// entry that names a backend still finds it after a reload that left that backend alone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/config.h"
#include "l4lb/snapshot.h"

namespace l4lb::control {

// What the control plane learned about a port from DPDK.
struct PortRuntime {
  uint16_t port_id = 0;
  MacAddr mac;
  int32_t tap_port_id = -1;  // exception_path = tap: the DPDK port id of its kernel interface
};

// What the control plane knows beyond the config file: health results, operator drains and
// weights, and MAC addresses the kernel resolved. Keys are backendIdentity().
struct BackendRuntime {
  bool down = false;                  // failed health checks (or unresolvable next hop)
  bool drained = false;               // drained by command: no new flows, existing ones continue
  std::optional<uint32_t> weight;     // weight set by command, overriding the file's
};
struct DynamicState {
  std::map<std::string, BackendRuntime> backends;
  std::map<std::string, MacAddr> resolved;  // IpAddr::str() -> MAC learned through ARP/ND
};

// Stable name of a backend within its VIP ("vip addr/port/proto|backend addr:port").
std::string backendIdentity(const VipConfig& v, const BackendConfig& b);
std::string vipIdentity(const VipConfig& v);

// What SnapshotBuilder::build gives: a snapshot, or every error found, one message each
// ("key.path: message"), in the order found.
struct BuildResult {
  std::unique_ptr<Snapshot> snapshot;  // null when errors is not empty
  std::vector<std::string> errors;
  explicit operator bool() const { return snapshot != nullptr; }
  std::string joined() const;  // the errors, '\n'-separated, for a caller that logs one string
};

// Test-only switch: flood admission off in every snapshot (FlowAdmission::enabled false: the
// original flow-table rules) when the environment has both L4LB_TEST_HOOKS=1 and
// L4LB_TEST_NO_ADMISSION=1. Read once, at the first call (the daemon's start).
bool admissionDisabledForTests();

class SnapshotBuilder {
 public:
  // Builds a snapshot, or gives the errors that need the whole picture (routing, neighbours, NAT
  // reply ambiguity). `dyn` (may be null) adds health, drains and resolved MACs. A backend whose
  // next hop has no MAC is an error unless its egress port has a kernel side that resolves it
  // (exception_path tap or xdp): then it is out of service (Unhealthy) until the MAC is known.
  BuildResult build(const Config& cfg, const std::vector<PortRuntime>& ports, const DynamicState* dyn = nullptr);

  // Next hops (backends and gateways) with no static MAC whose port resolves them: the control
  // plane asks the kernel for these. (address, kernel interface name).
  static std::vector<std::pair<IpAddr, std::string>> neighboursToResolve(const Config& cfg);

  // The id a backend identity was given (kNoBackend if never built).
  uint32_t idOf(const std::string& identity) const {
    auto it = ids_.find(identity);
    return it == ids_.end() ? kNoBackend : it->second;
  }

 private:
  struct Work;  // one build's working state (snapshot_builder.cc)
  void buildNeighbours(Work& w);
  void buildPorts(Work& w);
  void buildVip(Work& w, size_t vi);
  static void buildIndexes(Work& w);
  uint32_t idFor(const std::string& identity);
  std::map<std::string, uint32_t> ids_;  // "vip|backend" -> stable id
  uint32_t next_id_ = 1;                 // 0 is kNoBackend
  uint64_t generation_ = 0;
  // on_all_down = keep: per VIP identity, the backend identities last seen in service.
  std::map<std::string, std::vector<std::string>> last_in_service_;
};

// The per-packet constants of backend `b` of VIP `v` leaving by port `out` (see BackendRewrite).
// `b` must have its final next hop and tunnel source (per backend: the VIP's tunnel_source4/6,
// else the address of `out`).
BackendRewrite buildRewrite(const SnapVip& v, const SnapBackend& b, const SnapPort& out);

// Smooth weighted round robin (as nginx): a sequence where each id appears in proportion to its
// weight, spread out rather than in runs. Weights are reduced by their gcd and scaled down so the
// sequence has at most `max_len` entries.
std::vector<uint32_t> buildWrrSequence(const std::vector<std::pair<uint32_t, uint32_t>>& id_weights,
                                       uint32_t max_len = 65536);

}  // namespace l4lb::control
