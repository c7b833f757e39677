#include "control/api/status_page.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace l4lb::control::api {

std::string htmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string num(double v, const char* fmt = "%.1f") {
  char b[64];
  std::snprintf(b, sizeof(b), fmt, v);
  return b;
}

// 1234567 -> "1.23 M" (rates and sizes at a glance).
std::string si(double v) {
  const char* units[] = {"", " k", " M", " G", " T"};
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, u++;
  return num(v, u ? "%.2f" : "%.0f") + units[u];
}

}  // namespace

namespace {

// The series averaged into kSparkPoints buckets (fewer when there are fewer samples).
std::vector<double> buckets(const std::vector<float>& v) {
  const size_t n = std::min(v.size(), kSparkPoints);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; i++) {
    const size_t from = i * v.size() / n, to = (i + 1) * v.size() / n;
    double sum = 0;
    for (size_t j = from; j < to; j++) sum += v[j];
    out[i] = to > from ? sum / double(to - from) : 0;
  }
  return out;
}

constexpr int kSparkW = 60, kSparkH = 14;

// "M0 14l2-3 2 0..." on a kSparkW x kSparkH box, the maximum at the top (0 stays at the bottom).
std::string path(const std::vector<float>& v) {
  const std::vector<double> b = buckets(v);
  if (b.empty()) return "";
  double max = 0;
  for (double x : b) max = std::max(max, x);
  const double step = b.size() > 1 ? double(kSparkW) / double(b.size() - 1) : 0;
  std::string d;
  int px = 0, py = 0;
  for (size_t i = 0; i < b.size(); i++) {
    const int x = int(std::lround(double(i) * step));
    const int y = kSparkH - (max > 0 ? int(std::lround(b[i] / max * kSparkH)) : 0);
    // "l" once: further pairs repeat it (SVG path grammar); a minus sign separates by itself.
    if (i == 0) d = "M0 " + std::to_string(y);
    else d += (i == 1 ? "l" : " ") + std::to_string(x - px) + (y - py < 0 ? "" : " ") + std::to_string(y - py);
    px = x, py = y;
  }
  if (b.size() == 1) d += "h" + std::to_string(kSparkW);
  return d;
}

// Full NAT's source ports per address; nothing without fullnat VIPs.
std::string snatTable(const std::vector<StatusSnat>& snat) {
  if (snat.empty()) return {};
  std::string h =
      "<h2>Full-NAT source ports</h2>\n<table id=\"snat\"><tr><th>address</th><th>in use</th><th>free</th>"
      "<th>quiet</th></tr>\n";
  for (const StatusSnat& s : snat)
    h += "<tr><td>" + htmlEscape(s.address) + "<td class=\"n\">" + std::to_string(s.in_use) + "<td class=\"n\">" +
         std::to_string(s.free) + "<td class=\"n\">" + std::to_string(s.quiet) + "\n";
  return h + "</table>\n";
}

}  // namespace

std::string sparkline(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() && b.empty()) return "";
  std::string s = "<svg viewBox=\"0 0 " + std::to_string(kSparkW) + " " + std::to_string(kSparkH) + "\">";
  if (!a.empty()) s += "<path d=\"" + path(a) + "\"/>";
  if (!b.empty()) s += "<path class=\"f\" d=\"" + path(b) + "\"/>";
  return s + "</svg>";
}

std::string renderStatusPage(const StatusPage& p) {
  const std::string e = htmlEscape(p.version);
  std::string h;
  h.reserve(64 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(p.refresh_s) + "\">";
  // Numbers right-aligned by column (td:nth-child) rather than a class on every cell: the
  // page stays small with a thousand rows.
  h += "<title>l4lb status</title><style>"
       "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em}"
       "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       ".b td:nth-child(n+4):nth-child(-n+9),.n td+td,td.n{text-align:right;font-variant-numeric:tabular-nums}"
       "th{background:#eee}.healthy{background:#d8f5d8}.draining{background:#fff3c4}"
       ".unhealthy{background:#f8d0d0}.unknown{background:#eee}"
       "svg{width:120px;height:28px;vertical-align:middle}path{fill:none;stroke:#2563eb;stroke-width:1.5}"
       "path.f{stroke:#ea580c}.k1{color:#2563eb}.k2{color:#ea580c}summary{cursor:pointer}"
       "</style></head><body>\n";
  h += "<h1>l4lb " + e + "</h1>\n<p id=\"summary\">up " + num(p.uptime_s, "%.0f") + " s; config <code>" +
       htmlEscape(p.config_path) + "</code>, sha256 <code id=\"config-sha256\">" + htmlEscape(p.config_sha256) +
       "</code>. Sparklines: the last 10 minutes of <span class=\"k1\">packets/s</span> and <span "
       "class=\"k2\">new flows/s</span>, each to its own scale.</p>\n";
  h += "<h2>Drift</h2>\n<ul id=\"drift\">";
  if (p.drift.empty()) h += "<li>none: the running configuration is the file's</li>";
  for (const std::string& d : p.drift) h += "<li>" + htmlEscape(d) + "</li>";
  h += "</ul>\n";
  for (size_t i = 0; i < p.vips.size(); i++) {
    const StatusVip& v = p.vips[i];
    h += "<h2 class=\"vip\" id=\"vip-" + std::to_string(i) + "\">" + htmlEscape(v.name) + "</h2>\n<p>" +
         htmlEscape(v.address) + " " + htmlEscape(v.protocol) + ", " + htmlEscape(v.forwarding) + ", " +
         htmlEscape(v.scheduler) + " <span class=\"vip-history\">" + sparkline(v.packets_hist, v.new_flows_hist) +
         "</span></p>\n";
    h += "<table class=\"b\" data-vip=\"" + htmlEscape(v.name) +
         "\"><tr><th>backend</th><th>state</th><th>health</th><th>weight</th><th>packets/s</th><th>bytes/s</th>"
         "<th>new flows/s</th><th>packets</th><th>active flows</th><th>last 10 min</th></tr>\n";
    // Closing </td> and </tr> are optional in HTML: left out, a thousand rows save 20 KB.
    for (const StatusBackend& b : v.backends) {
      const std::string name = htmlEscape(b.backend), st = htmlEscape(b.state);
      h += "<tr><td>" + name + "<td class=\"" + st + "\">" + st + "<td>" + htmlEscape(b.health) + "<td>" +
           std::to_string(b.weight) + "<td>" + si(b.packets_per_s) + "<td>" + si(b.bytes_per_s) + "<td>" +
           si(b.new_flows_per_s) + "<td>" + si(double(b.packets)) + "<td>" + std::to_string(b.active_flows) +
           (b.packets_hist.empty() && b.new_flows_hist.empty() ? "" : "<td>" + sparkline(b.packets_hist, b.new_flows_hist)) +
           "\n";
    }
    h += "</table>\n";
  }
  h += snatTable(p.snat);
  const size_t total = std::max(p.transitions_total, p.transitions.size());
  h += "<h2>State changes, last hour</h2>\n";
  if (total > kMaxShownTransitions)
    h += "<p>The newest " + std::to_string(kMaxShownTransitions) + " of " + std::to_string(total) + ".</p>\n";
  h += "<table id=\"transitions\"><tr><th>time (UTC)</th><th>VIP</th>"
       "<th>backend</th><th>from</th><th>to</th><th>reason</th></tr>\n";
  if (p.transitions.empty()) h += "<tr><td colspan=\"6\">none\n";
  for (size_t i = 0; i < p.transitions.size() && i < kMaxShownTransitions; i++) {
    const StatusTransition& t = p.transitions[i];
    char when[32] = "?";
    const time_t tt = time_t(t.unix_time);
    tm utc{};
    if (gmtime_r(&tt, &utc) != nullptr) std::strftime(when, sizeof(when), "%H:%M:%S", &utc);
    h += "<tr><td>" + std::string(when) + "<td>" + htmlEscape(t.vip) + "<td>" + htmlEscape(t.backend) + "<td>" +
         htmlEscape(t.from) + "<td>" + htmlEscape(t.to) + "<td>" + htmlEscape(t.why) + "\n";
  }
  h += "</table>\n";
  // Drops: the reasons that counted something first; all of them one click away.
  std::vector<std::pair<std::string, uint64_t>> nonzero;
  for (const auto& d : p.drops)
    if (d.second != 0) nonzero.push_back(d);
  std::stable_sort(nonzero.begin(), nonzero.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  h += "<h2>Drops <span id=\"drops-history\">" + sparkline(p.drops_hist) + "</span></h2>\n";
  h += "<table id=\"drops\" class=\"n\"><tr><th>reason</th><th>packets</th></tr>\n";
  if (nonzero.empty()) h += "<tr><td colspan=\"2\">no drops\n";
  for (const auto& [reason, n] : nonzero) h += "<tr><td>" + htmlEscape(reason) + "<td>" + std::to_string(n) + "\n";
  h += "</table>\n<details id=\"all-drops\"><summary>every drop reason (" + std::to_string(p.drops.size()) +
       ")</summary>\n<table class=\"n\"><tr><th>reason</th><th>packets</th></tr>\n";
  for (const auto& [reason, n] : p.drops) h += "<tr><td>" + htmlEscape(reason) + "<td>" + std::to_string(n) + "\n";
  h += "</table></details>\n<h2>Workers</h2>\n<table id=\"workers\"><tr><th>worker</th><th>busy</th>"
       "<th>last 10 min</th></tr>\n";
  for (size_t w = 0; w < p.worker_busy.size(); w++)
    h += "<tr><td>" + std::to_string(w) + "<td class=\"n\">" + num(100 * p.worker_busy[w]) + " %<td>" +
         (w < p.worker_hist.size() ? sparkline(p.worker_hist[w]) : "") + "\n";
  h += "</table>\n<p>Read-only. Metrics for Prometheus at <a href=\"/metrics\">/metrics</a>.</p>\n</body></html>\n";
  return h;
}

}  // namespace l4lb::control::api
