// Config loader: the shipped example loads, defaults are what config.h promises, and each
// rejection produces its exact "file:line:col: key.path: message".
#include "control/config.h"

#include "config_text.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace l4lb::control {
namespace {

// The source tree's config/l4lb.toml, found from this file's path. Meson passes sources
// relative to the build directory ("../tests/unit/..."), which is the working directory under
// `meson test` but not when the binary is run from elsewhere; then resolve it against the build
// directory, the binary's grandparent (<build>/tests/config_test).
std::string sourcePath(const std::string& file) {
  namespace fs = std::filesystem;
  const std::string here = __FILE__;
  const std::string rel = here.substr(0, here.rfind("/tests/")) + "/" + file;
  if (fs::path(rel).is_absolute() || fs::exists(rel)) return rel;
  std::error_code ec;
  fs::path buildDir = fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path();
  return (buildDir / rel).lexically_normal().string();
}

std::string exampleConfigPath() { return sourcePath("config/l4lb.toml"); }

// Lines 1-5 of most documents below: a valid [eal] and one port. VIPs start on line 6.
const std::string& kPrelude = test::kConfigPrelude;

// A valid VIP for documents that test something else; lines 6-9 after kPrelude.
const std::string kVip =
    "[[vips]]\n"
    "address = \"198.18.1.10\"\n"
    "[[vips.backends]]\n"
    "address = \"198.18.2.11\"\n";

using test::configErrorsOf;
std::string errorsOf(const std::string& doc) { return configErrorsOf(doc); }

IpAddr ip(std::string_view s) { return IpAddr::parse(s).value(); }
MacAddr macOf(std::string_view s) { return MacAddr::parse(s).value(); }

TEST(ConfigExample, LoadsWithoutErrors) {
  const std::string path = exampleConfigPath();
  ConfigResult r = loadConfigFile(path);
  ASSERT_TRUE(r.ok()) << r.error.str();
  const Config& c = *r.config;
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.eal.main_core, 0u);
  EXPECT_EQ(c.eal.worker_cores, (std::vector<uint32_t>{1, 2}));
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "wan");
  EXPECT_EQ(c.ports[0].device, "net_af_xdp0,iface=l4lb-wan,start_queue=0");
  EXPECT_EQ(c.ports[0].gateway4, ip("198.18.0.254"));
  EXPECT_EQ(c.ports[1].name, "lan");
  EXPECT_EQ(c.ports[1].mtu, 9000);
  ASSERT_EQ(c.neighbours.size(), 2u);
  EXPECT_EQ(c.neighbours[1].address, ip("2001:db8::fe"));
  ASSERT_EQ(c.vips.size(), 3u);
  EXPECT_EQ(c.vips[0].name, "web");
  EXPECT_EQ(c.vips[0].port, 80);
  EXPECT_EQ(c.vips[0].forwarding, FwdMode::Dsr);
  ASSERT_EQ(c.vips[0].backends.size(), 2u);
  EXPECT_EQ(c.vips[0].backends[1].weight, 2u);
  EXPECT_EQ(c.vips[0].backends[1].via, "lan");
  EXPECT_EQ(c.vips[1].name, "198.18.1.20:53/udp");
  EXPECT_EQ(c.vips[1].protocol, Proto::Udp);
  EXPECT_EQ(c.vips[1].forwarding, FwdMode::Nat);
  EXPECT_EQ(c.vips[1].maglev_table_size, 251u);
  EXPECT_EQ(c.vips[1].backends[0].port, 5353);  // host byte order
  EXPECT_EQ(c.vips[2].address, ip("2001:db8:1::10"));
  EXPECT_EQ(c.vips[2].forwarding, FwdMode::Ipip);
  EXPECT_EQ(c.vips[2].tunnel_source4, ip("198.18.2.1"));
  EXPECT_EQ(c.vips[2].tunnel_source6, ip("2001:db8:2::1"));
  EXPECT_FALSE(c.vips[2].backends[1].address.isV4() == c.vips[2].address.isV4());

  EXPECT_EQ(c.ports[0].exception_path, ExceptionPath::Xdp);
  EXPECT_EQ(c.ports[0].kernel_iface, "l4lb-wan");
  EXPECT_EQ(c.ports[1].exception_path, ExceptionPath::Tap);
  EXPECT_EQ(c.ports[1].kernel_iface, "l4lb-lan");
  EXPECT_EQ(c.health.source4, ip("198.18.2.1"));
  EXPECT_EQ(c.health.source6, ip("2001:db8:2::1"));
  EXPECT_EQ(c.vips[0].on_all_down, AllDownPolicy::Drop);
  EXPECT_EQ(c.vips[0].health.type, HealthType::Http);
  EXPECT_EQ(c.vips[0].health.max_latency_ms, 200u);
  EXPECT_EQ(c.vips[0].backends[0].health.port, 0);
  EXPECT_EQ(c.vips[0].backends[1].health.port, 8080);
  EXPECT_EQ(c.vips[0].backends[1].health.http_path, "/healthz");
  EXPECT_EQ(c.vips[1].on_all_down, AllDownPolicy::Keep);
  EXPECT_EQ(c.vips[1].backends[0].health.type, HealthType::Udp);
  EXPECT_EQ(c.vips[1].backends[0].health.udp_expect, std::optional<std::string>("ok"));
  EXPECT_EQ(c.vips[2].backends[0].health.timeout_ms, 500u);
  EXPECT_EQ(c.vips[2].backends[1].weight, 0u);
}

TEST(ConfigLoad, MinimalConfigGetsDefaults) {
  ConfigResult r = loadConfigString(kPrelude + kVip, "min.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const Config& c = *r.config;
  EXPECT_EQ(c.path, "min.toml");

  EXPECT_EQ(c.eal.main_core, 0u);
  EXPECT_EQ(c.eal.worker_cores, (std::vector<uint32_t>{1}));
  EXPECT_TRUE(c.eal.hugepages);
  EXPECT_EQ(c.eal.memory_mb, 0u);
  EXPECT_FALSE(c.eal.in_memory);
  EXPECT_EQ(c.eal.file_prefix, "l4lb");
  EXPECT_TRUE(c.eal.extra_args.empty());
  EXPECT_FALSE(c.eal.idle_backoff);
  EXPECT_EQ(c.eal.idle_polls_before_sleep, 256u);
  EXPECT_EQ(c.eal.idle_sleep_max_us, 1000u);

  EXPECT_EQ(c.icmp.errors.per_second, 1000u);
  EXPECT_EQ(c.icmp.errors.burst, 200u);
  EXPECT_EQ(c.flow_table.capacity, 1u << 20);
  EXPECT_EQ(c.flow_table.tcp_syn_timeout_ms, 10'000u);
  EXPECT_EQ(c.flow_table.tcp_established_timeout_ms, 300'000u);
  EXPECT_EQ(c.flow_table.tcp_fin_timeout_ms, 10'000u);
  EXPECT_EQ(c.flow_table.udp_timeout_ms, 30'000u);

  ASSERT_EQ(c.ports.size(), 1u);
  const PortConfig& p = c.ports[0];
  EXPECT_EQ(p.name, "wan");
  EXPECT_EQ(p.device, "0000:01:00.0");
  EXPECT_EQ(p.queues, 0);
  EXPECT_EQ(p.mtu, 1500);
  EXPECT_FALSE(p.mac);
  EXPECT_FALSE(p.ipv4);
  EXPECT_FALSE(p.ipv6);
  EXPECT_FALSE(p.gateway4);
  EXPECT_FALSE(p.gateway6);

  EXPECT_TRUE(c.neighbours.empty());

  ASSERT_EQ(c.vips.size(), 1u);
  const VipConfig& v = c.vips[0];
  EXPECT_EQ(v.name, "198.18.1.10:0/tcp");
  EXPECT_EQ(v.address, ip("198.18.1.10"));
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(v.protocol, Proto::Tcp);
  EXPECT_EQ(v.scheduler, Scheduler::Maglev);
  EXPECT_EQ(v.forwarding, FwdMode::Dsr);
  EXPECT_EQ(v.maglev_table_size, 65537u);
  EXPECT_FALSE(v.tunnel_source4);
  EXPECT_FALSE(v.tunnel_source6);
  EXPECT_EQ(v.gue_port, 6080);
  ASSERT_EQ(v.backends.size(), 1u);
  const BackendConfig& b = v.backends[0];
  EXPECT_EQ(b.address, ip("198.18.2.11"));
  EXPECT_EQ(b.port, 0);
  EXPECT_EQ(b.weight, 1u);
  EXPECT_FALSE(b.mac);
  EXPECT_EQ(b.via, "");
}

TEST(ConfigLoad, EveryKeySet) {
  const std::string doc = R"([eal]
main_core = 3
worker_cores = [4, 5, 6]
hugepages = true
memory_mb = 512
in_memory = true
file_prefix = "lb_2"
extra_args = ["--a", "--b"]
lcores = "3@0,(4-6)@1"
idle_backoff = true
idle_polls_before_sleep = 16777216
idle_sleep_max_us = 10000
[flow_table]
capacity = 1024
tcp_syn_timeout = 2.5
tcp_established_timeout = 86400
tcp_fin_timeout = 0.001
udp_timeout = 1
[[ports]]
name = "p-1"
device = "net_ring0"
queues = 64
mtu = 68
mac = "02:AA:bb:cc:dd:ee"
ipv4 = "198.18.0.1/24"
ipv6 = "2001:db8::1/64"
gateway4 = "198.18.0.254"
gateway6 = "2001:db8::fe"
[[neighbours]]
address = "2001:db8::fe"
mac = "02:00:00:00:00:fe"
[[vips]]
name = "v6"
address = "2001:db8:1::10"
port = 65535
protocol = "udp"
scheduler = "weighted_round_robin"
forwarding = "gue"
maglev_table_size = 7
tunnel_source4 = "198.18.0.1"
tunnel_source6 = "2001:db8::1"
gue_port = 1
[[vips.backends]]
address = "198.18.2.11"
weight = 65535
mac = "02:00:00:00:02:11"
via = "p-1"
[[vips]]
address = "2001:db8:1::11"
port = 8080
forwarding = "nat"
[[vips.backends]]
address = "2001:db8:2::11"
port = 80
)";
  ConfigResult r = loadConfigString(doc, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const Config& c = *r.config;
  EXPECT_EQ(c.eal.main_core, 3u);
  EXPECT_EQ(c.eal.worker_cores, (std::vector<uint32_t>{4, 5, 6}));
  EXPECT_TRUE(c.eal.hugepages);
  EXPECT_EQ(c.eal.memory_mb, 512u);
  EXPECT_TRUE(c.eal.in_memory);
  EXPECT_EQ(c.eal.file_prefix, "lb_2");
  EXPECT_EQ(c.eal.extra_args, (std::vector<std::string>{"--a", "--b"}));
  EXPECT_EQ(c.eal.lcores, "3@0,(4-6)@1");
  EXPECT_TRUE(c.eal.idle_backoff);
  EXPECT_EQ(c.eal.idle_polls_before_sleep, 16777216u);
  EXPECT_EQ(c.eal.idle_sleep_max_us, 10000u);
  EXPECT_EQ(c.flow_table.capacity, 1024u);
  EXPECT_EQ(c.flow_table.tcp_syn_timeout_ms, 2500u);
  EXPECT_EQ(c.flow_table.tcp_established_timeout_ms, 86'400'000u);
  EXPECT_EQ(c.flow_table.tcp_fin_timeout_ms, 1u);
  EXPECT_EQ(c.flow_table.udp_timeout_ms, 1000u);
  const PortConfig& p = c.ports.at(0);
  EXPECT_EQ(p.name, "p-1");
  EXPECT_EQ(p.queues, 64);
  EXPECT_EQ(p.mtu, 68);
  EXPECT_EQ(p.mac, macOf("02:aa:bb:cc:dd:ee"));
  EXPECT_EQ(p.ipv4, Prefix::parse("198.18.0.1/24"));
  EXPECT_EQ(p.ipv6, Prefix::parse("2001:db8::1/64"));
  EXPECT_EQ(p.gateway4, ip("198.18.0.254"));
  EXPECT_EQ(p.gateway6, ip("2001:db8::fe"));
  ASSERT_EQ(c.neighbours.size(), 1u);
  EXPECT_EQ(c.neighbours[0].address, ip("2001:db8::fe"));
  EXPECT_EQ(c.neighbours[0].mac, macOf("02:00:00:00:00:fe"));
  const VipConfig& v = c.vips.at(0);
  EXPECT_EQ(v.name, "v6");
  EXPECT_EQ(v.port, 65535);
  EXPECT_EQ(v.protocol, Proto::Udp);
  EXPECT_EQ(v.scheduler, Scheduler::WeightedRoundRobin);
  EXPECT_EQ(v.forwarding, FwdMode::Gue);
  EXPECT_EQ(v.maglev_table_size, 7u);
  EXPECT_EQ(v.tunnel_source4, ip("198.18.0.1"));
  EXPECT_EQ(v.tunnel_source6, ip("2001:db8::1"));
  EXPECT_EQ(v.gue_port, 1);
  EXPECT_EQ(v.backends.at(0).weight, 65535u);
  EXPECT_EQ(v.backends.at(0).mac, macOf("02:00:00:00:02:11"));
  EXPECT_EQ(v.backends.at(0).via, "p-1");
  EXPECT_EQ(c.vips.at(1).name, "[2001:db8:1::11]:8080/tcp");
  EXPECT_EQ(c.vips.at(1).backends.at(0).port, 80);
}

TEST(ConfigLoad, UnreadableFile) {
  ConfigResult r = loadConfigFile("/nonexistent/l4lb.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error.str(), "/nonexistent/l4lb.toml: cannot read: No such file or directory");
}

TEST(ConfigLoad, DirectoryIsUnreadable) {
  ConfigResult r = loadConfigFile("/");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error.str(), "/: cannot read: Is a directory");
}

TEST(ConfigError, StrJoinsWithNewlines) {
  ConfigError e;
  EXPECT_EQ(e.str(), "");
  e.messages = {"a", "b", "c"};
  EXPECT_EQ(e.str(), "a\nb\nc");
}

TEST(ConfigReject, SyntaxError) {
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1,\n"),
            "t.toml:2:20: syntax error: Error while parsing array: encountered end-of-file");
  EXPECT_EQ(errorsOf("a = 1\na = 2\n"),
            "t.toml:2:5: syntax error: Error while parsing key-value pair: cannot redefine "
            "existing integer 'a'");
}

TEST(ConfigReject, EmptyDocument) {
  EXPECT_EQ(errorsOf(""),
            "t.toml:1:1: eal.worker_cores: is required (at least one worker core)\n"
            "t.toml:1:1: ports: at least one [[ports]] is required\n"
            "t.toml:1:1: vips: at least one [[vips]] is required");
}

TEST(ConfigReject, EmptyPortsAndVipsArrays) {
  EXPECT_EQ(errorsOf("ports = []\nvips = []\n[eal]\nworker_cores = [1]\n"),
            "t.toml:1:9: ports: at least one [[ports]] is required\n"
            "t.toml:2:8: vips: at least one [[vips]] is required");
}

TEST(ConfigReject, SectionsOfTheWrongShape) {
  EXPECT_EQ(errorsOf("eal = 1\nflow_table = []\nports = 2\nvips = [3]\nneighbours = {}\n"),
            "t.toml:1:7: eal: must be a table\n"
            "t.toml:2:14: flow_table: must be a table\n"
            "t.toml:3:9: ports: must be an array of tables ([[ports]])\n"
            "t.toml:4:9: vips[0]: must be a table\n"
            "t.toml:5:14: neighbours: must be an array of tables ([[neighbours]])");
}

TEST(ConfigReject, WorkerCoresMissingOrEmpty) {
  EXPECT_EQ(errorsOf("[eal]\nmain_core = 0\n[[ports]]\nname = \"a\"\ndevice = \"d\"\n" + kVip),
            "t.toml:1:1: eal.worker_cores: is required (at least one worker core)");
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = []\n[[ports]]\nname = \"a\"\ndevice = \"d\"\n" + kVip),
            "t.toml:2:16: eal.worker_cores: must list at least one worker core");
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = 1\n[[ports]]\nname = \"a\"\ndevice = \"d\"\n" + kVip),
            "t.toml:2:16: eal.worker_cores: must be an array of integers");
}

TEST(ConfigReject, OverlappingCores) {
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1, 1, 0, 2, -1]\n" + kPrelude.substr(25) + kVip),
            "t.toml:2:20: eal.worker_cores[1]: core 1 is listed twice\n"
            "t.toml:2:23: eal.worker_cores[2]: core 0 is the main core\n"
            "t.toml:2:29: eal.worker_cores[4]: must be >= 0");
  EXPECT_EQ(errorsOf("[eal]\nmain_core = 2\nworker_cores = [1, 2]\n" + kPrelude.substr(25) + kVip),
            "t.toml:3:20: eal.worker_cores[1]: core 2 is the main core");
}

TEST(ConfigLoad, IcmpErrorLimit) {
  ConfigResult r = loadConfigString("[icmp]\nerrors_per_second = 50\nburst = 7\n" + kPrelude + kVip, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->icmp.errors.per_second, 50u);
  EXPECT_EQ(r.config->icmp.errors.burst, 7u);
}

TEST(ConfigReject, IcmpValues) {
  EXPECT_EQ(errorsOf("[icmp]\nerrors_per_second = 0\nburst = 10000001\n" + kPrelude + kVip),
            "t.toml:2:21: icmp.errors_per_second: must be 1..10000000\n"
            "t.toml:3:9: icmp.burst: must be 1..10000000");
  EXPECT_EQ(errorsOf("[icmp]\nerrors_per_second = \"fast\"\nbursts = 3\n" + kPrelude + kVip),
            "t.toml:2:21: icmp.errors_per_second: must be an integer\n"
            "t.toml:3:1: icmp.bursts: unknown key, did you mean \"burst\"?");
  EXPECT_EQ(errorsOf("icmp = 3\n" + kPrelude + kVip), "t.toml:1:8: icmp: must be a table");
}

TEST(ConfigReject, EalValues) {
  const std::string doc = R"([eal]
main_core = 4294967296
worker_cores = [1]
hugepages = 1
memory_mb = -1
in_memory = "no"
file_prefix = "a/b"
extra_args = ["ok", 2]
)";
  EXPECT_EQ(errorsOf(doc + kPrelude.substr(25) + kVip),
            "t.toml:2:13: eal.main_core: must be <= 4294967295\n"
            "t.toml:4:13: eal.hugepages: must be a boolean\n"
            "t.toml:5:13: eal.memory_mb: must be >= 0\n"
            "t.toml:6:13: eal.in_memory: must be a boolean\n"
            "t.toml:7:15: eal.file_prefix: must be non-empty and use only A-Z a-z 0-9 _ -\n"
            "t.toml:8:21: eal.extra_args[1]: must be a string");
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nfile_prefix = \"\"\nextra_args = \"-v\"\n" +
                     kPrelude.substr(25) + kVip),
            "t.toml:3:15: eal.file_prefix: must be non-empty and use only A-Z a-z 0-9 _ -\n"
            "t.toml:4:14: eal.extra_args: must be an array of strings");
}

TEST(ConfigReject, EalLcores) {
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nlcores = \"0@0;1@1\"\n" + kPrelude.substr(25) + kVip),
            "t.toml:3:10: eal.lcores: must be an EAL --lcores map such as \"0@0,1@1,2@1\" (digits and @ , ( ) - "
            "only)");
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nlcores = \"\"\n" + kPrelude.substr(25) + kVip),
            "t.toml:3:10: eal.lcores: must be an EAL --lcores map such as \"0@0,1@1,2@1\" (digits and @ , ( ) - "
            "only)");
}

TEST(ConfigReject, EalIdleBackoff) {
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nidle_backoff = \"yes\"\nidle_polls_before_sleep = 0\n"
                     "idle_sleep_max_us = 10001\n" + kPrelude.substr(25) + kVip),
            "t.toml:3:16: eal.idle_backoff: must be a boolean\n"
            "t.toml:4:27: eal.idle_polls_before_sleep: must be 1..16777216\n"
            "t.toml:5:21: eal.idle_sleep_max_us: must be 1..10000");
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nidle_sleep_max_us = 0\nidle_polls_before_sleep = 16777217\n" +
                     kPrelude.substr(25) + kVip),
            "t.toml:3:21: eal.idle_sleep_max_us: must be 1..10000\n"
            "t.toml:4:27: eal.idle_polls_before_sleep: must be 1..16777216");
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nidle_sleep_max_ms = 5\n" + kPrelude.substr(25) + kVip),
            "t.toml:3:1: eal.idle_sleep_max_ms: unknown key, did you mean \"idle_sleep_max_us\"?");
}

TEST(ConfigReject, InMemoryNeedsHugepages) {
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nhugepages = false\nin_memory = true\n" +
                     kPrelude.substr(25) + kVip),
            "t.toml:4:13: eal.in_memory: cannot be true with hugepages = false (EAL refuses the pair)");
}

TEST(ConfigReject, FlowTableValues) {
  const std::string doc = kPrelude + kVip + R"([flow_table]
capacity = 1023
tcp_syn_timeout = 0
tcp_established_timeout = 86400.5
tcp_fin_timeout = "10"
udp_timeout = 0.0004
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:11:12: flow_table.capacity: must be 1024..134217728\n"
            "t.toml:12:19: flow_table.tcp_syn_timeout: must be > 0 and <= 86400 seconds\n"
            "t.toml:13:27: flow_table.tcp_established_timeout: must be > 0 and <= 86400 seconds\n"
            "t.toml:14:19: flow_table.tcp_fin_timeout: must be a number (seconds)\n"
            "t.toml:15:15: flow_table.udp_timeout: must be > 0 and <= 86400 seconds");
  EXPECT_EQ(errorsOf(kPrelude + kVip + "[flow_table]\ncapacity = 134217729\n"),
            "t.toml:11:12: flow_table.capacity: must be 1024..134217728");
}

// Flood admission ([flow_table] embryonic_share, udp_new_timeout) and the per-VIP new-flow rate.
TEST(ConfigAdmission, DefaultsAndValues) {
  ConfigResult d = loadConfigString(kPrelude + kVip, "t.toml");
  ASSERT_TRUE(d.ok()) << d.error.str();
  EXPECT_EQ(d.config->flow_table.embryonic_ppm, 250'000u);
  EXPECT_EQ(d.config->flow_table.udp_new_timeout_ms, 10'000u);
  EXPECT_EQ(d.config->vips[0].new_flow_rate, 0u);
  EXPECT_FALSE(d.config->vips[0].over_rate_drop);
  ConfigResult r = loadConfigString(kPrelude + "[[vips]]\naddress = \"198.18.1.10\"\n" +
                                        "new_flow_rate = 5000\nnew_flow_burst = 100\nover_rate = \"drop\"\n" +
                                        "[[vips.backends]]\naddress = \"198.18.2.11\"\n" +
                                        "[flow_table]\nembryonic_share = 0.1\nudp_new_timeout = 2\n",
                                    "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->flow_table.embryonic_ppm, 100'000u);
  EXPECT_EQ(r.config->flow_table.udp_new_timeout_ms, 2000u);
  EXPECT_EQ(r.config->vips[0].new_flow_rate, 5000u);
  EXPECT_EQ(r.config->vips[0].new_flow_burst, 100u);
  EXPECT_TRUE(r.config->vips[0].over_rate_drop);
  ConfigResult one = loadConfigString(kPrelude + kVip + "[flow_table]\nembryonic_share = 1\n", "t.toml");
  ASSERT_TRUE(one.ok()) << one.error.str();
  EXPECT_EQ(one.config->flow_table.embryonic_ppm, 1'000'000u);
}

TEST(ConfigReject, AdmissionValues) {
  for (const char* bad : {"0", "0.0", "1.5", "-0.25", "nan", "\"0.25\"", "0.0000001"}) {
    EXPECT_EQ(errorsOf(kPrelude + kVip + "[flow_table]\nembryonic_share = " + bad + "\n"),
              "t.toml:11:19: flow_table.embryonic_share: must be a number > 0 and <= 1 (the share of capacity "
              "embryonic entries may hold)")
        << bad;
  }
  EXPECT_EQ(errorsOf(kPrelude + kVip + "[flow_table]\nudp_new_timeout = 0\n"),
            "t.toml:11:19: flow_table.udp_new_timeout: must be > 0 and <= 86400 seconds");
  // VIP keys (line 10 is the VIP's first key after kVip's backend: put them before it).
  const std::string vip = "[[vips]]\naddress = \"198.18.1.10\"\n";
  const std::string be = "[[vips.backends]]\naddress = \"198.18.2.11\"\n";
  EXPECT_EQ(errorsOf(kPrelude + vip + "new_flow_rate = -1\nnew_flow_burst = 0\nover_rate = \"queue\"\n" + be),
            "t.toml:8:17: vips[0].new_flow_rate: must be 0..100000000\n"
            "t.toml:9:18: vips[0].new_flow_burst: must be 1..100000000\n"
            "t.toml:10:13: vips[0].over_rate: must be one of stateless, drop (got \"queue\")");
  EXPECT_EQ(errorsOf(kPrelude + vip + "new_flow_burst = 10\nover_rate = \"drop\"\n" + be),
            "t.toml:8:18: vips[0].new_flow_burst: only allowed with new_flow_rate > 0\n"
            "t.toml:9:13: vips[0].over_rate: only allowed with new_flow_rate > 0");
}

TEST(ConfigReject, WrongTypes) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
name = 7
device = true
mtu = "1500"
queues = 1.0
[[vips]]
address = 198
port = "80"
[[vips.backends]]
address = "198.18.2.11"
weight = [1]
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:4:8: ports[0].name: must be a string\n"
            "t.toml:5:10: ports[0].device: must be a string\n"
            "t.toml:6:7: ports[0].mtu: must be an integer\n"
            "t.toml:7:10: ports[0].queues: must be an integer\n"
            "t.toml:9:11: vips[0].address: must be a string\n"
            "t.toml:10:8: vips[0].port: must be an integer\n"
            "t.toml:13:10: vips[0].backends[0].weight: must be an integer");
}

TEST(ConfigReject, MissingRequiredKeysPointAtTheirTable) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
mtu = 1500
[[vips]]
port = 80
  [[vips.backends]]
  weight = 2
[[neighbours]]
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:3:1: ports[0].name: is required\n"
            "t.toml:3:1: ports[0].device: is required\n"
            "t.toml:5:1: vips[0].address: is required\n"
            "t.toml:7:3: vips[0].backends[0].address: is required\n"
            "t.toml:9:1: neighbours[0].address: is required\n"
            "t.toml:9:1: neighbours[0].mac: is required");
}

TEST(ConfigReject, DuplicateVip) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
port = 80
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
address = "198.18.1.10"
port = 80
protocol = "tcp"
[[vips.backends]]
address = "198.18.2.12"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:11:1: vips[1]: duplicate of vips[0] (same address, port and protocol)");
}

TEST(ConfigReject, SameAddressAndPortWithOtherProtocolIsNotADuplicate) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
port = 53
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
address = "198.18.1.10"
port = 53
protocol = "udp"
[[vips.backends]]
address = "198.18.2.11"
)";
  ConfigResult r = loadConfigString(doc, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->vips[0].name, "198.18.1.10:53/tcp");
  EXPECT_EQ(r.config->vips[1].name, "198.18.1.10:53/udp");
}

TEST(ConfigReject, DuplicateVipName) {
  const std::string doc = kPrelude + R"([[vips]]
name = "web"
address = "198.18.1.10"
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
name = "web"
address = "198.18.1.11"
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
name = ""
address = "198.18.1.12"
[[vips.backends]]
address = "198.18.2.11"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:12:8: vips[1].name: \"web\" is already used by vips[0]\n"
            "t.toml:17:8: vips[2].name: must not be empty");
}

TEST(ConfigReject, DuplicateBackend) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
forwarding = "nat"
  [[vips.backends]]
  address = "198.18.2.11"
  port = 80
  [[vips.backends]]
  address = "198.18.2.11"
  port = 81
  [[vips.backends]]
  address = "198.18.2.11"
  port = 80
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:15:3: vips[0].backends[2]: duplicate of vips[0].backends[0] (same address "
            "and port)");
}

TEST(ConfigReject, BackendFamilyNeedsTunnelForDsrAndNat) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
[[vips.backends]]
address = "2001:db8::11"
[[vips]]
address = "2001:db8:1::10"
forwarding = "nat"
[[vips.backends]]
address = "198.18.2.11"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:9:11: vips[0].backends[0].address: IPv6 backend for an IPv4 VIP needs "
            "forwarding ipip, gue or fullnat\n"
            "t.toml:14:11: vips[1].backends[0].address: IPv4 backend for an IPv6 VIP needs "
            "forwarding ipip, gue or fullnat");
  // The same backends are fine once tunnelled.
  std::string tunnelled = doc;
  tunnelled.replace(tunnelled.find("[[vips.backends]]"), 0, "forwarding = \"ipip\"\n");
  tunnelled.replace(tunnelled.find("\"nat\""), 5, "\"gue\"");
  ConfigResult r = loadConfigString(tunnelled, "t.toml");
  EXPECT_TRUE(r.ok()) << r.error.str();
}

TEST(ConfigReject, TunnelOptions) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
forwarding = "ipip"
tunnel_source4 = "2001:db8::1"
tunnel_source6 = "198.18.0.1"
gue_port = 6080
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
address = "198.18.1.11"
tunnel_source4 = "198.18.0.1"
tunnel_source6 = "2001:db8::1"
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
address = "198.18.1.12"
forwarding = "gue"
gue_port = 0
[[vips.backends]]
address = "198.18.2.11"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:9:18: vips[0].tunnel_source4: must be an IPv4 address (got \"2001:db8::1\")\n"
            "t.toml:10:18: vips[0].tunnel_source6: must be an IPv6 address (got \"198.18.0.1\")\n"
            "t.toml:11:12: vips[0].gue_port: only allowed with forwarding gue\n"
            "t.toml:16:18: vips[1].tunnel_source4: only allowed with forwarding ipip or gue\n"
            "t.toml:17:18: vips[1].tunnel_source6: only allowed with forwarding ipip or gue\n"
            "t.toml:23:12: vips[2].gue_port: must be 1..65535");
}

TEST(ConfigReject, MaglevTableSize) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
maglev_table_size = 65536
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
address = "198.18.1.11"
maglev_table_size = 5
[[vips.backends]]
address = "198.18.2.11"
[[vips]]
address = "198.18.1.12"
maglev_table_size = 16777259
[[vips.backends]]
address = "198.18.2.11"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:8:21: vips[0].maglev_table_size: must be a prime number (e.g. 65537)\n"
            "t.toml:13:21: vips[1].maglev_table_size: must be 7..16777213\n"
            "t.toml:18:21: vips[2].maglev_table_size: must be 7..16777213");
}

TEST(ConfigReject, MaglevTableSizeMustExceedBackendCount) {
  std::string doc = kPrelude + "[[vips]]\naddress = \"198.18.1.10\"\nmaglev_table_size = 7\n";
  for (int i = 1; i <= 7; i++)
    doc += "[[vips.backends]]\naddress = \"198.18.2." + std::to_string(i) + "\"\n";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:8:21: vips[0].maglev_table_size: must be larger than the number of backends "
            "(7)");
}

TEST(ConfigReject, VipWithoutBackends) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
[[vips]]
address = "198.18.1.11"
backends = []
[[vips]]
address = "198.18.1.12"
backends = 3
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:6:1: vips[0].backends: a VIP needs at least one backend\n"
            "t.toml:10:12: vips[1].backends: a VIP needs at least one backend\n"
            "t.toml:13:12: vips[2].backends: must be an array of tables ([[vips.backends]])");
}

TEST(ConfigReject, BackendValues) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
  [[vips.backends]]
  address = "198.18.2.11"
  port = 8080
  weight = -1
  [[vips.backends]]
  address = "198.18.2.300"
  weight = 65536
  [[vips.backends]]
  address = "198.18.2.12"
  port = 65536
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:10:10: vips[0].backends[0].port: a nonzero backend port needs forwarding nat or fullnat\n"
            "t.toml:11:12: vips[0].backends[0].weight: must be 0..65535\n"
            "t.toml:13:13: vips[0].backends[1].address: must be an IPv4 or IPv6 address (got "
            "\"198.18.2.300\")\n"
            "t.toml:14:12: vips[0].backends[1].weight: must be 0..65535\n"
            "t.toml:17:10: vips[0].backends[2].port: must be 0..65535");
}

TEST(ConfigReject, DuplicatePortNamesAndDevices) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
name = "wan"
device = "0000:01:00.0"
[[ports]]
name = "wan"
device = "0000:01:00.0"
[[ports]]
name = "this-name-is-much-longer-than-32c"
device = ""
[[ports]]
name = "a b"
device = "x"
)" + kVip;
  EXPECT_EQ(errorsOf(doc),
            "t.toml:7:8: ports[1].name: \"wan\" is already used by ports[0]\n"
            "t.toml:8:10: ports[1].device: \"0000:01:00.0\" is already used by ports[0]\n"
            "t.toml:10:8: ports[2].name: must be 1..32 characters from A-Z a-z 0-9 _ -\n"
            "t.toml:11:10: ports[2].device: must not be empty\n"
            "t.toml:13:8: ports[3].name: must be 1..32 characters from A-Z a-z 0-9 _ -");
}

TEST(ConfigReject, PortValues) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
name = "wan"
device = "d0"
queues = 65
mtu = 67
ipv4 = "2001:db8::1/64"
ipv6 = "198.18.0.1/24"
[[ports]]
name = "lan"
device = "d1"
mtu = 9001
ipv4 = "198.18.0.1"
ipv6 = "2001:db8::1/129"
)" + kVip;
  EXPECT_EQ(errorsOf(doc),
            "t.toml:6:10: ports[0].queues: must be 0..64\n"
            "t.toml:7:7: ports[0].mtu: must be 68..9000\n"
            "t.toml:8:8: ports[0].ipv4: must be an IPv4 prefix like 198.18.0.1/24 (got "
            "\"2001:db8::1/64\")\n"
            "t.toml:9:8: ports[0].ipv6: must be an IPv6 prefix like 2001:db8::1/64 (got "
            "\"198.18.0.1/24\")\n"
            "t.toml:13:7: ports[1].mtu: must be 68..9000\n"
            "t.toml:14:8: ports[1].ipv4: must be an IPv4 prefix like 198.18.0.1/24 (got "
            "\"198.18.0.1\")\n"
            "t.toml:15:8: ports[1].ipv6: must be an IPv6 prefix like 2001:db8::1/64 (got "
            "\"2001:db8::1/129\")");
}

TEST(ConfigReject, Gateways) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
name = "a"
device = "d0"
ipv4 = "198.18.0.1/24"
gateway4 = "198.18.1.254"
ipv6 = "2001:db8::1/64"
gateway6 = "2001:db8::1"
[[ports]]
name = "b"
device = "d1"
gateway4 = "198.18.0.254"
gateway6 = "198.18.0.254"
)" + kVip;
  EXPECT_EQ(errorsOf(doc),
            "t.toml:7:12: ports[0].gateway4: 198.18.1.254 is not inside ipv4 198.18.0.1/24\n"
            "t.toml:9:12: ports[0].gateway6: 2001:db8::1 is the port's own address\n"
            "t.toml:13:12: ports[1].gateway4: needs ipv4 to be set on this port\n"
            "t.toml:14:12: ports[1].gateway6: must be an IPv6 address (got \"198.18.0.254\")");
}

TEST(ConfigReject, UnknownVia) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
  [[vips.backends]]
  address = "198.18.2.11"
  via = "wna"
  [[vips.backends]]
  address = "198.18.2.12"
  via = "internal"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:10:9: vips[0].backends[0].via: no port named \"wna\", did you mean \"wan\"?\n"
            "t.toml:13:9: vips[0].backends[1].via: no port named \"internal\"");
}

TEST(ConfigReject, UnknownKeysAtEveryLevel) {
  const std::string doc = R"(vip = 1
[eal]
worker_cores = [1]
main_cores = 0
[flow_table]
capacityy = 5
[[ports]]
name = "wan"
device = "d"
mtux = 1500
[[neighbours]]
address = "198.18.0.254"
mac = "02:00:00:00:00:fe"
macc = "x"
[[vips]]
address = "198.18.1.10"
schedular = "maglev"
completely_unrelated = true
  [[vips.backends]]
  address = "198.18.2.11"
  wieght = 2
  [vips.backends.nested]
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:1:1: vip: unknown key, did you mean \"vips\"?\n"
            "t.toml:4:1: eal.main_cores: unknown key, did you mean \"main_core\"?\n"
            "t.toml:6:1: flow_table.capacityy: unknown key, did you mean \"capacity\"?\n"
            "t.toml:10:1: ports[0].mtux: unknown key, did you mean \"mtu\"?\n"
            "t.toml:14:1: neighbours[0].macc: unknown key, did you mean \"mac\"?\n"
            "t.toml:17:1: vips[0].schedular: unknown key, did you mean \"scheduler\"?\n"
            "t.toml:18:1: vips[0].completely_unrelated: unknown key\n"
            "t.toml:21:3: vips[0].backends[0].wieght: unknown key, did you mean \"weight\"?\n"
            "t.toml:22:18: vips[0].backends[0].nested: unknown key");
}

TEST(ConfigReject, UnknownEnumStringsListTheValidOnes) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
protocol = "sctp"
scheduler = "random"
forwarding = "DSR"
[[vips.backends]]
address = "198.18.2.11"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:8:12: vips[0].protocol: must be one of tcp, udp (got \"sctp\")\n"
            "t.toml:9:13: vips[0].scheduler: must be one of maglev, source_hash, round_robin, "
            "weighted_round_robin (got \"random\")\n"
            "t.toml:10:14: vips[0].forwarding: must be one of dsr, ipip, gue, nat, fullnat (got \"DSR\")");
}

TEST(ConfigReject, MacAddresses) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
name = "wan"
device = "d"
mac = "02:00:00:00:00"
[[neighbours]]
address = "198.18.0.254"
mac = "01:00:5e:00:00:01"
[[neighbours]]
address = "198.18.0.253"
mac = "00:00:00:00:00:00"
[[vips]]
address = "198.18.1.10"
[[vips.backends]]
address = "198.18.2.11"
mac = "02-00-00-00-02-11"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:6:7: ports[0].mac: must be a MAC address like 02:00:00:00:00:01 (got "
            "\"02:00:00:00:00\")\n"
            "t.toml:9:7: neighbours[0].mac: must be a unicast MAC address (got "
            "\"01:00:5e:00:00:01\")\n"
            "t.toml:12:7: neighbours[1].mac: must be a unicast MAC address (got "
            "\"00:00:00:00:00:00\")\n"
            "t.toml:17:7: vips[0].backends[0].mac: must be a MAC address like 02:00:00:00:00:01 "
            "(got \"02-00-00-00-02-11\")");
}

TEST(ConfigReject, NeighbourAddresses) {
  const std::string doc = kPrelude + kVip + R"([[neighbours]]
address = "198.18.0.254"
mac = "02:00:00:00:00:fe"
[[neighbours]]
address = "198.18.0.254"
mac = "02:00:00:00:00:fd"
[[neighbours]]
address = "gateway"
mac = "02:00:00:00:00:fc"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:13:1: neighbours[1]: duplicate of neighbours[0] (same address)\n"
            "t.toml:17:11: neighbours[2].address: must be an IPv4 or IPv6 address (got "
            "\"gateway\")");
}

TEST(ConfigReject, ControlCharactersAreEscapedInMessages) {
  const std::string doc = kPrelude + "[[vips]]\naddress = \"1\\n2\"\n" +
                          "[[vips.backends]]\naddress = \"198.18.2.11\"\n";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:7:11: vips[0].address: must be an IPv4 or IPv6 address (got \"1\\x0a2\")");
}

TEST(ConfigReject, ManyErrorsAreCollectedInFileOrder) {
  // vips come before eal and ports in the file; messages follow the file, not the schema.
  const std::string doc = R"([[vips]]
address = "198.18.1.10"
forwarding = "tunnel"
maglev_table_size = 100
  [[vips.backends]]
  address = "198.18.2.11"
  weight = -1
  via = "lan"
[eal]
worker_cores = [0]
[[ports]]
name = "wan"
device = "d"
mtu = 10000
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:3:14: vips[0].forwarding: must be one of dsr, ipip, gue, nat, fullnat (got \"tunnel\")\n"
            "t.toml:4:21: vips[0].maglev_table_size: must be a prime number (e.g. 65537)\n"
            "t.toml:7:12: vips[0].backends[0].weight: must be 0..65535\n"
            "t.toml:8:9: vips[0].backends[0].via: no port named \"lan\", did you mean \"wan\"?\n"
            "t.toml:10:17: eal.worker_cores[0]: core 0 is the main core\n"
            "t.toml:14:7: ports[0].mtu: must be 68..9000");
}

TEST(ConfigReject, BrokenConfigsNeverYieldAConfig) {
  const std::string broken[] = {
      "",
      "=",
      "[eal]\nworker_cores = [1]\n",
      kPrelude,
      kPrelude + kVip + "[[vips.backends]]\naddress = \"198.18.2.11\"\n",
      kPrelude + kVip + "bogus = 1\n",
      kPrelude + kVip + "weight = 65536\n",
      kPrelude + kVip + "[vips.backends.health_check]\ntype = \"tcp\"\n",
      "[eal]\nworker_cores = [1,1]\n" + kPrelude.substr(25) + kVip,
      kPrelude + "[[vips]]\naddress = \"198.18.1.10\"\nbackends = [1]\n",
      std::string("\xff\xfe", 2),
      std::string("a = \"\0\"", 7),
  };
  for (const std::string& doc : broken) {
    ConfigResult r = loadConfigString(doc, "t.toml");
    EXPECT_FALSE(r.ok()) << doc;
    EXPECT_FALSE(r.error.messages.empty()) << doc;
    for (const std::string& m : r.error.messages) EXPECT_EQ(m.rfind("t.toml:", 0), 0u) << m;
  }
}

// ---- exception path, health checks, on_all_down, [health] ----

TEST(ConfigHealth, Defaults) {
  ConfigResult r = loadConfigString(kPrelude + kVip, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const Config& c = *r.config;
  EXPECT_EQ(c.ports.at(0).exception_path, ExceptionPath::None);
  EXPECT_EQ(c.ports.at(0).kernel_iface, "");
  EXPECT_EQ(c.ports.at(0).xdp_program, "");
  EXPECT_FALSE(c.health.source4);
  EXPECT_FALSE(c.health.source6);
  const VipConfig& v = c.vips.at(0);
  EXPECT_EQ(v.on_all_down, AllDownPolicy::Drop);
  for (const HealthCheckConfig* h : {&v.health, &v.backends.at(0).health}) {
    EXPECT_EQ(h->type, HealthType::None);
    EXPECT_EQ(h->interval_ms, 1000u);
    EXPECT_EQ(h->timeout_ms, 1000u);
    EXPECT_EQ(h->rise, 2u);
    EXPECT_EQ(h->fall, 3u);
    EXPECT_EQ(h->max_latency_ms, 0u);
    EXPECT_EQ(h->jitter_pct, 10u);
    EXPECT_EQ(h->port, 0);
    EXPECT_EQ(h->http_path, "/");
    EXPECT_EQ(h->http_host, "");
    EXPECT_TRUE(h->http_expect.empty());
    EXPECT_EQ(h->udp_payload, "ping");
    EXPECT_FALSE(h->udp_expect);
  }
}

TEST(ConfigHealth, EveryKeySetAndBackendOverridesMerge) {
  const std::string doc = R"([eal]
worker_cores = [1]
[health]
source4 = "198.18.0.1"
source6 = "2001:db8::1"
[[ports]]
name = "wan"
device = "net_af_xdp0,iface=veth-wan,start_queue=0"
exception_path = "xdp"
kernel_iface = "veth-wan"
xdp_program = "/usr/lib/l4lb/redirect.o"
[[ports]]
name = "lan"
device = "0000:01:00.1"
exception_path = "tap"
[[ports]]
name = "mgmt"
device = "0000:01:00.2"
exception_path = "tap"
kernel_iface = "lb.mgmt_0"
[[ports]]
name = "x"
device = "net_af_xdp1,start_queue=0,iface=eth7"
exception_path = "xdp"
[[vips]]
address = "198.18.1.10"
port = 80
on_all_down = "keep"
[vips.health_check]
type = "http"
interval_ms = 2000
timeout_ms = 1500
rise = 1
fall = 100
max_latency_ms = 1500
jitter_pct = 50
port = 8080
http_path = "/healthz?full=1"
http_host = "www.example.test"
http_expect = [200, "300-399", "404"]
  [[vips.backends]]
  address = "198.18.2.11"
  weight = 0
  [[vips.backends]]
  address = "198.18.2.12"
  [vips.backends.health_check]
  port = 9090
  rise = 5
  http_expect = ["100-599"]
  [[vips.backends]]
  address = "198.18.2.13"
  [vips.backends.health_check]
  type = "udp"
  udp_payload = "hello"
  udp_expect = ""
  [[vips.backends]]
  address = "198.18.2.14"
  [vips.backends.health_check]
  type = "none"
)";
  ConfigResult r = loadConfigString(doc, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const Config& c = *r.config;
  EXPECT_EQ(c.health.source4, ip("198.18.0.1"));
  EXPECT_EQ(c.health.source6, ip("2001:db8::1"));
  ASSERT_EQ(c.ports.size(), 4u);
  EXPECT_EQ(c.ports[0].exception_path, ExceptionPath::Xdp);
  EXPECT_EQ(c.ports[0].kernel_iface, "veth-wan");
  EXPECT_EQ(c.ports[0].xdp_program, "/usr/lib/l4lb/redirect.o");
  EXPECT_EQ(c.ports[1].exception_path, ExceptionPath::Tap);
  EXPECT_EQ(c.ports[1].kernel_iface, "l4lb-lan");
  EXPECT_EQ(c.ports[2].kernel_iface, "lb.mgmt_0");
  EXPECT_EQ(c.ports[3].exception_path, ExceptionPath::Xdp);
  EXPECT_EQ(c.ports[3].kernel_iface, "eth7");
  EXPECT_EQ(c.ports[3].xdp_program, "");

  const VipConfig& v = c.vips.at(0);
  EXPECT_EQ(v.on_all_down, AllDownPolicy::Keep);
  const HealthCheckConfig& h = v.health;
  EXPECT_EQ(h.type, HealthType::Http);
  EXPECT_EQ(h.interval_ms, 2000u);
  EXPECT_EQ(h.timeout_ms, 1500u);
  EXPECT_EQ(h.rise, 1u);
  EXPECT_EQ(h.fall, 100u);
  EXPECT_EQ(h.max_latency_ms, 1500u);
  EXPECT_EQ(h.jitter_pct, 50u);
  EXPECT_EQ(h.port, 8080);
  EXPECT_EQ(h.http_path, "/healthz?full=1");
  EXPECT_EQ(h.http_host, "www.example.test");
  using Ranges = std::vector<std::pair<uint16_t, uint16_t>>;
  EXPECT_EQ(h.http_expect, (Ranges{{200, 200}, {300, 399}, {404, 404}}));

  ASSERT_EQ(v.backends.size(), 4u);
  EXPECT_EQ(v.backends[0].weight, 0u);
  // No table of its own: exactly the VIP's check.
  const HealthCheckConfig& b0 = v.backends[0].health;
  EXPECT_EQ(b0.type, HealthType::Http);
  EXPECT_EQ(b0.port, 8080);
  EXPECT_EQ(b0.rise, 1u);
  EXPECT_EQ(b0.http_expect, h.http_expect);
  // Overrides key by key; the rest is the VIP's.
  const HealthCheckConfig& b1 = v.backends[1].health;
  EXPECT_EQ(b1.type, HealthType::Http);
  EXPECT_EQ(b1.port, 9090);
  EXPECT_EQ(b1.rise, 5u);
  EXPECT_EQ(b1.fall, 100u);
  EXPECT_EQ(b1.interval_ms, 2000u);
  EXPECT_EQ(b1.timeout_ms, 1500u);
  EXPECT_EQ(b1.http_path, "/healthz?full=1");
  EXPECT_EQ(b1.http_expect, (Ranges{{100, 599}}));
  const HealthCheckConfig& b2 = v.backends[2].health;
  EXPECT_EQ(b2.type, HealthType::Udp);
  EXPECT_EQ(b2.port, 8080);
  EXPECT_EQ(b2.udp_payload, "hello");
  EXPECT_EQ(b2.udp_expect, std::optional<std::string>(""));
  EXPECT_EQ(v.backends[3].health.type, HealthType::None);
  // The VIP's own check is not changed by its backends' overrides.
  EXPECT_EQ(v.health.rise, 1u);
  EXPECT_EQ(v.health.port, 8080);
}

TEST(ConfigHealth, ShortIntervalShortensTheDefaultTimeoutOnly) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
port = 80
[vips.health_check]
type = "tcp"
interval_ms = 300
  [[vips.backends]]
  address = "198.18.2.11"
  [[vips.backends]]
  address = "198.18.2.12"
  [vips.backends.health_check]
  interval_ms = 5000
[[vips]]
address = "198.18.1.11"
port = 80
[vips.health_check]
type = "tcp"
interval_ms = 300
timeout_ms = 200
  [[vips.backends]]
  address = "198.18.2.13"
  [vips.backends.health_check]
  interval_ms = 5000
)";
  ConfigResult r = loadConfigString(doc, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const Config& c = *r.config;
  EXPECT_EQ(c.vips[0].health.timeout_ms, 300u);
  EXPECT_EQ(c.vips[0].backends[0].health.timeout_ms, 300u);
  EXPECT_EQ(c.vips[0].backends[1].health.interval_ms, 5000u);
  EXPECT_EQ(c.vips[0].backends[1].health.timeout_ms, 1000u);
  // An explicit timeout is inherited as written.
  EXPECT_EQ(c.vips[1].backends[0].health.timeout_ms, 200u);
}

TEST(ConfigHealth, CheckPortMayComeFromTheBackendOrTheVip) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
forwarding = "nat"
[vips.health_check]
type = "tcp"
  [[vips.backends]]
  address = "198.18.2.11"
  port = 8080
  [[vips.backends]]
  address = "198.18.2.12"
  [vips.backends.health_check]
  port = 22
  [[vips.backends]]
  address = "198.18.2.13"
  [vips.backends.health_check]
  type = "none"
)";
  ConfigResult r = loadConfigString(doc, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->vips[0].backends[0].health.port, 0);  // resolved by the daemon: 8080
  EXPECT_EQ(r.config->vips[0].backends[1].health.port, 22);
}

TEST(ConfigReject, ExceptionPath) {
  const std::string doc = R"([eal]
worker_cores = [1]
[[ports]]
name = "p0"
device = "d0"
exception_path = "kernel"
[[ports]]
name = "p1"
device = "d1"
kernel_iface = "p1"
xdp_program = "/x.o"
[[ports]]
name = "p2"
device = "net_tap0,iface=t0"
exception_path = "tap"
[[ports]]
name = "a-very-long-name"
device = "d3"
exception_path = "tap"
[[ports]]
name = "p4"
device = "d4"
exception_path = "tap"
kernel_iface = "sixteen-chars-xx"
xdp_program = ""
[[ports]]
name = "p5"
device = "d5"
exception_path = "tap"
kernel_iface = "a/b"
[[ports]]
name = "p6"
device = "0000:01:00.0"
exception_path = "xdp"
[[ports]]
name = "p7"
device = "net_af_xdp0,start_queue=0"
exception_path = "xdp"
[[ports]]
name = "p8"
device = "net_af_xdp1,iface=veth0"
exception_path = "xdp"
kernel_iface = "veth1"
xdp_program = 7
[[ports]]
name = "p9"
device = "d9"
exception_path = "tap"
xdp_program = "/x.o"
)" + kVip;
  EXPECT_EQ(errorsOf(doc),
            "t.toml:6:18: ports[0].exception_path: must be one of none, tap, xdp (got \"kernel\")\n"
            "t.toml:10:16: ports[1].kernel_iface: only allowed with exception_path tap or xdp\n"
            "t.toml:11:15: ports[1].xdp_program: only allowed with exception_path xdp\n"
            "t.toml:15:18: ports[2].exception_path: tap cannot be used on a net_tap device "
            "(\"net_tap0,iface=t0\" is already a kernel interface)\n"
            "t.toml:19:18: ports[3].kernel_iface: the default \"l4lb-a-very-long-name\" is longer "
            "than 15 characters; set kernel_iface\n"
            "t.toml:24:16: ports[4].kernel_iface: must be 1..15 characters from A-Z a-z 0-9 _ - . "
            "(a Linux interface name)\n"
            "t.toml:25:15: ports[4].xdp_program: must not be empty (omit it for the program "
            "installed with l4lb)\n"
            "t.toml:30:16: ports[5].kernel_iface: must be 1..15 characters from A-Z a-z 0-9 _ - . "
            "(a Linux interface name)\n"
            "t.toml:34:18: ports[6].exception_path: xdp needs a net_af_xdp device (got "
            "\"0000:01:00.0\")\n"
            "t.toml:38:18: ports[7].exception_path: xdp needs an iface= argument in device "
            "\"net_af_xdp0,start_queue=0\"\n"
            "t.toml:43:16: ports[8].kernel_iface: must match the device's iface= (\"veth0\") with "
            "exception_path xdp\n"
            "t.toml:44:15: ports[8].xdp_program: must be a string\n"
            "t.toml:49:15: ports[9].xdp_program: only allowed with exception_path xdp");
}

TEST(ConfigReject, HealthCheckValues) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
port = 80
on_all_down = "fail"
[vips.health_check]
type = "icmp"
interval_ms = 9
timeout_ms = 0
rise = 0
fall = 101
max_latency_ms = -1
jitter_pct = 51
port = 65536
http_path = "healthz"
http_host = "a b"
http_expect = []
udp_payload = ""
udp_expect = 1
  [[vips.backends]]
  address = "198.18.2.11"
  [vips.backends.health_check]
  interval_ms = 3600001
  timeout_ms = "1s"
  http_path = "/a\r\nX: y"
  http_host = ""
  http_expect = [99, "200-", "399-200", "2xx", 600, true]
  udp_payload = """)" + std::string(1025, 'x') + R"("""
  udp_expect = """)" + std::string(1025, 'y') + R"("""
  intervall_ms = 1
  [[vips.backends]]
  address = "198.18.2.12"
  health_check = 1
  [[vips.backends]]
  address = "198.18.2.13"
  [vips.backends.health_check]
  http_expect = "200"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:9:15: vips[0].on_all_down: must be one of drop, keep (got \"fail\")\n"
            "t.toml:11:8: vips[0].health_check.type: must be one of none, tcp, http, udp (got "
            "\"icmp\")\n"
            "t.toml:12:15: vips[0].health_check.interval_ms: must be 10..3600000\n"
            "t.toml:13:14: vips[0].health_check.timeout_ms: must be 1..3600000\n"
            "t.toml:14:8: vips[0].health_check.rise: must be 1..100\n"
            "t.toml:15:8: vips[0].health_check.fall: must be 1..100\n"
            "t.toml:16:18: vips[0].health_check.max_latency_ms: must be 0..3600000\n"
            "t.toml:17:14: vips[0].health_check.jitter_pct: must be 0..50\n"
            "t.toml:18:8: vips[0].health_check.port: must be 0..65535\n"
            "t.toml:19:13: vips[0].health_check.http_path: must start with \"/\" and be at most "
            "1024 visible ASCII characters (no spaces)\n"
            "t.toml:20:13: vips[0].health_check.http_host: must be 1..255 visible ASCII "
            "characters (no spaces)\n"
            "t.toml:21:15: vips[0].health_check.http_expect: must not be empty (omit it to "
            "accept 200-299)\n"
            "t.toml:22:15: vips[0].health_check.udp_payload: must be 1..1024 bytes\n"
            "t.toml:23:14: vips[0].health_check.udp_expect: must be a string\n"
            "t.toml:27:17: vips[0].backends[0].health_check.interval_ms: must be 10..3600000\n"
            "t.toml:28:16: vips[0].backends[0].health_check.timeout_ms: must be an integer\n"
            "t.toml:29:15: vips[0].backends[0].health_check.http_path: must start with \"/\" and "
            "be at most 1024 visible ASCII characters (no spaces)\n"
            "t.toml:30:15: vips[0].backends[0].health_check.http_host: must be 1..255 visible "
            "ASCII characters (no spaces)\n"
            "t.toml:31:18: vips[0].backends[0].health_check.http_expect[0]: must be 100..599\n"
            "t.toml:31:22: vips[0].backends[0].health_check.http_expect[1]: must be a status code "
            "or a range like \"200-399\" within 100..599 (got \"200-\")\n"
            "t.toml:31:30: vips[0].backends[0].health_check.http_expect[2]: must be a status code "
            "or a range like \"200-399\" within 100..599 (got \"399-200\")\n"
            "t.toml:31:41: vips[0].backends[0].health_check.http_expect[3]: must be a status code "
            "or a range like \"200-399\" within 100..599 (got \"2xx\")\n"
            "t.toml:31:48: vips[0].backends[0].health_check.http_expect[4]: must be 100..599\n"
            "t.toml:31:53: vips[0].backends[0].health_check.http_expect[5]: must be an integer or "
            "a string like \"200-399\"\n"
            "t.toml:32:17: vips[0].backends[0].health_check.udp_payload: must be 1..1024 bytes\n"
            "t.toml:33:16: vips[0].backends[0].health_check.udp_expect: must be at most 1024 "
            "bytes\n"
            "t.toml:34:3: vips[0].backends[0].health_check.intervall_ms: unknown key, did you mean "
            "\"interval_ms\"?\n"
            "t.toml:37:18: vips[0].backends[1].health_check: must be a table\n"
            "t.toml:41:17: vips[0].backends[2].health_check.http_expect: must be an array of "
            "status codes and ranges like \"200-399\"");
}

TEST(ConfigReject, HealthCheckAcrossKeys) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
port = 80
[vips.health_check]
type = "tcp"
interval_ms = 1000
timeout_ms = 1001
http_path = "/x"
udp_expect = "pong"
  [[vips.backends]]
  address = "198.18.2.11"
[[vips]]
address = "198.18.1.11"
port = 80
[vips.health_check]
type = "http"
timeout_ms = 500
max_latency_ms = 600
  [[vips.backends]]
  address = "198.18.2.12"
  [[vips.backends]]
  address = "198.18.2.13"
  [vips.backends.health_check]
  type = "udp"
  http_host = "h"
  udp_payload = "p"
[[vips]]
address = "198.18.1.12"
port = 80
[vips.health_check]
type = "http"
timeout_ms = 800
max_latency_ms = 700
http_expect = [204]
  [[vips.backends]]
  address = "198.18.2.14"
  [vips.backends.health_check]
  interval_ms = 500
  [[vips.backends]]
  address = "198.18.2.15"
  [vips.backends.health_check]
  timeout_ms = 600
  [[vips.backends]]
  address = "198.18.2.16"
  [vips.backends.health_check]
  type = "tcp"
[[vips]]
address = "198.18.1.13"
port = 80
[vips.health_check]
type = "tcp"
max_latency_ms = 700
  [[vips.backends]]
  address = "198.18.2.17"
  [vips.backends.health_check]
  interval_ms = 500
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:12:14: vips[0].health_check.timeout_ms: must be 1..interval_ms (1000)\n"
            "t.toml:13:13: vips[0].health_check.http_path: only allowed with type http\n"
            "t.toml:14:14: vips[0].health_check.udp_expect: only allowed with type udp\n"
            "t.toml:23:18: vips[1].health_check.max_latency_ms: must be 0 or 1..timeout_ms (500)\n"
            "t.toml:30:15: vips[1].backends[1].health_check.http_host: only allowed with type "
            "http\n"
            "t.toml:43:17: vips[2].backends[0].health_check.interval_ms: must be >= timeout_ms "
            "(800)\n"
            "t.toml:47:16: vips[2].backends[1].health_check.timeout_ms: must be >= max_latency_ms "
            "(700)\n"
            "t.toml:61:17: vips[3].backends[0].health_check.interval_ms: must be >= max_latency_ms "
            "(700) (the timeout defaults to the interval when shorter than 1000 ms)");
}

TEST(ConfigReject, HealthCheckPortZero) {
  const std::string doc = kPrelude + R"([[vips]]
address = "198.18.1.10"
[vips.health_check]
type = "tcp"
  [[vips.backends]]
  address = "198.18.2.11"
  [[vips.backends]]
  address = "198.18.2.12"
  [vips.backends.health_check]
  rise = 3
  [[vips.backends]]
  address = "198.18.2.13"
  [vips.backends.health_check]
  port = 0
  [[vips.backends]]
  address = "198.18.2.14"
  [vips.backends.health_check]
  port = 80
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:10:3: vips[0].backends[0].health_check.port: is required: the backend's and "
            "the VIP's port are 0\n"
            "t.toml:14:3: vips[0].backends[1].health_check.port: is required: the backend's and "
            "the VIP's port are 0\n"
            "t.toml:18:3: vips[0].backends[2].health_check.port: is required: the backend's and "
            "the VIP's port are 0");
}

TEST(ConfigReject, HealthSources) {
  const std::string doc = kPrelude + kVip + R"([health]
source4 = "2001:db8::1"
source6 = "198.18.0.1"
source = "198.18.0.1"
)";
  EXPECT_EQ(errorsOf(doc),
            "t.toml:11:11: health.source4: must be an IPv4 address (got \"2001:db8::1\")\n"
            "t.toml:12:11: health.source6: must be an IPv6 address (got \"198.18.0.1\")\n"
            "t.toml:13:1: health.source: unknown key, did you mean \"source4\"?");
  EXPECT_EQ(errorsOf("health = 1\n" + kPrelude + kVip), "t.toml:1:10: health: must be a table");
}

}  // namespace
}  // namespace l4lb::control

// ---- fragments ----
namespace l4lb::control {
namespace {

TEST(ConfigFragments, DefaultsAndValues) {
  ConfigResult d = loadConfigString(kPrelude + kVip, "t.toml");
  ASSERT_TRUE(d.ok()) << d.error.str();
  EXPECT_EQ(d.config->vips[0].fragments, FragPolicy::Track);
  EXPECT_EQ(d.config->fragments.timeout_ms, 2000u);
  EXPECT_EQ(d.config->fragments.table_size, 4096u);
  EXPECT_EQ(d.config->fragments.max_held, 256u);
  EXPECT_EQ(d.config->fragments.max_held_per_datagram, 8u);
  ConfigResult r = loadConfigString(
      kPrelude + "[fragments]\ntimeout = 0.5\ntable_size = 128\nmax_held = 0\nmax_held_per_datagram = 64\n" + kVip +
          "[[vips]]\naddress = \"198.18.1.11\"\nfragments = \"drop\"\n[[vips.backends]]\naddress = \"198.18.2.12\"\n",
      "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->fragments.timeout_ms, 500u);
  EXPECT_EQ(r.config->fragments.table_size, 128u);
  EXPECT_EQ(r.config->fragments.max_held, 0u);
  EXPECT_EQ(r.config->fragments.max_held_per_datagram, 64u);
  EXPECT_EQ(r.config->vips[0].fragments, FragPolicy::Track);
  EXPECT_EQ(r.config->vips[1].fragments, FragPolicy::Drop);
}

TEST(ConfigFragments, ErrorsNameThePlace) {
  const std::string bad_vip = "[[vips]]\naddress = \"198.18.1.10\"\nfragments = \"reassemble\"\n[[vips.backends]]\naddress = \"198.18.2.11\"\n";
  const std::string e = errorsOf(kPrelude + bad_vip);
  EXPECT_NE(e.find("t.toml:8:13: vips[0].fragments:"), std::string::npos) << e;
  EXPECT_NE(e.find("track, drop"), std::string::npos) << e;
  const std::string e2 = errorsOf(kPrelude + "[fragments]\ntimeout = 0.01\ntable_size = 8\nmax_held = 5000\nmax_held_per_datagram = 0\n" + kVip);
  EXPECT_NE(e2.find("t.toml:7:11: fragments.timeout: must be between 0.1s and 60s"), std::string::npos) << e2;
  EXPECT_NE(e2.find("t.toml:8:14: fragments.table_size:"), std::string::npos) << e2;
  EXPECT_NE(e2.find("t.toml:9:12: fragments.max_held:"), std::string::npos) << e2;
  EXPECT_NE(e2.find("t.toml:10:25: fragments.max_held_per_datagram:"), std::string::npos) << e2;
  EXPECT_NE(errorsOf(kPrelude + "[fragments]\ntimout = 2\n" + kVip).find("fragments.timout"), std::string::npos);
}

// [cluster] and [bgp]: defaults, values, and every rejection at its place.
const std::string kNamedVips =
    "[[vips]]\nname = \"web\"\naddress = \"198.18.42.100\"\n[[vips.backends]]\naddress = \"198.18.2.11\"\n"
    "[[vips]]\nname = \"web6\"\naddress = \"2001:db8:42::100\"\n[[vips.backends]]\naddress = \"2001:db8:2::11\"\n";

TEST(ConfigBgp, AbsentMeansNoBgpAndHostName) {
  ConfigResult r = loadConfigString(kPrelude + kVip, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_FALSE(r.config->bgp.enabled);
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(r.config->cluster.name, std::string(host));
}

TEST(ConfigBgp, DefaultsAndValues) {
  ConfigResult d = loadConfigString(kPrelude + kNamedVips + "[bgp]\n", "t.toml");
  ASSERT_TRUE(d.ok()) << d.error.str();
  const BgpConfig& b = d.config->bgp;
  EXPECT_TRUE(b.enabled);
  EXPECT_EQ(b.bird_socket, "/run/bird/bird.ctl");
  EXPECT_EQ(b.include_file, "/run/l4lb/bird-vips.conf");
  EXPECT_TRUE(b.announce_all);
  EXPECT_TRUE(b.announce.empty());
  EXPECT_FALSE(b.next_hop4 || b.next_hop6);
  EXPECT_TRUE(b.withdraw_when_down);
  EXPECT_EQ(b.drain_time_ms, 5000u);

  ConfigResult r = loadConfigString(kPrelude + kNamedVips +
                                        "[cluster]\nname = \"lb1.site-a\"\n"
                                        "[bgp]\nbird_socket = \"/tmp/b.ctl\"\ninclude_file = \"/tmp/v.conf\"\n"
                                        "announce = [\"web6\"]\nnext_hop4 = \"198.18.40.11\"\n"
                                        "next_hop6 = \"2001:db8:40::11\"\nwithdraw_when_down = false\ndrain_time = 0.25\n",
                                    "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const BgpConfig& c = r.config->bgp;
  EXPECT_EQ(r.config->cluster.name, "lb1.site-a");
  EXPECT_EQ(c.bird_socket, "/tmp/b.ctl");
  EXPECT_EQ(c.include_file, "/tmp/v.conf");
  EXPECT_FALSE(c.announce_all);
  EXPECT_EQ(c.announce, std::vector<std::string>{"web6"});
  EXPECT_EQ(c.next_hop4, ip("198.18.40.11"));
  EXPECT_EQ(c.next_hop6, ip("2001:db8:40::11"));
  EXPECT_FALSE(c.withdraw_when_down);
  EXPECT_EQ(c.drain_time_ms, 250u);
  ConfigResult z = loadConfigString(kPrelude + kNamedVips + "[bgp]\ndrain_time = 0\nannounce = []\n", "t.toml");
  ASSERT_TRUE(z.ok()) << z.error.str();
  EXPECT_EQ(z.config->bgp.drain_time_ms, 0u);
  EXPECT_FALSE(z.config->bgp.announce_all);  // an empty list announces nothing
}

TEST(ConfigBgp, ErrorsNameThePlace) {
  // kPrelude is lines 1-5, kNamedVips lines 6-15; [bgp] starts on line 16.
  const std::string e = errorsOf(kPrelude + kNamedVips +
                                 "[bgp]\n"
                                 "bird_socket = \"bird.ctl\"\n"
                                 "include_file = \"/run/l4lb/\"\n"
                                 "announce = [\"web\", \"www\", \"web\", 3]\n"
                                 "next_hop4 = \"2001:db8:40::11\"\n"
                                 "next_hop6 = \"ff02::1\"\n"
                                 "withdraw_when_down = \"yes\"\n"
                                 "drain_time = -1\n"
                                 "drain = 5\n"
                                 "[cluster]\nname = \"lb 1\"\n");
  EXPECT_NE(e.find("t.toml:17:15: bgp.bird_socket: must be an absolute path (got \"bird.ctl\")"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:18:16: bgp.include_file: must name a file, not a directory"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:19:20: bgp.announce[1]: no VIP is named \"www\""), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:19:27: bgp.announce[2]: \"web\" is listed twice"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:19:34: bgp.announce[3]:"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:20:13: bgp.next_hop4: must be an IPv4 address"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:21:13: bgp.next_hop6: must be a unicast address (got ff02::1)"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:22:22: bgp.withdraw_when_down:"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:23:14: bgp.drain_time: must be a number of seconds, 0..3600"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:24:1: bgp.drain: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("t.toml:26:8: cluster.name: must be 1..64 characters"), std::string::npos) << e;
  // Not a table, not an array.
  EXPECT_NE(errorsOf(kPrelude + kNamedVips + "bgp = 1\n").find("bgp"), std::string::npos);
  const std::string e2 = errorsOf(kPrelude + kNamedVips + "[bgp]\nannounce = \"web\"\nnext_hop4 = \"0.0.0.0\"\n");
  EXPECT_NE(e2.find("t.toml:17:12: bgp.announce: must be an array of VIP names"), std::string::npos) << e2;
  EXPECT_NE(e2.find("t.toml:18:13: bgp.next_hop4: must be a unicast address (got 0.0.0.0)"), std::string::npos) << e2;
}

}  // namespace
}  // namespace l4lb::control

namespace l4lb::control {
namespace {

// ---- what operators get wrong: each with the message that says so ----

TEST(ConfigOperator, EveryBackendAtWeightZeroIsRefused) {
  const std::string vip =
      "[[vips]]\n"                  // 6
      "address = \"198.18.1.10\"\n"  // 7
      "[[vips.backends]]\n"         // 8
      "address = \"198.18.2.11\"\n"  // 9
      "weight = 0\n"                // 10
      "[[vips.backends]]\n"         // 11
      "address = \"198.18.2.12\"\n"  // 12
      "weight = 0\n";               // 13
  EXPECT_EQ(errorsOf(kPrelude + vip),
            "t.toml:8:1: vips[0].backends: every backend has weight 0, so the VIP can never serve; give one a "
            "weight > 0 (to take a VIP out of service, remove it)");
  // One backend still weighted: a VIP with a drained backend is fine.
  std::string one = kPrelude + vip;
  one.replace(one.rfind("weight = 0"), 10, "weight = 1");
  EXPECT_TRUE(loadConfigString(one, "t.toml").ok());
}

TEST(ConfigOperator, NatBackendWithoutPortSaysWhichPortIsUsed) {
  const std::string vip =
      "[[vips]]\n"                  // 6
      "address = \"198.18.1.10\"\n"  // 7
      "port = 80\n"                 // 8
      "forwarding = \"nat\"\n"      // 9
      "[[vips.backends]]\n"         // 10
      "address = \"198.18.2.11\"\n"  // 11
      "[[vips.backends]]\n"         // 12
      "address = \"198.18.2.12\"\n"  // 13
      "port = 8080\n";              // 14
  ConfigResult r = loadConfigString(kPrelude + vip, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.notes, (std::vector<std::string>{
                         "t.toml:10:1: vips[0].backends[0].port: note: not set: forwarding nat sends to the VIP's port 80"}));
  EXPECT_EQ(r.config->vips[0].backends[0].port, 0);
  // DSR never changes the port, and a VIP on every port (port 0) keeps the client's: no note.
  std::string dsr = kPrelude + vip;
  dsr.replace(dsr.find("\"nat\""), 5, "\"dsr\"");
  dsr.erase(dsr.find("port = 8080\n"));
  EXPECT_TRUE(loadConfigString(dsr, "t.toml").notes.empty());
}

TEST(ConfigOperator, FlowTablesThatDoNotFitTheEalMemoryAreRefused) {
  const std::string eal = "[eal]\nworker_cores = [1, 2]\nmemory_mb = 4096\n";  // 1-3
  const std::string rest = kPrelude.substr(25) + kVip +                       // 4-10
                           "[flow_table]\n"                                   // 11
                           "capacity = 134217728\n";                          // 12
  EXPECT_EQ(errorsOf(eal + rest),
            "t.toml:12:12: flow_table.capacity: the tables and pools need about 32811 MiB: flow tables 32768 MiB "
            "(2 workers x (IPv4 4096 MiB + IPv6 12288 MiB)), packet buffers 39 MiB, outer fragments 5 MiB, rings 1 "
            "MiB; more than eal.memory_mb = 4096 (lower flow_table.capacity or raise eal.memory_mb)");
  // Without memory_mb the EAL takes hugepages as it needs them: nothing to compare against.
  EXPECT_TRUE(loadConfigString("[eal]\nworker_cores = [1, 2]\n" + rest, "t.toml").ok());
  // Without hugepages DPDK gives 64 MiB of 4 KiB pages unless told otherwise (a 2368-byte mbuf
  // takes a page of its own); the default capacity needs more.
  EXPECT_EQ(errorsOf("[eal]\nworker_cores = [1]\nhugepages = false\n" + kPrelude.substr(25) + kVip),
            "t.toml:1:1: eal: the tables and pools need about 166 MiB: flow tables 128 MiB (1 worker x (IPv4 32 MiB "
            "+ IPv6 96 MiB)), packet buffers 34 MiB, outer fragments 5 MiB, rings 0 MiB; more than the 64 MiB the "
            "EAL takes without hugepages (eal.hugepages = false, eal.memory_mb = 0) (lower flow_table.capacity or "
            "raise eal.memory_mb)");
}

TEST(ConfigOperator, KeyThatTomlScopedIntoTheTableBelow) {
  const std::string vip =
      "[[vips]]\n"                  // 6
      "address = \"198.18.1.10\"\n"  // 7
      "[[vips.backends]]\n"         // 8
      "address = \"198.18.2.11\"\n"  // 9
      "scheduler = \"source_hash\"\n"  // 10
      "[vips.backends.health_check]\n"  // 11
      "weight = 2\n";               // 12
  EXPECT_EQ(errorsOf(kPrelude + vip),
            "t.toml:10:1: vips[0].backends[0].scheduler: unknown key here: \"scheduler\" is a key of vips[0], but "
            "TOML puts every key that follows a [[vips.backends]] header into that table; write it above the header\n"
            "t.toml:12:1: vips[0].backends[0].health_check.weight: unknown key here: \"weight\" is a key of "
            "vips[0].backends[0], but TOML puts every key that follows a [vips.backends.health_check] header into "
            "that table; write it above the header");
}

TEST(ConfigOperator, KeyWithoutItsUnitSuffix) {
  struct Case {
    std::string doc;
    std::string message;
  };
  const std::string eal = "[eal]\nworker_cores = [1]\n";  // lines 1-2; the key on line 3
  const std::string check = kPrelude + kVip + "[vips.health_check]\n";  // the key on line 11
  const Case cases[] = {
      {eal + "memory = 512\n" + kPrelude.substr(25) + kVip,
       "t.toml:3:1: eal.memory: unknown key, did you mean \"memory_mb\"? (the value is in megabytes)"},
      {eal + "idle_sleep_max = 10\n" + kPrelude.substr(25) + kVip,
       "t.toml:3:1: eal.idle_sleep_max: unknown key, did you mean \"idle_sleep_max_us\"? (the value is in "
       "microseconds)"},
      {check + "interval = 5\n",
       "t.toml:11:1: vips[0].health_check.interval: unknown key, did you mean \"interval_ms\"? (the value is in "
       "milliseconds)"},
      {check + "timeout = 5\n",
       "t.toml:11:1: vips[0].health_check.timeout: unknown key, did you mean \"timeout_ms\"? (the value is in "
       "milliseconds)"},
      {check + "max_latency = 5\n",
       "t.toml:11:1: vips[0].health_check.max_latency: unknown key, did you mean \"max_latency_ms\"? (the value is "
       "in milliseconds)"},
      {check + "jitter = 5\n",
       "t.toml:11:1: vips[0].health_check.jitter: unknown key, did you mean \"jitter_pct\"? (the value is in "
       "percent)"},
  };
  std::set<std::string> covered;
  for (const Case& c : cases) {
    EXPECT_EQ(errorsOf(c.doc), c.message);
    const size_t q = c.message.find("did you mean \"") + 14;
    covered.insert(c.message.substr(q, c.message.find('"', q) - q));
  }
  // Every key of the schema with a unit suffix has its case above.
  std::set<std::string> suffixed;
  for (const std::string& k : loadConfigFile(exampleConfigPath()).keys) {
    const std::string leaf = k.substr(k.rfind('.') + 1);
    for (std::string_view s : {"_ms", "_us", "_mb", "_pct"})
      if (leaf.size() > s.size() && leaf.compare(leaf.size() - s.size(), s.size(), s) == 0) suffixed.insert(leaf);
  }
  EXPECT_EQ(suffixed, covered);
}

TEST(ConfigOperator, BuilderMessagesArePlacedInTheFile) {
  const std::string path = ::testing::TempDir() + "placed.toml";
  {
    std::ofstream f(path);
    f << kPrelude << kVip  // the backend's table on line 8
      << "[[vips.backends]]\n"            // 10
         "address = \"2001:db8:10::12\"\n";  // 11
  }
  EXPECT_EQ(placeMessages(path, {"vips[0].backends[1]: no port reaches 2001:db8:10::12 (give a port a connected "
                                 "prefix or gateway for it, or set via)",
                                 "vips[0].backends[1].mac: no MAC known for 2001:db8:10::12",
                                 "ports[0].gateway4: no MAC known for 198.18.0.254",
                                 "ports: 3 configured, at most 2", "vips[7]: not in the file"}),
            (std::vector<std::string>{
                path + ":10:1: vips[0].backends[1]: no port reaches 2001:db8:10::12 (give a port a connected prefix "
                       "or gateway for it, or set via)",
                path + ":10:1: vips[0].backends[1].mac: no MAC known for 2001:db8:10::12",
                path + ":3:1: ports[0].gateway4: no MAC known for 198.18.0.254",
                path + ":3:1: ports: 3 configured, at most 2",
                path + ":6:1: vips[7]: not in the file"}));
  std::remove(path.c_str());
  EXPECT_EQ(placeMessages(path, {"vips[0]: x"}), (std::vector<std::string>{path + ": vips[0]: x"}));
}

// l4lb.toml(5) names every section twice: in the list of DESCRIPTION and as a heading. Both
// must be the tables the loader reads (the shipped example has every one).
TEST(ConfigOperator, ManPageListsTheLoadersSections) {
  const ConfigResult r = loadConfigFile(exampleConfigPath());
  ASSERT_TRUE(r.ok()) << r.error.str();
  const std::set<std::string> loader(r.sections.begin(), r.sections.end());
  EXPECT_TRUE(loader.count("[[vips.backends]]") && loader.count("[bgp]") && loader.count("[fragments]"));
  std::ifstream f(sourcePath("docs/man/l4lb.toml.5.scd"));
  ASSERT_TRUE(f) << sourcePath("docs/man/l4lb.toml.5.scd");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t from = text.find("The sections are");
  ASSERT_NE(from, std::string::npos);
  const std::string list = text.substr(from, text.find("\n\n", from) - from);
  std::set<std::string> listed, headings;
  for (size_t at = list.find("*["); at != std::string::npos; at = list.find("*[", at + 1))
    listed.insert(list.substr(at + 1, list.find("]*", at) - at));
  for (size_t at = text.find("\n# ["); at != std::string::npos; at = text.find("\n# [", at + 1))
    headings.insert(text.substr(at + 3, text.find('\n', at + 1) - at - 3));
  EXPECT_EQ(listed, loader);
  EXPECT_EQ(headings, loader);
}

}  // namespace
}  // namespace l4lb::control
