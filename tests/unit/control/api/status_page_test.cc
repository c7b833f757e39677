// The status page's HTML: every VIP and backend with its values, escaping of every string that
// comes from the config, no script, no form, no external asset.
#include "control/api/status_page.h"

#include <gtest/gtest.h>

#include <string>

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
  EXPECT_EQ(count(h, "<tr class=\"backend\""), 2u);
  EXPECT_NE(h.find("<tr class=\"backend\" data-backend=\"198.18.1.1:80\"><td>198.18.1.1:80</td>"
                   "<td class=\"state healthy\">healthy</td><td>status 200</td><td class=\"n\">2</td>"
                   "<td class=\"n pps\">1.50 k</td><td class=\"n\">2.00 M</td><td class=\"n\">3</td>"
                   "<td class=\"n\">9000</td><td class=\"n\">7</td></tr>"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("<td class=\"state draining\">draining</td>"), std::string::npos);
  EXPECT_NE(h.find("<tr><td>no_vip</td><td class=\"n\">4</td></tr>"), std::string::npos);
  EXPECT_NE(h.find("<td class=\"n\">25.0 %</td>"), std::string::npos);
  EXPECT_NE(h.find("<code id=\"config-sha256\">ab12</code>"), std::string::npos);
  EXPECT_NE(h.find("<li>none: the running configuration is the file's</li>"), std::string::npos);
}

TEST(StatusPage, FullNatSourcePortsOnlyWithFullNat) {
  StatusPage p = page();
  EXPECT_EQ(renderStatusPage(p).find("id=\"snat\""), std::string::npos);
  p.snat.push_back({"198.18.0.2", 5, 994, 1});
  const std::string h = renderStatusPage(p);
  EXPECT_NE(h.find("<h2>Full-NAT source ports</h2>\n<table id=\"snat\"><tr><th>address</th><th>in use</th>"
                   "<th>free</th><th>quiet</th></tr>\n<tr><td>198.18.0.2</td><td class=\"n\">5</td>"
                   "<td class=\"n\">994</td><td class=\"n\">1</td></tr>\n</table>\n"),
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
  EXPECT_NE(h.find("<td>&quot;&#39;&amp;&lt;b&gt;</td>"), std::string::npos);
  EXPECT_NE(h.find("<li>weight &lt;x&gt; file 1, running 2</li>"), std::string::npos);
  for (const char* active : {"<form", "<input", "<button", "<script", "src=", "http://", "https://", "method="})
    EXPECT_EQ(h.find(active), std::string::npos) << active;
}

TEST(StatusPage, HtmlEscape) {
  EXPECT_EQ(htmlEscape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(htmlEscape("plain 198.18.0.1:80"), "plain 198.18.0.1:80");
}

}  // namespace
}  // namespace l4lb::control::api
