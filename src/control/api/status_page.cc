#include "control/api/status_page.h"

#include <cstdio>

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

std::string td(const std::string& v, const char* cls = nullptr) {
  return cls ? "<td class=\"" + std::string(cls) + "\">" + v + "</td>" : "<td>" + v + "</td>";
}

// Full NAT's source ports per address; nothing without fullnat VIPs.
std::string snatTable(const std::vector<StatusSnat>& snat) {
  if (snat.empty()) return {};
  std::string h =
      "<h2>Full-NAT source ports</h2>\n<table id=\"snat\"><tr><th>address</th><th>in use</th><th>free</th>"
      "<th>quiet</th></tr>\n";
  for (const StatusSnat& s : snat)
    h += "<tr>" + td(htmlEscape(s.address)) + td(std::to_string(s.in_use), "n") + td(std::to_string(s.free), "n") +
         td(std::to_string(s.quiet), "n") + "</tr>\n";
  return h + "</table>\n";
}

}  // namespace

std::string renderStatusPage(const StatusPage& p) {
  const std::string e = htmlEscape(p.version);
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(p.refresh_s) + "\">";
  h += "<title>l4lb status</title><style>"
       "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em}"
       "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       "td.n{text-align:right;font-variant-numeric:tabular-nums}"
       "th{background:#eee}.healthy{background:#d8f5d8}.draining{background:#fff3c4}"
       ".unhealthy{background:#f8d0d0}.unknown{background:#eee}"
       "</style></head><body>\n";
  h += "<h1>l4lb " + e + "</h1>\n<p id=\"summary\">up " + num(p.uptime_s, "%.0f") + " s; config <code>" +
       htmlEscape(p.config_path) + "</code>, sha256 <code id=\"config-sha256\">" + htmlEscape(p.config_sha256) +
       "</code></p>\n";
  h += "<h2>Drift</h2>\n<ul id=\"drift\">";
  if (p.drift.empty()) h += "<li>none: the running configuration is the file's</li>";
  for (const std::string& d : p.drift) h += "<li>" + htmlEscape(d) + "</li>";
  h += "</ul>\n";
  for (size_t i = 0; i < p.vips.size(); i++) {
    const StatusVip& v = p.vips[i];
    h += "<h2 class=\"vip\" id=\"vip-" + std::to_string(i) + "\">" + htmlEscape(v.name) + "</h2>\n<p>" +
         htmlEscape(v.address) + " " + htmlEscape(v.protocol) + ", " + htmlEscape(v.forwarding) + ", " +
         htmlEscape(v.scheduler) + "</p>\n";
    h += "<table class=\"backends\" data-vip=\"" + htmlEscape(v.name) +
         "\"><tr><th>backend</th><th>state</th><th>health</th><th>weight</th><th>packets/s</th><th>bytes/s</th>"
         "<th>new flows/s</th><th>packets</th><th>active flows</th></tr>\n";
    for (const StatusBackend& b : v.backends) {
      const std::string st = htmlEscape(b.state);
      h += "<tr class=\"backend\" data-backend=\"" + htmlEscape(b.backend) + "\">" + td(htmlEscape(b.backend)) +
           "<td class=\"state " + st + "\">" + st + "</td>" + td(htmlEscape(b.health)) +
           td(std::to_string(b.weight), "n") + td(si(b.packets_per_s), "n pps") + td(si(b.bytes_per_s), "n") +
           td(si(b.new_flows_per_s), "n") + td(std::to_string(b.packets), "n") +
           td(std::to_string(b.active_flows), "n") + "</tr>\n";
    }
    h += "</table>\n";
  }
  h += snatTable(p.snat);
  h += "<h2>Drops</h2>\n<table id=\"drops\"><tr><th>reason</th><th>packets</th></tr>\n";
  for (const auto& [reason, n] : p.drops) h += "<tr>" + td(htmlEscape(reason)) + td(std::to_string(n), "n") + "</tr>\n";
  h += "</table>\n<h2>Workers</h2>\n<table id=\"workers\"><tr><th>worker</th><th>busy</th></tr>\n";
  for (size_t w = 0; w < p.worker_busy.size(); w++)
    h += "<tr>" + td(std::to_string(w)) + td(num(100 * p.worker_busy[w]) + " %", "n") + "</tr>\n";
  h += "</table>\n<p>Read-only. Metrics for Prometheus at <a href=\"/metrics\">/metrics</a>.</p>\n</body></html>\n";
  return h;
}

}  // namespace l4lb::control::api
