// The read-only status page at / on the metrics listener (HAProxy's stats page, for an L4
// balancer): VIPs and their backends (state, health reason, weight, rates, active flows, and
// packets/s and new flows/s over the last 10 minutes as inline SVG sparklines drawn here), the
// backends' state changes of the last hour, drops (the non-zero reasons first, every reason one
// click away in a <details>), the workers' load, the config hash and drift. One self-contained
// HTML document: no external assets (the appliance has no internet), no script, a <meta>
// refresh. Every value that comes from the config or the network is HTML-escaped. It has no
// control action: no form, no link that changes anything. Sized for large pools: under 200 KB
// with 1,000 backends (status_page_test measures it), so rows are terse (no closing </td>, no
// attributes, numbers aligned by CSS) and only the kMaxSparkBackends busiest backends get a
// sparkline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace l4lb::control::api {

struct StatusBackend {
  std::string backend;  // ADDR:PORT
  std::string state;    // healthy, draining, unhealthy, unknown
  std::string health;   // the checker's last reason ("not checked" without a check)
  uint32_t weight = 0;
  double packets_per_s = 0, bytes_per_s = 0, new_flows_per_s = 0;
  uint64_t packets = 0, active_flows = 0;
  // Oldest first, one sample per control tick; empty: no sparkline for this backend.
  std::vector<float> packets_hist, new_flows_hist;
};

struct StatusVip {
  std::string name, address, protocol, forwarding, scheduler;
  std::vector<StatusBackend> backends;
  std::vector<float> packets_hist, new_flows_hist;
};

// A full-NAT source address's pairs over all workers.
struct StatusSnat {
  std::string address;
  uint64_t in_use = 0, free = 0, quiet = 0;
};

struct StatusTransition {
  int64_t unix_time = 0;
  std::string vip, backend, from, to, why;
};

// Backends drawn with a sparkline at most (the busiest): each costs about 230 bytes.
inline constexpr size_t kMaxSparkBackends = 50;
// State changes listed at most (the newest): a flapping pool can make thousands an hour.
inline constexpr size_t kMaxShownTransitions = 50;
// Points of a sparkline: the samples averaged in as many buckets (30 s each over 10 minutes).
inline constexpr size_t kSparkPoints = 20;

struct StatusPage {
  std::string version;
  double uptime_s = 0;
  std::string config_path, config_sha256;
  std::vector<std::string> drift;  // one line per runtime change the file does not say
  std::vector<StatusVip> vips;
  std::vector<std::pair<std::string, uint64_t>> drops;  // reason -> packets, every reason
  std::vector<double> worker_busy;                      // per worker, 0..1
  std::vector<StatusSnat> snat;                         // empty without fullnat VIPs
  std::vector<float> drops_hist;                        // drops/s, oldest first
  std::vector<std::vector<float>> worker_hist;          // per worker, busy ratio
  std::vector<StatusTransition> transitions;            // newest first, the last hour
  size_t transitions_total = 0;                         // of which the page lists kMaxShownTransitions
  int64_t now_unix = 0;
  uint32_t refresh_s = 2;
};

// &, <, >, " and ' as entities.
std::string htmlEscape(const std::string& s);
// An inline SVG of one or two series (oldest first) over the same time, each scaled to its own
// maximum, averaged into kSparkPoints points; "" when both are empty.
std::string sparkline(const std::vector<float>& a, const std::vector<float>& b = {});
std::string renderStatusPage(const StatusPage& p);

}  // namespace l4lb::control::api
