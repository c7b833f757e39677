// Flow sync as the operator sees it: the "sync" section of `l4lbctl cluster --json` (present
// when [sync] is enabled; docs/man/l4lbctl.8.scd, "cluster") and of the stats file: peers with
// address, last_heard_ms_ago, records_in_per_s, records_out_per_s and rejections by reason;
// totals; lag (docs/SCALE-OUT.md, "Flow sync"; docs/OPERATIONS.md, "Flow sync between
// balancers").
#pragma once

#include <nlohmann/json.hpp>

#include "control/sync/sync_stats.h"

namespace l4lb::control::sync {

// {"listen", "peers": [{"address", "last_heard_ms_ago" (null: never), "records_in_per_s",
//  "records_out_per_s", "records_in", "records_out", "datagrams_in", "datagrams_out",
//  "send_errors", "rejected": {reason: n}}], "totals": {"records_out", "records_in",
//  "datagrams_out", "datagrams_in", "delivered", "ring_full", "send_errors",
//  "rejected": {reason: n}}, "lag_ms": {"last", "max", "mean", "count"}}
nlohmann::json syncStatusJson(const SyncStatus& s);

}  // namespace l4lb::control::sync
