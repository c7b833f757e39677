// The operator commands' handlers (one per api/commands.h entry) and what they share. Each
// takes the view and the arguments (arity already checked against the table by
// handleRequest) and returns the reply body, or throws ApiError with the message the client
// gets as {"ok": false, "error": ...}.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/commands.h"
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

// One handler per api/commands.h entry, cmd<Id>, declared from the list; each is defined in
// the api/ file of its kind: read_commands.cc (status, vips, backends, list, config, stats),
// change_commands.cc (drain, undrain, weight, reload), explain.cc, diff.cc, and
// cluster_commands.cc (cluster, drain-balancer, undrain-balancer; docs/SCALE-OUT.md).
#define L4LB_DECLARE_HANDLER(Id, ...) nlohmann::json cmd##Id(OperatorView& view, const Args& args);
L4LB_API_COMMANDS(L4LB_DECLARE_HANDLER)
#undef L4LB_DECLARE_HANDLER

// The [bgp] part of /metrics.
ObservedBgp observeBgp(const OperatorView& view);

// ADDR:PORT, or [ADDR6]:PORT.
std::string endpoint(const IpAddr& a, uint16_t port);

}  // namespace l4lb::control::api
