// The read-only status page at / on the metrics listener (HAProxy's stats page, for an L4
// balancer): VIPs and their backends (state, health reason, weight, rates, active flows), drops
// by reason, the workers' load, the config hash and drift. One self-contained HTML document:
// no external assets (the appliance has no internet), no script, a <meta> refresh. Every value
// that comes from the config or the network is HTML-escaped. It has no control action: no form,
// no link that changes anything.
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
};

struct StatusVip {
  std::string name, address, protocol, forwarding, scheduler;
  std::vector<StatusBackend> backends;
};

// A full-NAT source address's pairs over all workers.
struct StatusSnat {
  std::string address;
  uint64_t in_use = 0, free = 0, quiet = 0;
};

struct StatusPage {
  std::string version;
  double uptime_s = 0;
  std::string config_path, config_sha256;
  std::vector<std::string> drift;  // one line per runtime change the file does not say
  std::vector<StatusVip> vips;
  std::vector<std::pair<std::string, uint64_t>> drops;  // reason -> packets, every reason
  std::vector<double> worker_busy;                      // per worker, 0..1
  std::vector<StatusSnat> snat;                         // empty without fullnat VIPs
  uint32_t refresh_s = 2;
};

// &, <, >, " and ' as entities.
std::string htmlEscape(const std::string& s);
std::string renderStatusPage(const StatusPage& p);

}  // namespace l4lb::control::api
