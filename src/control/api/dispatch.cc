// JSON framing and the command table: each api/commands.h entry paired with its handler, in the
// same order (checked at compile time), so arity and usage messages come from the one table.
#include <string_view>

#include "control/api/commands.h"
#include "control/api/handlers.h"
#include "control/log.h"

namespace l4lb::control::api {

namespace {

using nlohmann::json;

struct Command {
  std::string_view name;
  Handler handler;
};

constexpr Command kHandlers[] = {
    {"status", cmdStatus}, {"vips", cmdVips},       {"backends", cmdBackends}, {"stats", cmdStats},
    {"drain", cmdDrain},   {"undrain", cmdUndrain}, {"weight", cmdWeight},     {"reload", cmdReload},
    {"explain", cmdExplain}, {"diff", cmdDiff}, {"cluster", cmdCluster},
    {"drain-balancer", cmdDrainBalancer}, {"undrain-balancer", cmdUndrainBalancer},
};

constexpr bool sameOrder() {
  if (sizeof(kHandlers) / sizeof(kHandlers[0]) != kCommandCount) return false;
  for (size_t i = 0; i < kCommandCount; i++)
    if (kHandlers[i].name != kCommands[i].name) return false;
  return true;
}
static_assert(sameOrder(), "kHandlers must list api::kCommands' commands in the same order");

}  // namespace

std::string handleRequest(OperatorView& view, const std::string& request) {
  json reply;
  try {
    json req = json::parse(request, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
      throw ApiError{"bad request: expected {\"cmd\": \"...\", \"args\": [...]}"};
    Args args;
    if (req.contains("args")) {
      if (!req["args"].is_array()) throw ApiError{"bad request: args must be an array of strings"};
      for (const auto& a : req["args"]) {
        if (!a.is_string()) throw ApiError{"bad request: args must be an array of strings"};
        args.push_back(a.get<std::string>());
      }
    }
    const std::string cmd = req["cmd"].get<std::string>();
    const CommandSpec* spec = findCommand(cmd);
    if (spec == nullptr) throw ApiError{"unknown command '" + cmd + "'"};
    if (!arityOk(*spec, args.size())) throw ApiError{"usage: " + std::string(spec->usage)};
    reply = kHandlers[size_t(spec - kCommands)].handler(view, args);
    if (!reply.contains("ok")) reply["ok"] = true;
  } catch (const ApiError& e) {
    reply = {{"ok", false}, {"error", e.msg}};
  } catch (const std::exception& e) {  // a bug, not the client's fault: say so, keep running
    logError(std::string("control API: internal error: ") + e.what());
    reply = {{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
  }
  return reply.dump();
}

std::string endpoint(const IpAddr& a, uint16_t port) {
  return (a.isV4() ? a.str() : "[" + a.str() + "]") + ":" + std::to_string(port);
}

}  // namespace l4lb::control::api
