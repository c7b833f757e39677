// What applying a new configuration would do, worked out once: the settings that need a restart,
// the trial build (on a copy of the SnapshotBuilder, so a failed build changes no id), and one
// diff per VIP. reload() applies a plan; `l4lbctl diff` reports one; the reload log line
// (diffSummary) is derived from the same diff, so the two cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "l4lb/snapshot.h"

namespace l4lb::control {

enum class VipChange : uint8_t { Unchanged, Changed, Added, Removed };
std::string_view toString(VipChange c);

struct WeightChange {
  std::string backend;  // ADDR:PORT
  uint32_t from = 0, to = 0;
};

struct BackendChange {
  std::string backend;              // ADDR:PORT
  std::vector<std::string> fields;  // settings other than the weight: "mac (unset -> 02:...)",
                                    // "via (...)", "health_check.rise (2 -> 5)"
};

// One VIP, matched by vipIdentity (address, port, protocol) across the two configurations.
struct VipDiff {
  std::string name;  // the new name (the old one when removed)
  VipChange change = VipChange::Unchanged;
  // The VIP's own settings that differ ("forwarding (dsr -> gue)", "health_check.interval_ms
  // (1000 -> 5000)"), in config-key order.
  std::vector<std::string> fields;
  // ADDR:PORT. An added (removed) VIP lists all its backends as added (removed).
  std::vector<std::string> backends_added, backends_removed;
  std::vector<WeightChange> weights;
  std::vector<BackendChange> backends_changed;
  // Maglev slots whose backend differs between the running and the trial snapshot (every slot
  // when the table size changes); 0/0 when either snapshot is missing.
  size_t slots_moved = 0, slots_total = 0;
};

struct ConfigDiff {
  std::vector<VipDiff> vips;  // ordered by VIP identity
  // One line for the log: VIPs added, removed and with changed settings; backends added,
  // removed and changed (weight or any other setting). e.g. "vips +1 -0 ~1, backends +2 -1 ~1"
  std::string summary() const;
};

// The per-VIP diff. With both snapshots (index = config index), also the Maglev slots moved.
ConfigDiff diffConfigs(const Config& running, const Config& next, const Snapshot* running_snap = nullptr,
                       const Snapshot* next_snap = nullptr);
inline std::string diffSummary(const Config& running, const Config& next) {
  return diffConfigs(running, next).summary();
}

struct ChangePlan {
  // One message per setting that cannot change while running; empty when `next` applies live.
  std::vector<std::string> restart;
  SnapshotBuilder builder;             // the trial builder: reload adopts it with the snapshot
  std::unique_ptr<Snapshot> snapshot;  // the trial build; null when it failed
  std::vector<std::string> build_errors;  // one entry per error when it failed
  ConfigDiff diff;
};

// Everything about going from `running` to `next` on these ports with this dynamic state.
// `running_snap` (may be null) is the published snapshot, for the Maglev slots moved.
ChangePlan planChange(const Config& running, const Config& next, const SnapshotBuilder& builder,
                      const std::vector<PortRuntime>& ports, const DynamicState& dyn, const Snapshot* running_snap);

}  // namespace l4lb::control
