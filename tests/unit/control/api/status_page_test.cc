// The status page's HTML: every VIP and backend with its values, escaping of every string that
// comes from the config, no script, no form, no external asset.
#include "control/api/status_page.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace l4lb::control::api {
namespace {

StatusPage page() {
  StatusPage p;
  p.version = "0.1.0";
  p.uptime_s = 12;
  p.config_path = "/etc/l4lb/l4lb.toml";
  p.config_sha256 = "ab12";
  StatusVip v{"web", "198.18.0.10:80", "tcp", "dsr", "maglev", {}};
  v.backends.push_back({"198.18.1.1:80", "healthy", "status 200", 2, 1500, 2'000'000, 3, 9000, 7});
  v.backends.push_back({"198.18.1.2:80", "draining", "not checked", 0, 0, 0, 0, 10, 1});
  p.vips.push_back(v);
  p.drops = {{"no_vip", 4}, {"too_short", 0}};
  p.worker_busy = {0.25};
  return p;
}

size_t count(const std::string& h, const std::string& what) {
  size_t n = 0;
  for (size_t at = h.find(what); at != std::string::npos; at = h.find(what, at + 1)) n++;
  return n;
}

TEST(StatusPage, ShowsEveryVipAndBackendWithItsValues) {
  const std::string h = renderStatusPage(page());
  EXPECT_NE(h.find("<meta http-equiv=\"refresh\" content=\"2\">"), std::string::npos);
  EXPECT_EQ(count(h, "<tr><td>198.18."), 2u);
  EXPECT_NE(h.find("<tr><td>198.18.1.1:80<td class=\"healthy\">healthy<td>status 200"
                   "<td>2<td>1.50 k<td>2.00 M<td>3<td>9.00 k<td>7\n"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("<td class=\"draining\">draining<td>"), std::string::npos);
  EXPECT_NE(h.find("<tr><td>no_vip<td>4\n"), std::string::npos);
  EXPECT_NE(h.find("<td class=\"n\">25.0 %"), std::string::npos);
  EXPECT_NE(h.find("<code id=\"config-sha256\">ab12</code>"), std::string::npos);
  EXPECT_NE(h.find("<li>none: the running configuration is the file's</li>"), std::string::npos);
}

TEST(StatusPage, FullNatSourcePortsOnlyWithFullNat) {
  StatusPage p = page();
  EXPECT_EQ(renderStatusPage(p).find("id=\"snat\""), std::string::npos);
  p.snat.push_back({"198.18.0.2", 5, 994, 1});
  const std::string h = renderStatusPage(p);
  EXPECT_NE(h.find("<h2>Full-NAT source ports</h2>\n<table id=\"snat\"><tr><th>address</th><th>in use</th>"
                   "<th>free</th><th>quiet</th></tr>\n<tr><td>198.18.0.2<td class=\"n\">5"
                   "<td class=\"n\">994<td class=\"n\">1\n</table>\n"),
            std::string::npos)
      << h;
}

TEST(StatusPage, EscapesEveryConfigStringAndHasNoActiveContent) {
  StatusPage p = page();
  p.vips[0].name = "<script>alert(1)</script>";
  p.vips[0].backends[0].health = "\"'&<b>";
  p.drift = {"weight <x> file 1, running 2"};
  const std::string h = renderStatusPage(p);
  EXPECT_EQ(h.find("<script"), std::string::npos) << h;
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("<td>&quot;&#39;&amp;&lt;b&gt;<td>"), std::string::npos);
  EXPECT_NE(h.find("<li>weight &lt;x&gt; file 1, running 2</li>"), std::string::npos);
  for (const char* active : {"<form", "<input", "<button", "<script", "src=", "http://", "https://", "method="})
    EXPECT_EQ(h.find(active), std::string::npos) << active;
}

TEST(StatusPage, HtmlEscape) {
  EXPECT_EQ(htmlEscape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(htmlEscape("plain 198.18.0.1:80"), "plain 198.18.0.1:80");
}

TEST(StatusPage, NonZeroDropsFirstAndEveryReasonInDetails) {
  StatusPage p = page();
  p.drops = {{"no_vip", 4}, {"too_short", 0}, {"bad_checksum", 9}, {"ttl_exceeded", 0}};
  const std::string h = renderStatusPage(p);
  // The table lists only what counted, the largest first ...
  const size_t table = h.find("<table id=\"drops\"");
  const size_t details = h.find("<details id=\"all-drops\"><summary>every drop reason (4)</summary>");
  ASSERT_NE(table, std::string::npos);
  ASSERT_NE(details, std::string::npos);
  EXPECT_EQ(h.substr(table, details - table),
            "<table id=\"drops\" class=\"n\"><tr><th>reason</th><th>packets</th></tr>\n"
            "<tr><td>bad_checksum<td>9\n<tr><td>no_vip<td>4\n</table>\n");
  // ... and every reason, zeros included, in the order of the list, one click away.
  EXPECT_NE(h.find("<tr><td>no_vip<td>4\n<tr><td>too_short<td>0\n<tr><td>bad_checksum<td>9\n<tr><td>ttl_exceeded<td>0\n"
                   "</table></details>", details),
            std::string::npos);
  p.drops = {{"no_vip", 0}};
  EXPECT_NE(renderStatusPage(p).find("<tr><td colspan=\"2\">no drops\n"), std::string::npos);
}

TEST(StatusPage, Sparklines) {
  // Each series to its own scale, the maximum at the top (y 0), zero at the bottom (y 14).
  EXPECT_EQ(sparkline({0, 5, 10}), "<svg viewBox=\"0 0 60 14\"><path d=\"M0 14l30-7 30-7\"/></svg>");
  EXPECT_EQ(sparkline({10, 0, 10}), "<svg viewBox=\"0 0 60 14\"><path d=\"M0 0l30 14 30-14\"/></svg>");
  EXPECT_EQ(sparkline({2, 2}, {0, 1}),
            "<svg viewBox=\"0 0 60 14\"><path d=\"M0 0l60 0\"/><path class=\"f\" d=\"M0 14l60-14\"/></svg>");
  EXPECT_EQ(sparkline({3}), "<svg viewBox=\"0 0 60 14\"><path d=\"M0 0h60\"/></svg>");
  EXPECT_EQ(sparkline({}), "");
  // 600 samples are averaged into 20 points: a step halfway shows as one.
  std::vector<float> step(600, 0.f);
  std::fill(step.begin() + 300, step.end(), 8.f);
  const std::string s = sparkline(step);
  EXPECT_EQ(s, "<svg viewBox=\"0 0 60 14\"><path d=\"M0 14l3 0 3 0 3 0 4 0 3 0 3 0 3 0 3 0 3 0 4-14 3 0 3 0 3 0 3 0 3 0 4 0 "
               "3 0 3 0 3 0\"/></svg>");
  StatusPage p = page();
  p.vips[0].packets_hist = {1, 2};
  p.vips[0].new_flows_hist = {0, 1};
  p.vips[0].backends[0].packets_hist = {0, 3};
  p.drops_hist = {0, 4};
  p.worker_hist = {{0.5f, 0.25f}};
  const std::string h = renderStatusPage(p);
  EXPECT_NE(h.find("<span class=\"vip-history\"><svg viewBox=\"0 0 60 14\"><path d=\"M0 7l60-7\"/><path class=\"f\" "
                   "d=\"M0 14l60-14\"/></svg></span>"),
            std::string::npos);
  EXPECT_NE(h.find("<td>7<td><svg viewBox=\"0 0 60 14\"><path d=\"M0 14l60-14\"/></svg>\n"), std::string::npos);
  EXPECT_NE(h.find("<span id=\"drops-history\"><svg"), std::string::npos);
  EXPECT_NE(h.find("25.0 %<td><svg viewBox=\"0 0 60 14\"><path d=\"M0 0l60 7\"/></svg>"), std::string::npos);
}

TEST(StatusPage, StateChangesOfTheLastHour) {
  StatusPage p = page();
  EXPECT_NE(renderStatusPage(p).find("<tr><td colspan=\"6\">none\n"), std::string::npos);
  p.transitions = {{1700000000, "web", "198.18.1.2:80", "healthy", "draining", "drained by l4lbctl"},
                   {1699999000, "<b>", "198.18.1.1:80", "unhealthy", "healthy", "health check: 3 successes"}};
  const std::string h = renderStatusPage(p);
  EXPECT_NE(h.find("<tr><td>22:13:20<td>web<td>198.18.1.2:80<td>healthy<td>draining<td>drained by l4lbctl\n"
                   "<tr><td>21:56:40<td>&lt;b&gt;<td>198.18.1.1:80<td>unhealthy<td>healthy<td>health check: 3 successes\n"),
            std::string::npos)
      << h;
}

// The page with a thousand backends (ten VIPs of a hundred), every one with a long health
// reason, rates, ten minutes of history for the VIPs, the workers and the drops, the busiest
// kMaxSparkBackends backends drawn, and a full hour of state changes shown: under 200 KB.
TEST(StatusPage, UnderTwoHundredKilobytesWithAThousandBackends) {
  StatusPage p = page();
  p.vips.clear();
  std::vector<float> wave(600);
  for (size_t i = 0; i < wave.size(); i++) wave[i] = float(1000 + 900 * std::sin(double(i) / 20));
  for (int v = 0; v < 10; v++) {
    StatusVip vip{"vip-" + std::to_string(v), "198.18.0." + std::to_string(v) + ":443", "tcp", "nat", "maglev", {}};
    vip.packets_hist = vip.new_flows_hist = wave;
    for (int b = 0; b < 100; b++) {
      StatusBackend be{"198.18." + std::to_string(10 + v) + "." + std::to_string(100 + b) + ":8443", "unhealthy",
                       "down: connect: Connection refused", 65535, 123456.7, 98765432.1, 1234.5,
                       12345678901, 123456};
      if (v * 100 + b < int(kMaxSparkBackends)) be.packets_hist = be.new_flows_hist = wave;
      vip.backends.push_back(be);
    }
    p.vips.push_back(vip);
  }
  p.drops.clear();
  for (int r = 0; r < 45; r++) p.drops.emplace_back("drop_reason_" + std::to_string(r), 1000000 + r);
  p.drops_hist = wave;
  p.worker_busy.assign(16, 0.5);
  p.worker_hist.assign(16, wave);
  p.transitions_total = 3000;
  for (int t = 0; t < 100; t++)
    p.transitions.push_back({1700000000 - t, "vip-1", "198.18.11.101:8443", "healthy", "unhealthy",
                             "health check: connect: Connection refused"});
  const std::string h = renderStatusPage(p);
  EXPECT_EQ(count(h, "<tr><td>198.18."), 1000u);
  EXPECT_EQ(count(h, "<svg"), 10 + kMaxSparkBackends + 1 + 16);
  EXPECT_EQ(count(h, "<td>vip-1<td>198.18.11.101:8443"), kMaxShownTransitions);
  EXPECT_NE(h.find("<p>The newest 50 of 3000.</p>"), std::string::npos);
  std::printf("status page with 1000 backends: %zu bytes\n", h.size());
  RecordProperty("bytes_1000_backends", std::to_string(h.size()));
  EXPECT_LT(h.size(), 200u * 1024);
}

}  // namespace
}  // namespace l4lb::control::api
