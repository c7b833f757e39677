// l4lbctl's text side: usage (from the command table, control/api/commands.h), command-line
// checks and the human rendering of each reply. No socket I/O, no DPDK: unit-tested directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace l4lb::ctl {

inline constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitNoDaemon = 3;

// The --help text.
std::string usageText(const char* default_socket);
// Every command l4lbctl takes: the daemon's table, then the client-side ones (top.h), one name
// each (l4lbctl --commands, which the bash completion reads).
std::vector<std::string> commandNames();
// kExitOk, or kExitUsage with the message to print before the usage in `err` (unknown command,
// wrong number of arguments, as the table says).
int checkCommand(const std::string& cmd, size_t nargs, std::string& err);
// The same for a command line: first an option the command does not take ("status -x").
int checkCommand(const std::string& cmd, const std::vector<std::string>& args, std::string& err);
// A JSON value as a table cell: "-" for null, strings bare, floats with two decimals.
std::string str(const nlohmann::json& j);
// `head` and `rows` as aligned columns (two spaces apart), each line prefixed by `indent`.
void appendTable(std::string& out, const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                 const char* indent = "");
// What l4lbctl prints (stdout) for a successful reply to `cmd`; `now` is the current Unix time
// ("12s ago"). Each daemon command has its renderer in render.cc (kRender, checked at compile
// time against control/api/commands.h); any other name prints nothing.
std::string renderReply(const std::string& cmd, const nlohmann::json& reply, int64_t now);
// What l4lbctl prints (stderr) for a refused one.
std::string renderError(const std::string& cmd, const nlohmann::json& reply);

}  // namespace l4lb::ctl
