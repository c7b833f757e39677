// The generic TOML reader under the config schema: unknown keys are found from what the schema
// read (each key named once), reported once with a suggestion, in file order; typed readers
// report "file:line:col: path: message". And the enum name tables both print and parse.
#include "control/toml_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/config.h"
#include "control/health/health_state.h"
#include "control/log.h"
#include "l4lb/types.h"

namespace l4lb::control::reader {
namespace {

toml::table parseOk(Reader& r, std::string_view text) {
  auto t = r.parse(text);
  EXPECT_TRUE(t.has_value()) << (r.failed() ? r.takeMessages().front() : "");
  return t ? std::move(*t) : toml::table{};
}

TEST(TomlReader, UnknownKeyOnceWithSuggestion) {
  Reader r("t.toml");
  toml::table root = parseOk(r, "[port]\nnmae = \"a\"\nmtu = 1500\n");
  {
    TableReader top(r, root, "");
    Field port = top.get("port");
    ASSERT_TRUE(port);
    TableReader t(r, *r.table(port), port.path);
    EXPECT_FALSE(t.get("name"));
    EXPECT_FALSE(t.get("name"));  // asking twice does not make it two keys
    EXPECT_TRUE(t.get("mtu"));
  }
  EXPECT_EQ(r.takeMessages(), std::vector<std::string>{"t.toml:2:1: port.nmae: unknown key, did you mean \"name\"?"});
}

TEST(TomlReader, UnknownKeyWithoutCloseCandidate) {
  Reader r("t.toml");
  toml::table root = parseOk(r, "zzzz = 1\nmtu = 2\n");
  {
    TableReader t(r, root, "");
    t.get("mtu");
  }
  EXPECT_EQ(r.takeMessages(), std::vector<std::string>{"t.toml:1:1: zzzz: unknown key"});
}

TEST(TomlReader, KeysAskedButAbsentAreKnown) {
  Reader r("t.toml");
  toml::table root = parseOk(r, "a = 1\n");
  {
    TableReader t(r, root, "");
    EXPECT_FALSE(t.get("b"));
    EXPECT_TRUE(t.get("a"));
  }
  EXPECT_FALSE(r.failed());
}

// Unknown keys are found last but sort with the rest by place; at one place, before what the
// schema found after opening the table.
TEST(TomlReader, MessagesInFileOrder) {
  Reader r("t.toml");
  toml::table root = parseOk(r, "a = \"x\"\nbogus = 1\nc = true\n");
  {
    TableReader t(r, root, "");
    r.integer(t.get("c"), 0, 1);
    r.integer(t.get("a"), 0, 1);
  }
  EXPECT_EQ(r.takeMessages(), (std::vector<std::string>{
                                  "t.toml:1:5: a: must be an integer",
                                  "t.toml:2:1: bogus: unknown key",
                                  "t.toml:3:5: c: must be an integer",
                              }));
}

TEST(TomlReader, TypedReadersNameLineAndColumn) {
  Reader r("t.toml");
  toml::table root = parseOk(r,
                             "n = 70000\n"
                             "b = 1\n"
                             "s = 2\n"
                             "  ip = \"10.0.0.300\"\n"
                             "mac = \"01:00:00:00:00:01\"\n"
                             "secs = 0\n"
                             "u = -1\n"
                             "tbl = 3\n");
  {
    TableReader t(r, root, "x");
    EXPECT_EQ(r.integer(t.get("n"), 0, 65535), std::nullopt);
    EXPECT_EQ(r.boolean(t.get("b")), std::nullopt);
    EXPECT_EQ(r.string(t.get("s")), std::nullopt);
    EXPECT_EQ(r.address(t.get("ip"), Family::V4), std::nullopt);
    EXPECT_EQ(r.mac(t.get("mac")), std::nullopt);
    EXPECT_EQ(r.secondsAsMs(t.get("secs")), std::nullopt);
    EXPECT_EQ(r.unsignedInt(t.get("u")), std::nullopt);
    EXPECT_EQ(r.table(t.get("tbl")), nullptr);
  }
  EXPECT_EQ(r.takeMessages(), (std::vector<std::string>{
                                  "t.toml:1:5: x.n: must be 0..65535",
                                  "t.toml:2:5: x.b: must be a boolean",
                                  "t.toml:3:5: x.s: must be a string",
                                  "t.toml:4:8: x.ip: must be an IPv4 address (got \"10.0.0.300\")",
                                  "t.toml:5:7: x.mac: must be a unicast MAC address (got \"01:00:00:00:00:01\")",
                                  "t.toml:6:8: x.secs: must be > 0 and <= 86400 seconds",
                                  "t.toml:7:5: x.u: must be >= 0",
                                  "t.toml:8:7: x.tbl: must be a table",
                              }));
}

TEST(TomlReader, SyntaxError) {
  Reader r("t.toml");
  EXPECT_FALSE(r.parse("a = \n"));
  auto m = r.takeMessages();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].rfind("t.toml:1:", 0), 0u) << m[0];
  EXPECT_NE(m[0].find(": syntax error: "), std::string::npos) << m[0];
}

TEST(TomlReader, ClosestPrefersNearestThenFirst) {
  const std::string_view candidates[] = {"gateway4", "gateway6", "ipv4"};
  EXPECT_EQ(closest("gateway", candidates), "gateway4");  // a tie: the first
  EXPECT_EQ(closest("gatewy6", candidates), "gateway6");
  EXPECT_EQ(closest("ipv", candidates), "ipv4");
  EXPECT_EQ(closest("mtu", candidates), "");
}

TEST(TomlReader, QuoteEscapesControlCharacters) {
  EXPECT_EQ(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\x0a\"");
}

// ---- enum name tables ----

template <class E>
void expectRoundTrip() {
  for (const auto& e : EnumNames<E>::kTable) {
    EXPECT_EQ(enumName(e.value), e.name);
    EXPECT_EQ(parseEnum<E>(e.name), e.value) << e.name;
  }
  EXPECT_EQ(parseEnum<E>("no-such-name"), std::nullopt);
}

TEST(EnumNames, EveryNameRoundTrips) {
  expectRoundTrip<Proto>();
  expectRoundTrip<Scheduler>();
  expectRoundTrip<FwdMode>();
  expectRoundTrip<BackendState>();
  expectRoundTrip<ExceptionPath>();
  expectRoundTrip<HealthType>();
  expectRoundTrip<AllDownPolicy>();
  expectRoundTrip<LogLevel>();
  expectRoundTrip<Health>();
}

TEST(EnumNames, NamesAsTheFileAndTheApiSpellThem) {
  EXPECT_EQ(enumNameList<Proto>(), "tcp, udp");
  EXPECT_EQ(enumNameList<Scheduler>(), "maglev, source_hash, round_robin, weighted_round_robin");
  EXPECT_EQ(enumNameList<FwdMode>(), "dsr, ipip, gue, nat, fullnat");
  EXPECT_EQ(enumNameList<BackendState>(), "healthy, draining, unhealthy");
  EXPECT_EQ(enumNameList<ExceptionPath>(), "none, tap, xdp");
  EXPECT_EQ(enumNameList<HealthType>(), "none, tcp, http, udp");
  EXPECT_EQ(enumNameList<AllDownPolicy>(), "drop, keep");
  EXPECT_EQ(enumNameList<LogLevel>(), "debug, info, warning, error");
  EXPECT_EQ(enumNameList<Health>(), "unknown, up, down");
  EXPECT_EQ(toString(Proto::Udp), "udp");
  EXPECT_EQ(parseScheduler("source_hash"), Scheduler::SourceHash);
  EXPECT_EQ(enumName(static_cast<FwdMode>(200)), "?");
}

TEST(EnumNames, BadValueListsEveryName) {
  Reader r("t.toml");
  toml::table root = parseOk(r, "forwarding = \"tunnel\"\n");
  {
    TableReader t(r, root, "vips[0]");
    EXPECT_EQ(r.enumValue<FwdMode>(t.get("forwarding")), std::nullopt);
  }
  EXPECT_EQ(r.takeMessages(), std::vector<std::string>{
                                  "t.toml:1:14: vips[0].forwarding: must be one of dsr, ipip, gue, nat, fullnat (got \"tunnel\")"});
}

// The same through the loader, for a config-only enum and the log level (a string in Config).
TEST(EnumNames, LoaderListsEveryName) {
  const std::string doc =
      "[eal]\nworker_cores = [1]\n"
      "[[ports]]\nname = \"wan\"\ndevice = \"0000:01:00.0\"\nexception_path = \"kernel\"\n"
      "[[vips]]\naddress = \"198.18.1.10\"\non_all_down = \"hold\"\n[[vips.backends]]\naddress = \"198.18.2.11\"\n"
      "[log]\nlevel = \"trace\"\n";
  ConfigResult r = loadConfigString(doc, "t.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error.messages, (std::vector<std::string>{
                                  "t.toml:6:18: ports[0].exception_path: must be one of none, tap, xdp (got \"kernel\")",
                                  "t.toml:9:15: vips[0].on_all_down: must be one of drop, keep (got \"hold\")",
                                  "t.toml:13:9: log.level: must be one of debug, info, warning, error (got \"trace\")",
                              }));
}

}  // namespace
}  // namespace l4lb::control::reader
