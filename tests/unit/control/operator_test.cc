// The operator interface's pieces that need no daemon: the [control]/[metrics]/[log] keys, the
// one-shot socket servers, the Prometheus rendering and the config digest.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "control/api_server.h"
#include "control/config.h"
#include "control/metrics.h"
#include "control/sha256.h"
#include "test_configs.h"

namespace l4lb::control {
namespace {

const std::string kBase = l4lb::test::configText("operator_base.toml");

ConfigResult load(const std::string& extra) { return loadConfigString(kBase + extra, "t.toml"); }

TEST(OperatorConfig, Defaults) {
  ConfigResult r = load("");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->control.socket, "/run/l4lb/l4lb.sock");
  EXPECT_EQ(r.config->control.mode, 0600u);
  EXPECT_EQ(r.config->metrics.listen, "127.0.0.1:9100");
  ASSERT_TRUE(r.config->metrics.addr);
  EXPECT_EQ(r.config->metrics.addr->str(), "127.0.0.1");
  EXPECT_EQ(r.config->metrics.port, 9100);
  EXPECT_EQ(r.config->log.level, "info");
}

TEST(OperatorConfig, Values) {
  ConfigResult r = load("[control]\nsocket = \"/tmp/x.sock\"\nmode = \"0660\"\n[metrics]\nlisten = \"[2001:db8::1]:9200\"\n"
                        "[log]\nlevel = \"debug\"\n");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->control.socket, "/tmp/x.sock");
  EXPECT_EQ(r.config->control.mode, 0660u);
  EXPECT_EQ(r.config->metrics.addr->str(), "2001:db8::1");
  EXPECT_EQ(r.config->metrics.port, 9200);
  EXPECT_EQ(r.config->log.level, "debug");
  r = load("[metrics]\nlisten = \"\"\n[control]\nsocket = \"\"\n");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_FALSE(r.config->metrics.addr);
  EXPECT_EQ(r.config->control.socket, "");
}

TEST(OperatorConfig, Errors) {
  struct Case {
    const char* toml;
    const char* msg;
  } cases[] = {
      {"[control]\nsocket = \"rel.sock\"\n", "t.toml:13:10: control.socket: must be an absolute path"},
      {"[control]\nmode = \"0800\"\n", "t.toml:13:8: control.mode: must be octal permission bits such as \"0600\" (got \"0800\")"},
      {"[control]\nmode = \"0700\"\n", "t.toml:13:8: control.mode: must not contain execute bits (got \"0700\")"},
      {"[control]\nmode = 600\n", "t.toml:13:8: control.mode: must be a string"},
      {"[control]\nsockt = \"/x\"\n", "t.toml:13:1: control.sockt: unknown key, did you mean \"socket\"?"},
      {"[metrics]\nlisten = \"127.0.0.1\"\n", "t.toml:13:10: metrics.listen: must be \"ADDR:PORT\", \"[ADDR6]:PORT\" or \"\" (got \"127.0.0.1\")"},
      {"[metrics]\nlisten = \"127.0.0.1:0\"\n", "metrics.listen: must be"},
      {"[metrics]\nlisten = \"2001:db8::1:80\"\n", "metrics.listen: must be"},
      {"[metrics]\nlisten = \"[127.0.0.1]:80\"\n", "metrics.listen: must be"},
      {"[log]\nlevel = \"verbose\"\n", "t.toml:13:9: log.level: must be one of debug, info, warning, error (got \"verbose\")"},
  };
  for (const Case& c : cases) {
    ConfigResult r = load(c.toml);
    ASSERT_FALSE(r.ok()) << c.toml;
    ASSERT_EQ(r.error.messages.size(), 1u) << r.error.str();
    EXPECT_NE(r.error.messages[0].find(c.msg), std::string::npos) << r.error.messages[0];
  }
}

TEST(Sha256, Fips180Vectors) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Metrics, HistogramIsCumulative) {
  Histogram h;
  h.observe(0.0004);
  h.observe(0.003);
  h.observe(3.0);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.sum(), 3.0034);
  EXPECT_EQ(h.cumulative()[0], 1u);   // <= 0.0005
  EXPECT_EQ(h.cumulative()[2], 1u);   // <= 0.0025
  EXPECT_EQ(h.cumulative()[3], 2u);   // <= 0.005
  EXPECT_EQ(h.cumulative()[11], 2u);  // <= 2.5; the 3 s check is only in +Inf
}

TEST(Metrics, EscapesLabels) { EXPECT_EQ(escapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd"); }

TEST(Metrics, RendersSummedCounters) {
  Observation o;
  o.version = "9.9";
  ObservedBackend b;
  b.vip = "web";
  b.backend = "198.18.2.11:0";
  b.state = "healthy";
  b.c = {7, 700, 3, 1};
  o.backends.push_back(b);
  b.backend = "198.18.2.12:0";
  b.state = "draining";
  b.c = {};
  o.backends.push_back(b);
  ObservedWorker w;
  w.counters.drops[size_t(Drop::NoVip)] = 2;
  w.flows4 = 5;
  w.busy_ratio = 0.25;
  o.workers.push_back(w);
  o.workers.push_back(w);
  o.health_ok.observe(0.002);
  o.reloads_failed = 4;
  o.snat.push_back({"198.18.2.2", {3, 1020, 1}});
  o.snat.push_back({"2001:db8:2::2", {0, 1024, 0}});
  const std::string m = renderMetrics(o);
  for (const char* line : {
           "# TYPE l4lb_packets_total counter\n",
           "l4lb_packets_total{vip=\"web\",backend=\"198.18.2.11:0\"} 7\n",
           "l4lb_bytes_total{vip=\"web\",backend=\"198.18.2.11:0\"} 700\n",
           "l4lb_backend_active_flows{vip=\"web\",backend=\"198.18.2.11:0\"} 2\n",
           "l4lb_backend_up{vip=\"web\",backend=\"198.18.2.11:0\"} 1\n",
           "l4lb_backend_up{vip=\"web\",backend=\"198.18.2.12:0\"} 0\n",
           "l4lb_drops_total{reason=\"no_vip\"} 4\n",
           "l4lb_drops_total{reason=\"too_short\"} 0\n",
           "l4lb_flow_table_entries{worker=\"1\",family=\"ipv4\"} 5\n",
           "l4lb_worker_busy_ratio{worker=\"0\"} 0.25\n",
           "# TYPE l4lb_health_check_duration_seconds histogram\n",
           "l4lb_health_check_duration_seconds_bucket{result=\"ok\",le=\"0.001\"} 0\n",
           "l4lb_health_check_duration_seconds_bucket{result=\"ok\",le=\"0.0025\"} 1\n",
           "l4lb_health_check_duration_seconds_bucket{result=\"ok\",le=\"+Inf\"} 1\n",
           "l4lb_health_check_duration_seconds_count{result=\"failed\"} 0\n",
           "l4lb_config_reloads_total{result=\"failed\"} 4\n",
           "l4lb_build_info{version=\"9.9\"} 1\n",
           "# TYPE l4lb_snat_ports gauge\n",
           "l4lb_snat_ports{address=\"198.18.2.2\",state=\"in_use\"} 3\n"
           "l4lb_snat_ports{address=\"198.18.2.2\",state=\"free\"} 1020\n"
           "l4lb_snat_ports{address=\"198.18.2.2\",state=\"quiet\"} 1\n"
           "l4lb_snat_ports{address=\"2001:db8:2::2\",state=\"in_use\"} 0\n",
       })
    EXPECT_NE(m.find(line), std::string::npos) << line;
  EXPECT_EQ(m.find("reason=\"ok\""), std::string::npos);  // "ok" is not a drop
  // Without fullnat VIPs there is no family at all.
  o.snat.clear();
  EXPECT_EQ(renderMetrics(o).find("l4lb_snat_ports"), std::string::npos);
}

std::string roundTrip(const std::string& path, const std::string& req, OneShotServer& srv) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, path.c_str());
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  EXPECT_EQ(write(fd, req.data(), req.size()), ssize_t(req.size()));
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (int i = 0; i < 2000; i++) {  // the server runs on this thread: poll it between reads
    srv.poll();
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) out.append(buf, size_t(n));
    else if (n == 0) break;
    else usleep(1000);
  }
  close(fd);
  return out;
}

TEST(OneShotServer, UnixRequestReply) {
  char dir[] = "/tmp/l4lb_optest_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/sub/ctl.sock";
  {
    OneShotServer srv;
    std::string err;
    ASSERT_TRUE(srv.listenUnix(path, 0640, err)) << err;
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    srv.setHandler(
        [](const std::string& in, bool eof) -> std::optional<std::string> {
          size_t nl = in.find('\n');
          if (nl == std::string::npos && !eof) return std::nullopt;
          return "echo:" + in.substr(0, nl);
        },
        "too long");
    EXPECT_EQ(roundTrip(path, "hello\nignored", srv), "echo:hello");
    EXPECT_EQ(roundTrip(path, "no newline", srv), "echo:no newline");
    EXPECT_EQ(roundTrip(path, std::string(OneShotServer::kMaxRequest + 10, 'x'), srv), "too long");
    EXPECT_EQ(srv.connections(), 0u);
    // A second server on the same live socket refuses.
    OneShotServer other;
    EXPECT_FALSE(other.listenUnix(path, 0600, err));
    EXPECT_NE(err.find("another process is listening"), std::string::npos) << err;
  }
  struct stat st;
  EXPECT_NE(stat(path.c_str(), &st), 0);  // removed on close
  // A stale socket file (nobody listening) is replaced.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    close(fd);
    OneShotServer srv;
    std::string err;
    EXPECT_TRUE(srv.listenUnix(path, 0600, err)) << err;
  }
  // A regular file at the path is never removed.
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fclose(f);
    OneShotServer srv;
    std::string err;
    EXPECT_FALSE(srv.listenUnix(path, 0600, err));
    EXPECT_NE(err.find("exists and is not a socket"), std::string::npos) << err;
    unlink(path.c_str());
  }
  rmdir((std::string(dir) + "/sub").c_str());
  rmdir(dir);
}

TEST(OneShotServer, TcpPortZeroPicksAPort) {
  OneShotServer srv;
  std::string err;
  ASSERT_TRUE(srv.listenTcp(*IpAddr::parse("127.0.0.1"), 0, err)) << err;
  EXPECT_NE(srv.port(), 0);
  OneShotServer dup;
  EXPECT_FALSE(dup.listenTcp(*IpAddr::parse("127.0.0.1"), srv.port(), err));
  EXPECT_NE(err.find("metrics listen 127.0.0.1:" + std::to_string(srv.port())), std::string::npos) << err;
}

}  // namespace
}  // namespace l4lb::control
