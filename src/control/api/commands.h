// The operator commands as one list (VPP's lb.h / grout's registered commands): for each, its
// name, the arguments it takes and one line of help. Everything else is generated from it:
// the daemon's handler declarations and dispatch table (api/handlers.h, api/dispatch.cc), the
// CommandId that l4lbctl's renderers are keyed by (ctl/render.cc, checked at compile time), the
// arity checks on both sides and l4lbctl's help. Dependency-free on purpose: l4lbctl is built
// without DPDK, toml++ or the l4lb library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace l4lb::control::api {

// X(Id, "name", ["ARGS",] "help"). Id names the handler cmd<Id> (api/handlers.h) and
// CommandId::<Id>. ARGS is the synopsis after the name; its words are the arguments, a word
// inside [...] optional (so "BACKEND N" takes exactly 2, "[VIP]" 0 or 1). No ARGS: none.
#define L4LB_API_COMMANDS(X)                                                                            \
  X(Status, "status", "version, uptime, workers, ports, config file and hash, drift")                   \
  X(Vips, "vips", "configured VIPs")                                                                    \
  X(Backends, "backends", "[VIP]", "state, weight, health, active flows, last transition")              \
  X(List, "list", "[VIP]", "each VIP and its backends: weight, state, active flows, packets/s, new flows/s") \
  X(Stats, "stats", "per VIP, backend, worker and port counters, drops by reason")                      \
  X(Drain, "drain", "BACKEND", "no new flows to BACKEND; existing flows continue")                      \
  X(Undrain, "undrain", "BACKEND", "back in service")                                                   \
  X(Weight, "weight", "BACKEND N", "set the weight (0..65535) until the next restart")                  \
  X(Reload, "reload", "re-read the config file (as SIGHUP)")                                            \
  X(Explain, "explain", "tcp|udp SRC:PORT DST:PORT", "which backend this flow goes to now, and why")     \
  X(Diff, "diff", "FILE", "what reloading FILE would change")                                           \
  X(Config, "config", "the running configuration: the TOML it was loaded from")                         \
  X(Cluster, "cluster", "this balancer: BGP sessions, what it announces and why, sync peers")           \
  X(DrainBalancer, "drain-balancer", "withdraw every VIP from BGP (traffic moves to the other balancers)") \
  X(UndrainBalancer, "undrain-balancer", "announce the VIPs again")

#define L4LB_COMMAND_ID(Id, ...) Id,
enum class CommandId : uint8_t { L4LB_API_COMMANDS(L4LB_COMMAND_ID) Count };
#undef L4LB_COMMAND_ID

struct CommandSpec {
  std::string_view name;
  std::string_view args;  // synopsis after the name, "" for none
  std::string_view help;  // one line for l4lbctl --help
  size_t min_args = 0, max_args = 0;

  constexpr CommandSpec(std::string_view n, std::string_view h) : name(n), help(h) {}
  constexpr CommandSpec(std::string_view n, std::string_view a, std::string_view h)
      : name(n), args(a), help(h), min_args(countArgs(a, false)), max_args(countArgs(a, true)) {}
  // Arity that the synopsis does not show (l4lbctl top accepts an option twice).
  constexpr CommandSpec(std::string_view n, std::string_view a, size_t min, size_t max, std::string_view h)
      : name(n), args(a), help(h), min_args(min), max_args(max) {}

  // "name ARGS" as printed after "usage: ".
  std::string usage() const { return args.empty() ? std::string(name) : std::string(name) + " " + std::string(args); }

  // The words of a synopsis; with optional = false only those outside [...].
  static constexpr size_t countArgs(std::string_view synopsis, bool optional) {
    size_t n = 0, depth = 0;
    bool in_word = false;
    for (char c : synopsis) {
      if (c == '[') depth++;
      if (c == ' ') in_word = false;
      else if (!in_word) {
        in_word = true;
        if (depth == 0 || optional) n++;
      }
      if (c == ']' && depth > 0) depth--;
    }
    return n;
  }
};

#define L4LB_COMMAND_SPEC(Id, ...) CommandSpec{__VA_ARGS__},
inline constexpr CommandSpec kCommands[] = {L4LB_API_COMMANDS(L4LB_COMMAND_SPEC)};
#undef L4LB_COMMAND_SPEC
inline constexpr size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);
static_assert(kCommandCount == size_t(CommandId::Count));

constexpr const CommandSpec* findCommand(std::string_view name) {
  for (const CommandSpec& c : kCommands)
    if (c.name == name) return &c;
  return nullptr;
}

constexpr bool arityOk(const CommandSpec& c, size_t nargs) { return nargs >= c.min_args && nargs <= c.max_args; }

static_assert(findCommand("weight")->min_args == 2 && findCommand("weight")->max_args == 2);
static_assert(findCommand("backends")->min_args == 0 && findCommand("backends")->max_args == 1);
static_assert(findCommand("explain")->min_args == 3 && findCommand("explain")->max_args == 3);

// The command lines of l4lbctl's help for `table` (kCommands, or l4lbctl's client-side
// commands): "  USAGE" padded to a column, then the help.
template <size_t N>
std::string commandHelp(const CommandSpec (&table)[N]) {
  constexpr size_t kColumn = 29;
  std::string out;
  for (const CommandSpec& c : table) {
    const std::string usage = c.usage();
    out += "  ";
    out += usage;
    out += usage.size() < kColumn ? std::string(kColumn - usage.size(), ' ') : std::string(3, ' ');
    out += c.help;
    out += '\n';
  }
  return out;
}

}  // namespace l4lb::control::api
