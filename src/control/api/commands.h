// The operator commands as one table (VPP's lb.h / grout's registered commands): name, how many
// arguments, usage and one line of help. The daemon checks arity and names its usage from it
// (api/dispatch.cc pairs each entry with its handler, in the same order); l4lbctl takes its
// argument counts and its help text from the same table. Dependency-free on purpose: l4lbctl is
// built without DPDK, toml++ or the l4lb library.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace l4lb::control::api {

struct CommandSpec {
  std::string_view name;
  size_t min_args, max_args;
  std::string_view usage;  // "name ARGS" as printed after "usage: "
  std::string_view help;   // one line for l4lbctl --help
};

inline constexpr CommandSpec kCommands[] = {
    {"status", 0, 0, "status", "version, uptime, workers, ports, config file and hash, drift"},
    {"vips", 0, 0, "vips", "configured VIPs"},
    {"backends", 0, 1, "backends [VIP]", "state, weight, health, active flows, last transition"},
    {"stats", 0, 0, "stats", "per VIP, backend, worker and port counters, drops by reason"},
    {"drain", 1, 1, "drain BACKEND", "no new flows to BACKEND; existing flows continue"},
    {"undrain", 1, 1, "undrain BACKEND", "back in service"},
    {"weight", 2, 2, "weight BACKEND N", "set the weight (0..65535) until the next restart"},
    {"reload", 0, 0, "reload", "re-read the config file (as SIGHUP)"},
    {"explain", 3, 3, "explain tcp|udp SRC:PORT DST:PORT", "which backend this flow goes to now, and why"},
    {"diff", 1, 1, "diff FILE", "what reloading FILE would change"},
    {"cluster", 0, 0, "cluster", "this balancer: BGP sessions, what it announces and why, sync peers"},
    {"drain-balancer", 0, 0, "drain-balancer", "withdraw every VIP from BGP (traffic moves to the other balancers)"},
    {"undrain-balancer", 0, 0, "undrain-balancer", "announce the VIPs again"},
};
inline constexpr size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);

constexpr const CommandSpec* findCommand(std::string_view name) {
  for (const CommandSpec& c : kCommands)
    if (c.name == name) return &c;
  return nullptr;
}

constexpr bool arityOk(const CommandSpec& c, size_t nargs) { return nargs >= c.min_args && nargs <= c.max_args; }

// The command lines of l4lbctl's help for `table` (kCommands, or l4lbctl's client-side
// commands): "  USAGE" padded to a column, then the help.
template <size_t N>
std::string commandHelp(const CommandSpec (&table)[N]) {
  constexpr size_t kColumn = 29;
  std::string out;
  for (const CommandSpec& c : table) {
    out += "  ";
    out += c.usage;
    out += c.usage.size() < kColumn ? std::string(kColumn - c.usage.size(), ' ') : std::string(3, ' ');
    out += c.help;
    out += '\n';
  }
  return out;
}

}  // namespace l4lb::control::api
