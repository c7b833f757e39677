// The command table and JSON framing: every command's arity refusals come from the one table
// (api/commands.h), shared with l4lbctl; malformed requests and unknown commands are refused.
#include <unistd.h>

#include "control/api/commands.h"
#include "ctl/render.h"
#include "fake_view.h"

namespace l4lb::control::api::test {
namespace {

using nlohmann::json;

TEST(ApiDispatch, TableListsTheCommands) {
  std::vector<std::string> names;
  for (const CommandSpec& c : kCommands) names.push_back(std::string(c.name));
  EXPECT_EQ(names, (std::vector<std::string>{"status", "vips", "backends", "list", "stats", "drain", "undrain",
                                             "weight", "reload", "explain", "diff", "config", "cluster",
                                             "drain-balancer", "undrain-balancer"}));
  ASSERT_NE(findCommand("weight"), nullptr);
  EXPECT_EQ(findCommand("weight")->min_args, 2u);
  EXPECT_EQ(findCommand("weight")->max_args, 2u);
  EXPECT_EQ(findCommand("backends")->max_args, 1u);
  EXPECT_EQ(findCommand("nope"), nullptr);
}

// Each command with one argument too many (and too few where it needs some) is refused with
// its usage line, before the handler runs (no rebuild, no reload).
TEST(ApiDispatch, WrongArityIsRefusedWithTheUsage) {
  FakeView v;
  for (const CommandSpec& c : kCommands) {
    std::vector<std::string> too_many(c.max_args + 1, "x");
    json r = call(v, std::string(c.name), too_many);
    EXPECT_EQ(r, (json{{"ok", false}, {"error", "usage: " + c.usage()}})) << c.name;
    if (c.min_args > 0) {
      std::vector<std::string> too_few(c.min_args - 1, "x");
      r = call(v, std::string(c.name), too_few);
      EXPECT_EQ(r, (json{{"ok", false}, {"error", "usage: " + c.usage()}})) << c.name;
    }
  }
  EXPECT_EQ(call(v, "explain", {"tcp"})["error"], "usage: explain tcp|udp SRC:PORT DST:PORT");
  EXPECT_TRUE(v.rebuilds.empty());
  EXPECT_EQ(v.reloads, 0);
}

TEST(ApiDispatch, UnknownCommandAndBadRequests) {
  FakeView v;
  EXPECT_EQ(call(v, "shutdown"), (json{{"ok", false}, {"error", "unknown command 'shutdown'"}}));
  const std::string bad = "bad request: expected {\"cmd\": \"...\", \"args\": [...]}";
  for (const char* req : {"", "not json", "[]", "{}", "{\"cmd\": 3}"})
    EXPECT_EQ(json::parse(handleRequest(v, req)), (json{{"ok", false}, {"error", bad}})) << req;
  const std::string bad_args = "bad request: args must be an array of strings";
  for (const char* req : {R"({"cmd": "vips", "args": "x"})", R"({"cmd": "vips", "args": [1]})"})
    EXPECT_EQ(json::parse(handleRequest(v, req)), (json{{"ok", false}, {"error", bad_args}})) << req;
  // "args" may be left out when there are none.
  EXPECT_EQ(json::parse(handleRequest(v, R"({"cmd": "vips"})"))["ok"], true);
}

// l4lbctl checks the same table before it connects: exit 2 with the daemon's own arity.
TEST(CtlCommandLine, ArityAndNamesFromTheTable) {
  std::string err;
  EXPECT_EQ(ctl::checkCommand("status", 0, err), ctl::kExitOk);
  EXPECT_EQ(ctl::checkCommand("backends", 1, err), ctl::kExitOk);
  EXPECT_EQ(ctl::checkCommand("explain", 3, err), ctl::kExitOk);
  EXPECT_EQ(ctl::checkCommand("weight", 1, err), ctl::kExitUsage);
  EXPECT_EQ(err, "weight: wrong number of arguments (usage: l4lbctl weight BACKEND N)");
  EXPECT_EQ(ctl::checkCommand("status", 1, err), ctl::kExitUsage);
  EXPECT_EQ(err, "status: wrong number of arguments (usage: l4lbctl status)");
  EXPECT_EQ(ctl::checkCommand("frobnicate", 0, err), ctl::kExitUsage);
  EXPECT_EQ(err, "unknown command 'frobnicate'");
  // An option the command does not take is named as one, not counted as an argument.
  EXPECT_EQ(ctl::checkCommand("status", std::vector<std::string>{"-x"}, err), ctl::kExitUsage);
  EXPECT_EQ(err, "status: unknown option '-x'");
  EXPECT_EQ(ctl::checkCommand("backends", std::vector<std::string>{"--all"}, err), ctl::kExitUsage);
  EXPECT_EQ(err, "backends: unknown option '--all'");
  // A negative number is a value (weight refuses it itself); top has options of its own.
  EXPECT_EQ(ctl::checkCommand("weight", std::vector<std::string>{"web", "-1"}, err), ctl::kExitOk);
  EXPECT_EQ(ctl::checkCommand("top", std::vector<std::string>{"--once"}, err), ctl::kExitOk);
  for (const CommandSpec& c : kCommands) {
    EXPECT_EQ(ctl::checkCommand(std::string(c.name), c.min_args, err), ctl::kExitOk) << c.name;
    EXPECT_EQ(ctl::checkCommand(std::string(c.name), c.max_args + 1, err), ctl::kExitUsage) << c.name;
  }
}

TEST(CtlCommandLine, UsageTextComesFromTheTable) {
  EXPECT_EQ(ctl::usageText("/run/l4lb/l4lb.sock"),
            "usage: l4lbctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
            "  status                       version, uptime, workers, ports, config file and hash, drift\n"
            "  vips                         configured VIPs\n"
            "  backends [VIP]               state, weight, health, active flows, last transition\n"
            "  list [VIP]                   each VIP and its backends: weight, state, active flows, packets/s, new flows/s\n"
            "  stats                        per VIP, backend, worker and port counters, drops by reason\n"
            "  drain BACKEND                no new flows to BACKEND; existing flows continue\n"
            "  undrain BACKEND              back in service\n"
            "  weight BACKEND N             set the weight (0..65535) until the next restart\n"
            "  reload                       re-read the config file (as SIGHUP)\n"
            "  explain tcp|udp SRC:PORT DST:PORT   which backend this flow goes to now, and why\n"
            "  diff FILE                    what reloading FILE would change\n"
            "  config                       the running configuration: the TOML it was loaded from\n"
            "  cluster                      this balancer: BGP sessions, what it announces and why, sync peers\n"
            "  drain-balancer               withdraw every VIP from BGP (traffic moves to the other balancers)\n"
            "  undrain-balancer             announce the VIPs again\n"
            "  top [--once] [--interval S]  live rates per VIP, backend and worker, drops/s (from stats)\n"
            "BACKEND: ADDR, ADDR:PORT or [ADDR6]:PORT, optionally VIP/... to pick one VIP.\n"
            "SOCKET defaults to /run/l4lb/l4lb.sock. Exit: 0 ok, 1 command failed, 2 usage, 3 daemon not reachable.\n");
}

TEST(CtlRender, RefusalGoesToStderrWithMessages) {
  EXPECT_EQ(ctl::renderError("drain", json{{"ok", false}, {"error", "no backend 1.2.3.4"}}),
            "l4lbctl: drain: no backend 1.2.3.4\n");
  EXPECT_EQ(ctl::renderError("diff", json{{"ok", false}, {"error", "x is not a valid configuration"},
                                          {"messages", {"x:1:1: a", "x:2:1: b"}}}),
            "l4lbctl: diff: x is not a valid configuration\n  x:1:1: a\n  x:2:1: b\n");
  EXPECT_EQ(ctl::renderError("status", json{{"ok", false}}), "l4lbctl: status: failed\n");
}

}  // namespace
}  // namespace l4lb::control::api::test
