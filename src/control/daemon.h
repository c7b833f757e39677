// The l4lb daemon's life cycle: config -> EAL -> ports -> flow tables -> snapshot -> workers ->
// wait for a signal -> stop workers -> flush -> close ports -> exit 0.
#pragma once

#include <string>

namespace l4lb::control {

struct DaemonOptions {
  std::string config_path = "/etc/l4lb/l4lb.toml";
  std::string stats_file;  // written as JSON on exit when set
};

int runDaemon(const DaemonOptions& opts);

// --check-config: 0 when valid, 1 with messages on stderr.
int checkConfig(const std::string& path);
// --config-keys: the leaf keys the loader asked for while reading `path` (tables left out), one
// per line; 1 with messages when the file does not load.
int printConfigKeys(const std::string& path);
// --config-sections: the tables the loader read in `path`, as TOML headers ("[eal]",
// "[[vips.backends]]"), one per line; 1 with messages when the file does not load.
int printConfigSections(const std::string& path);

}  // namespace l4lb::control
