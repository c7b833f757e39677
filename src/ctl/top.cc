// l4lbctl top's rates and frame (see top.h): the subtraction of two `stats` samples and its text.
#include "ctl/top.h"

#include <cstdio>
#include <map>

#include "ctl/render.h"

namespace l4lb::ctl {

using nlohmann::json;

namespace {

// A counter: a non-negative integer, 0 for anything else.
uint64_t count(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  return 0;
}

uint64_t u64(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  return it != obj.end() ? count(*it) : 0;
}

std::string text(const json& obj, const char* key, const char* missing = "-") {
  if (!obj.is_object()) return missing;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : missing;
}

// (after - before) / seconds; a counter that went backwards (restart, recreated) gives 0.
double rate(uint64_t before, uint64_t after, double seconds) {
  if (seconds <= 0 || after < before) return 0;
  return double(after - before) / seconds;
}

TopRates rates(const json& b, const json& a, double seconds) {
  TopRates r;
  r.packets_per_s = rate(u64(b, "packets"), u64(a, "packets"), seconds);
  r.bytes_per_s = rate(u64(b, "bytes"), u64(a, "bytes"), seconds);
  r.flows_new_per_s = rate(u64(b, "flows_new"), u64(a, "flows_new"), seconds);
  r.active_flows = u64(a, "active_flows");
  return r;
}

// The entries of before[list] by key, so the later sample's entries find theirs.
std::map<std::string, json> byKey(const json& reply, const char* list, const std::vector<const char*>& key) {
  std::map<std::string, json> out;
  if (!reply.is_object() || !reply.contains(list) || !reply[list].is_array()) return out;
  for (const json& e : reply[list]) {
    std::string k;
    for (const char* f : key) k += (e.contains(f) ? e[f].dump() : "") + "\x1f";
    out[k] = e;
  }
  return out;
}

const json& listOf(const json& reply, const char* list) {
  static const json kEmpty = json::array();
  if (!reply.is_object() || !reply.contains(list) || !reply[list].is_array()) return kEmpty;
  return reply[list];
}

json lookup(const std::map<std::string, json>& m, const json& e, const std::vector<const char*>& key) {
  std::string k;
  for (const char* f : key) k += (e.contains(f) ? e[f].dump() : "") + "\x1f";
  auto it = m.find(k);
  return it == m.end() ? json::object() : it->second;
}

std::string fixed(const char* fmt, double v) {
  char b[64];
  std::snprintf(b, sizeof(b), fmt, v);
  return b;
}

}  // namespace

std::string shortRate(double v) {
  if (v == 0) return "0";
  if (v < 1e3) return fixed("%.1f", v);
  if (v < 1e6) return fixed("%.1fk", v / 1e3);
  if (v < 1e9) return fixed("%.1fM", v / 1e6);
  return fixed("%.1fG", v / 1e9);
}

TopFrame computeTop(const json& before, const json& after, double seconds, const json& backends) {
  TopFrame f;
  f.seconds = seconds;
  const std::vector<const char*> vip_key{"vip"}, backend_key{"vip", "backend"}, worker_key{"worker"};

  const auto vips0 = byKey(before, "vips", vip_key);
  for (const json& v : listOf(after, "vips")) f.vips.push_back({text(v, "vip"), rates(lookup(vips0, v, vip_key), v, seconds)});

  const auto backends0 = byKey(before, "backends", backend_key);
  const auto health = byKey(backends, "backends", backend_key);
  for (const json& b : listOf(after, "backends")) {
    TopBackend tb{text(b, "vip"), text(b, "backend"), text(b, "state"), "-", rates(lookup(backends0, b, backend_key), b, seconds)};
    const json h = lookup(health, b, backend_key);
    if (h.contains("health")) tb.health = text(h["health"], "state");
    f.backends.push_back(std::move(tb));
  }

  const json drops0 = before.is_object() && before.contains("drops") ? before["drops"] : json::object();
  if (after.is_object() && after.contains("drops") && after["drops"].is_object())
    for (const auto& [reason, n] : after["drops"].items()) {
      const double r = rate(u64(drops0, reason.c_str()), count(n), seconds);
      if (r != 0) f.drops_per_s.emplace_back(reason, r);
    }

  const auto workers0 = byKey(before, "workers", worker_key);
  for (const json& w : listOf(after, "workers")) {
    const json w0 = lookup(workers0, w, worker_key);
    const json c0 = w0.contains("counters") ? w0["counters"] : json::object();
    const json c1 = w.contains("counters") ? w["counters"] : json::object();
    TopWorker tw;
    tw.worker = u64(w, "worker");
    tw.busy_ratio = w.contains("busy_ratio") && w["busy_ratio"].is_number() ? w["busy_ratio"].get<double>() : 0;
    tw.rx_packets_per_s = rate(u64(c0, "rx_packets"), u64(c1, "rx_packets"), seconds);
    tw.tx_packets_per_s = rate(u64(c0, "tx_packets"), u64(c1, "tx_packets"), seconds);
    f.workers.push_back(tw);
  }
  return f;
}

std::string renderTop(const TopFrame& f, int width) {
  std::string out = "l4lb top: rates over " + fixed("%.2f", f.seconds) + "s\n";
  std::vector<std::vector<std::string>> rows;
  for (const TopVip& v : f.vips)
    rows.push_back({v.vip, shortRate(v.rates.packets_per_s), shortRate(v.rates.bytes_per_s), shortRate(v.rates.flows_new_per_s),
                    std::to_string(v.rates.active_flows)});
  appendTable(out, {"VIP", "PKTS/S", "BYTES/S", "NEW_FLOWS/S", "ACTIVE_FLOWS"}, rows);
  out += "\n";
  rows.clear();
  for (const TopBackend& b : f.backends)
    rows.push_back({b.vip, b.backend, b.state, b.health, shortRate(b.rates.packets_per_s), shortRate(b.rates.bytes_per_s),
                    shortRate(b.rates.flows_new_per_s), std::to_string(b.rates.active_flows)});
  appendTable(out, {"VIP", "BACKEND", "STATE", "HEALTH", "PKTS/S", "BYTES/S", "NEW_FLOWS/S", "ACTIVE_FLOWS"}, rows);
  out += "\n";
  rows.clear();
  for (const TopWorker& w : f.workers)
    rows.push_back({std::to_string(w.worker), fixed("%.1f%%", w.busy_ratio * 100), shortRate(w.rx_packets_per_s),
                    shortRate(w.tx_packets_per_s)});
  appendTable(out, {"WORKER", "BUSY", "RX_PKTS/S", "TX_PKTS/S"}, rows);
  out += "\n";
  if (f.drops_per_s.empty()) {
    out += "drops/s: none\n";
  } else {
    rows.clear();
    for (const auto& [reason, r] : f.drops_per_s) rows.push_back({reason, shortRate(r)});
    appendTable(out, {"DROP_REASON", "PKTS/S"}, rows);
  }
  if (width <= 0) return out;
  // Cut each line to the terminal's width, so a narrow terminal does not wrap the tables.
  std::string cut;
  for (size_t pos = 0; pos < out.size();) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    cut += out.substr(pos, std::min(nl - pos, size_t(width))) + "\n";
    pos = nl + 1;
  }
  return cut;
}

json topJson(const TopFrame& f) {
  auto ratesJson = [](const TopRates& r) {
    return json{{"packets_per_s", r.packets_per_s}, {"bytes_per_s", r.bytes_per_s}, {"flows_new_per_s", r.flows_new_per_s},
                {"active_flows", r.active_flows}};
  };
  json vips = json::array(), backends = json::array(), workers = json::array(), drops = json::object();
  for (const TopVip& v : f.vips) {
    json j{{"vip", v.vip}};
    j.update(ratesJson(v.rates));
    vips.push_back(j);
  }
  for (const TopBackend& b : f.backends) {
    json j{{"vip", b.vip}, {"backend", b.backend}, {"state", b.state}, {"health", b.health}};
    j.update(ratesJson(b.rates));
    backends.push_back(j);
  }
  for (const TopWorker& w : f.workers)
    workers.push_back({{"worker", w.worker}, {"busy_ratio", w.busy_ratio}, {"rx_packets_per_s", w.rx_packets_per_s},
                       {"tx_packets_per_s", w.tx_packets_per_s}});
  for (const auto& [reason, r] : f.drops_per_s) drops[reason] = r;
  return {{"interval_s", f.seconds}, {"vips", vips}, {"backends", backends}, {"workers", workers}, {"drops_per_s", drops}};
}

}  // namespace l4lb::ctl
