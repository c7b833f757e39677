// The operator commands' handlers (one per api/commands.h entry) and what they share. Each
// takes the view and the arguments (arity already checked against the table by
// handleRequest) and returns the reply body, or throws ApiError with the message the client
// gets as {"ok": false, "error": ...}.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/status_page.h"
#include "control/api/view.h"
#include "control/metrics.h"
#include "l4lb/addr.h"

namespace l4lb::control::api {

using Args = std::vector<std::string>;
using Handler = nlohmann::json (*)(OperatorView&, const Args&);

struct ApiError {
  std::string msg;
};

// One JSON request {"cmd": ..., "args": [...]} in, one JSON reply {"ok": bool, ...} out
// (docs/OPERATIONS.md, "Day-to-day operations"). Never throws.
std::string handleRequest(OperatorView& view, const std::string& request);

// What /metrics and `stats` report: configured backends with their summed counters, workers,
// ports and control-plane counts.
Observation observe(const OperatorView& view);
// What l4lbctl changed at run time that the file does not say (status, the status page).
nlohmann::json driftJson(const OperatorView& view);
// The status page's content (api/status_page.h renders it).
StatusPage statusPage(const OperatorView& view);

// read_commands.cc
nlohmann::json cmdStatus(OperatorView& view, const Args& args);
nlohmann::json cmdVips(OperatorView& view, const Args& args);
nlohmann::json cmdBackends(OperatorView& view, const Args& args);
nlohmann::json cmdStats(OperatorView& view, const Args& args);
// change_commands.cc
nlohmann::json cmdDrain(OperatorView& view, const Args& args);
nlohmann::json cmdUndrain(OperatorView& view, const Args& args);
nlohmann::json cmdWeight(OperatorView& view, const Args& args);
nlohmann::json cmdReload(OperatorView& view, const Args& args);
// explain.cc
nlohmann::json cmdExplain(OperatorView& view, const Args& args);
// diff.cc
nlohmann::json cmdDiff(OperatorView& view, const Args& args);
// cluster_commands.cc (scale-out: docs/SCALE-OUT.md)
nlohmann::json cmdCluster(OperatorView& view, const Args& args);
nlohmann::json cmdDrainBalancer(OperatorView& view, const Args& args);
nlohmann::json cmdUndrainBalancer(OperatorView& view, const Args& args);
// The [bgp] part of /metrics.
ObservedBgp observeBgp(const OperatorView& view);

// ADDR:PORT, or [ADDR6]:PORT.
std::string endpoint(const IpAddr& a, uint16_t port);

}  // namespace l4lb::control::api
