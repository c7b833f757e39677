// STAND-IN (helper A1, branch sync-ctl) for helper A2's src/dataplane/sync_rings.h (branch
// sync-dp): only createSyncRings, as the SCALEOUT contract and A2's header declare it, so the
// sync service and the daemon build before A2's branch is merged. On merge, take sync-dp's
// src/dataplane/sync_rings.{h,cc} whole.
#pragma once

#include <cstdint>
#include <string>

#include "dataplane/worker.h"

namespace l4lb::dataplane {

// Creates w.sync_out and w.sync_in, each holding exactly `size` records (1..2^24): SP/SC
// element rings of l4lb::SyncFlow. False with `err` ("what: why") on failure.
bool createSyncRings(WorkerState& w, uint32_t size, std::string& err);

}  // namespace l4lb::dataplane
