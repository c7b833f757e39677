#include "control/metrics.h"
#include "control/worker_totals.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <utility>

namespace l4lb::control {

namespace {

// Shortest form that reads back as the same double (bucket bounds print as 0.0025, not
// 0.0025000000000000001: `le` labels are compared as text by some tools).
std::string num(double v) {
  char b[64];
  for (int prec = 6; prec <= 17; prec++) {
    std::snprintf(b, sizeof(b), "%.*g", prec, v);
    if (std::strtod(b, nullptr) == v) break;
  }
  return b;
}
std::string num(uint64_t v) { return std::to_string(v); }

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + value + "\n";
  }
  // A family whose samples are known up front: {labels, value} each.
  void metric(const char* name, const char* type, const char* help,
              std::initializer_list<std::pair<std::string, std::string>> samples) {
    family(name, type, help);
    for (const auto& [labels, value] : samples) sample(name, labels, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string label(const char* k, const std::string& v) { return std::string(k) + "=\"" + escapeLabel(v) + "\""; }

// l4lb_snat_ports: full NAT's source pairs per address, by state (present only with fullnat VIPs).
void renderSnat(Writer& w, const std::vector<ObservedSnat>& snat) {
  w.family("l4lb_snat_ports", "gauge",
           "Full-NAT source ports of an address over all workers: in_use (held by a session), free, quiet (freed, "
           "waiting out snat_quiet_time).");
  for (const ObservedSnat& s : snat) {
    const std::string a = label("address", s.address);
    w.sample("l4lb_snat_ports", a + ",state=\"in_use\"", num(s.c.in_use));
    w.sample("l4lb_snat_ports", a + ",state=\"free\"", num(s.c.free));
    w.sample("l4lb_snat_ports", a + ",state=\"quiet\"", num(s.c.quiet));
  }
}

// l4lb_sync_*: flow sync between balancers (control/sync/), present only when [sync] is enabled.
void renderSync(Writer& w, const sync::SyncStatus& s) {
  using sync::kSyncRejectNames;
  const std::string sent = "direction=\"sent\"", received = "direction=\"received\"";
  w.metric("l4lb_sync_records_total", "counter",
           "Flow records: sent (taken from the workers' rings and sent to the peers) and received (accepted from peers).",
           {{sent, num(s.records_out)}, {received, num(s.records_in)}});
  w.metric("l4lb_sync_datagrams_total", "counter", "Sync datagrams built (each goes to every peer) and accepted.",
           {{sent, num(s.datagrams_out)}, {received, num(s.datagrams_in)}});
  w.metric("l4lb_sync_delivered_total", "counter", "Received records handed to the owning worker's ring.",
           {{"", num(s.delivered)}});
  w.metric("l4lb_sync_ring_full_total", "counter", "Received records dropped because the owning worker's ring was full.",
           {{"", num(s.ring_full)}});
  w.metric("l4lb_sync_send_errors_total", "counter", "Datagrams the kernel did not take for a peer.", {{"", num(s.send_errors)}});
  w.family("l4lb_sync_rejected_total", "counter", "Received sync datagrams refused, by reason (none of their records is used).");
  for (size_t r = 0; r < s.rejected.size(); r++)
    w.sample("l4lb_sync_rejected_total", label("reason", std::string(kSyncRejectNames[r])), num(s.rejected[r]));
  w.family("l4lb_sync_peer_records_total", "counter", "Flow records sent to and accepted from each peer.");
  for (const auto& p : s.peers) {
    w.sample("l4lb_sync_peer_records_total", label("peer", p.address) + ",direction=\"sent\"", num(p.records_out));
    w.sample("l4lb_sync_peer_records_total", label("peer", p.address) + ",direction=\"received\"", num(p.records_in));
  }
  w.family("l4lb_sync_peer_rejected_total", "counter", "Datagrams from a peer's address refused, by reason.");
  for (const auto& p : s.peers)
    for (size_t r = 0; r < p.rejected.size(); r++)
      w.sample("l4lb_sync_peer_rejected_total", label("peer", p.address) + "," + label("reason", std::string(kSyncRejectNames[r])),
               num(p.rejected[r]));
  w.family("l4lb_sync_peer_last_heard_seconds", "gauge",
           "Seconds since the last datagram accepted from a peer (heartbeats every second); absent until the first.");
  for (const auto& p : s.peers)
    if (p.last_heard_ms_ago >= 0)
      w.sample("l4lb_sync_peer_last_heard_seconds", label("peer", p.address), num(double(p.last_heard_ms_ago) / 1000.0));
  w.family("l4lb_sync_lag_seconds", "histogram", "Receive time minus the datagram's send time (wall clocks of two hosts).");
  for (size_t i = 0; i < sync::kSyncLagBounds.size(); i++)
    w.sample("l4lb_sync_lag_seconds_bucket", label("le", num(sync::kSyncLagBounds[i])), num(s.lag_buckets[i]));
  w.sample("l4lb_sync_lag_seconds_bucket", "le=\"+Inf\"", num(s.lag_count));
  w.sample("l4lb_sync_lag_seconds_sum", "", num(s.lag_sum_s));
  w.sample("l4lb_sync_lag_seconds_count", "", num(s.lag_count));
  w.metric("l4lb_sync_lag_max_seconds", "gauge", "Largest sync lag seen since start.",
           {{"", num(double(s.lag_max_ms) / 1000.0)}});
}

}  // namespace

void Histogram::observe(double seconds) {
  for (size_t i = 0; i < kBounds.size(); i++)
    if (seconds <= kBounds[i]) cumulative_[i]++;
  count_++;
  sum_ += seconds;
}

std::string escapeLabel(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

std::string renderMetrics(const Observation& o) {
  Writer w;
  w.metric("l4lb_build_info", "gauge", "Version of the running l4lb (value is always 1).", {{label("version", o.version), "1"}});
  w.metric("l4lb_uptime_seconds", "gauge", "Seconds since the daemon started.", {{"", num(o.uptime_s)}});

  auto be = [](const ObservedBackend& b) { return label("vip", b.vip) + "," + label("backend", b.backend); };
  w.family("l4lb_packets_total", "counter", "Packets forwarded to a backend (client to backend direction).");
  for (const auto& b : o.backends) w.sample("l4lb_packets_total", be(b), num(b.c.packets));
  w.family("l4lb_bytes_total", "counter", "Bytes forwarded to a backend (frames as received).");
  for (const auto& b : o.backends) w.sample("l4lb_bytes_total", be(b), num(b.c.bytes));
  w.family("l4lb_flows_total", "counter", "Flow-table entries created for a backend.");
  for (const auto& b : o.backends) w.sample("l4lb_flows_total", be(b), num(b.c.flows_new));
  w.family("l4lb_backend_active_flows", "gauge", "Flow-table entries pointing at a backend (created minus ended).");
  for (const auto& b : o.backends)
    w.sample("l4lb_backend_active_flows", be(b), num(activeFlows(b.c)));
  w.family("l4lb_backend_up", "gauge", "1 when the backend receives new flows (healthy), else 0 (draining or unhealthy).");
  for (const auto& b : o.backends) w.sample("l4lb_backend_up", be(b), b.state == "healthy" ? "1" : "0");
  w.family("l4lb_backend_weight", "gauge", "Effective backend weight (after l4lbctl weight).");
  for (const auto& b : o.backends) w.sample("l4lb_backend_weight", be(b), num(uint64_t(b.weight)));

  WorkerCounters total;
  for (const auto& wk : o.workers) accumulate(total, wk.counters);
  w.family("l4lb_drops_total", "counter", "Packets dropped, by reason (summed over workers).");
  for (size_t r = 1; r < size_t(Drop::Count); r++)
    w.sample("l4lb_drops_total", label("reason", std::string(kDropNames[r])), num(total.drops[r]));
  w.family("l4lb_events_total", "counter", "Data-path events that are not drops (summed over workers).");
  for (size_t c = 0; c < size_t(Ctr::Count); c++)
    w.sample("l4lb_events_total", label("event", std::string(kCtrNames[c])), num(total.ctrs[c]));
  w.family("l4lb_flow_table_entries", "gauge", "Entries in a worker's flow table.");
  for (size_t i = 0; i < o.workers.size(); i++) {
    w.sample("l4lb_flow_table_entries", label("worker", std::to_string(i)) + "," + label("family", "ipv4"),
             num(o.workers[i].flows4));
    w.sample("l4lb_flow_table_entries", label("worker", std::to_string(i)) + "," + label("family", "ipv6"),
             num(o.workers[i].flows6));
  }
  w.family("l4lb_flow_entries", "gauge",
           "Flow-table entries by admission class, over all workers and both families (embryonic: SYN only or one UDP packet).");
  uint64_t embryonic = 0, confirmed = 0;
  for (const auto& wk : o.workers) embryonic += wk.embryonic, confirmed += wk.confirmed;
  w.sample("l4lb_flow_entries", label("class", "embryonic"), num(embryonic));
  w.sample("l4lb_flow_entries", label("class", "confirmed"), num(confirmed));
  w.family("l4lb_flow_table_capacity", "gauge", "Capacity of each worker's flow table per address family.");
  for (size_t i = 0; i < o.workers.size(); i++)
    w.sample("l4lb_flow_table_capacity", label("worker", std::to_string(i)), num(o.workers[i].capacity));
  w.family("l4lb_worker_busy_ratio", "gauge", "Share of a worker's cycles spent on loops that received packets (last second).");
  for (size_t i = 0; i < o.workers.size(); i++)
    w.sample("l4lb_worker_busy_ratio", label("worker", std::to_string(i)), num(o.workers[i].busy_ratio));
  w.family("l4lb_worker_loops_total", "counter", "Worker poll loops.");
  for (size_t i = 0; i < o.workers.size(); i++)
    w.sample("l4lb_worker_loops_total", label("worker", std::to_string(i)), num(o.workers[i].load.loops));
  w.family("l4lb_worker_idle_sleeps_total", "counter", "Idle back-off sleeps ([eal] idle_backoff).");
  for (size_t i = 0; i < o.workers.size(); i++)
    w.sample("l4lb_worker_idle_sleeps_total", label("worker", std::to_string(i)), num(o.workers[i].load.idle_sleeps));

  w.family("l4lb_port_packets_total", "counter", "Packets on a port by direction.");
  for (const auto& p : o.ports) {
    w.sample("l4lb_port_packets_total", label("port", p.name) + ",direction=\"rx\"", num(p.c.rx_packets));
    w.sample("l4lb_port_packets_total", label("port", p.name) + ",direction=\"tx\"", num(p.c.tx_packets));
  }
  w.family("l4lb_port_bytes_total", "counter", "Bytes on a port by direction.");
  for (const auto& p : o.ports) {
    w.sample("l4lb_port_bytes_total", label("port", p.name) + ",direction=\"rx\"", num(p.c.rx_bytes));
    w.sample("l4lb_port_bytes_total", label("port", p.name) + ",direction=\"tx\"", num(p.c.tx_bytes));
  }

  w.family("l4lb_health_check_duration_seconds", "histogram", "Duration of health checks, by result.");
  for (const auto& [res, h] : {std::pair<const char*, const Histogram*>{"ok", &o.health_ok}, {"failed", &o.health_failed}}) {
    const std::string r = label("result", res);
    for (size_t i = 0; i < Histogram::kBounds.size(); i++)
      w.sample("l4lb_health_check_duration_seconds_bucket", r + "," + label("le", num(Histogram::kBounds[i])),
               num(h->cumulative()[i]));
    w.sample("l4lb_health_check_duration_seconds_bucket", r + ",le=\"+Inf\"", num(h->count()));
    w.sample("l4lb_health_check_duration_seconds_sum", r, num(h->sum()));
    w.sample("l4lb_health_check_duration_seconds_count", r, num(h->count()));
  }
  w.metric("l4lb_config_reloads_total", "counter", "Configuration reloads (SIGHUP or l4lbctl reload), by result.",
           {{"result=\"ok\"", num(o.reloads_ok)}, {"result=\"failed\"", num(o.reloads_failed)}});
  w.metric("l4lb_snapshot_publishes_total", "counter", "Snapshots published to the workers.", {{"", num(o.publishes)}});
  w.metric("l4lb_health_transitions_total", "counter", "Backend health state changes.", {{"", num(o.health_transitions)}});
  if (o.sync) renderSync(w, *o.sync);
  if (!o.snat.empty()) renderSnat(w, o.snat);
  if (o.bgp.enabled) {
    w.family("l4lb_vip_announced", "gauge", "1 while the VIP's prefix is announced through BIRD (bgp).");
    for (const auto& [vip, on] : o.bgp.vips) w.sample("l4lb_vip_announced", label("vip", vip), on ? "1" : "0");
    w.metric("l4lb_balancer_drained", "gauge", "1 after l4lbctl drain-balancer (every VIP withdrawn).",
             {{"", o.bgp.drained ? "1" : "0"}});
    w.family("l4lb_bgp_session_up", "gauge", "1 while BIRD reports the BGP protocol Established.");
    for (const auto& [proto, up] : o.bgp.sessions) w.sample("l4lb_bgp_session_up", label("protocol", proto), up ? "1" : "0");
    w.metric("l4lb_bird_errors_total", "counter", "Failed exchanges with BIRD (unreachable, timeout, configure refused).",
             {{"", num(o.bgp.bird_errors)}});
  }
  return w.take();
}

}  // namespace l4lb::control
