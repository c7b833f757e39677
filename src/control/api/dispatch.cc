// JSON framing and dispatch: each api/commands.h entry's handler from the same list, so arity
// and usage messages come from the one table.
#include <string_view>

#include "control/api/commands.h"
#include "control/api/handlers.h"
#include "control/log.h"

namespace l4lb::control::api {

namespace {

using nlohmann::json;

// cmd<Id> for every command, in api::kCommands' order by construction.
#define L4LB_HANDLER(Id, ...) cmd##Id,
constexpr Handler kHandlers[] = {L4LB_API_COMMANDS(L4LB_HANDLER)};
#undef L4LB_HANDLER
static_assert(sizeof(kHandlers) / sizeof(kHandlers[0]) == kCommandCount);

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
    if (!arityOk(*spec, args.size())) throw ApiError{"usage: " + spec->usage()};
    reply = kHandlers[size_t(spec - kCommands)](view, args);
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
