// Live reload (SIGHUP): what a new config changes, and what it cannot change without a restart.
// EAL settings, ports and flow-table capacity are fixed once the data plane runs (cores are
// launched, queues and hugepage memory allocated); everything else is rebuilt into a new
// snapshot and published whole.
#pragma once

#include <string>
#include <vector>

#include "control/config.h"

namespace l4lb::control {

// One message per field that differs and needs a restart; empty when `next` can be applied live.
std::vector<std::string> restartRequired(const Config& running, const Config& next);
// (control/change_plan.h adds the listeners and works out the rest of a change.)

}  // namespace l4lb::control
