// Builds the immutable Snapshot the workers read from a validated Config (Envoy-style: built
// whole off the hot path, then published). Keeps backend ids stable across builds, so a flow
// entry that names a backend still finds it after a reload that left that backend alone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "l4lb/snapshot.h"

namespace l4lb::control {

// What the control plane learned about a port from DPDK.
struct PortRuntime {
  uint16_t port_id = 0;
  MacAddr mac;
};

class SnapshotBuilder {
 public:
  // Builds a snapshot or returns nullptr with `err` set (one message per line). Errors here are
  // the ones that need the whole picture (routing, neighbours, NAT reply ambiguity).
  std::unique_ptr<Snapshot> build(const Config& cfg, const std::vector<PortRuntime>& ports, std::string& err);

 private:
  uint32_t idFor(const std::string& identity);
  std::map<std::string, uint32_t> ids_;  // "vip|backend" -> stable id
  uint32_t next_id_ = 1;                 // 0 is kNoBackend
  uint64_t generation_ = 0;
};

// Smooth weighted round robin (as nginx): a sequence where each id appears in proportion to its
// weight, spread out rather than in runs. Weights are reduced by their gcd and scaled down so the
// sequence has at most `max_len` entries.
std::vector<uint32_t> buildWrrSequence(const std::vector<std::pair<uint32_t, uint32_t>>& id_weights,
                                       uint32_t max_len = 65536);

}  // namespace l4lb::control
