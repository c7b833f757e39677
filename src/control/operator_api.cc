// The operator API's commands (l4lbctl; docs/OPERATIONS.md lists the replies). They run on the
// control thread between epoll events, so they read the configuration, the dynamic state and
// the published snapshot without locks; worker counters are summed with plain loads (each
// array is written by its worker only).
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "control/control_plane.h"
#include "control/log.h"
#include "control/reload.h"
#include "dataplane/lookup.h"

namespace l4lb::control {

namespace {

using nlohmann::json;

struct ApiError {
  std::string msg;
};

const char* stateName(BackendState s) {
  return s == BackendState::Healthy ? "healthy" : s == BackendState::Draining ? "draining" : "unhealthy";
}

std::string endpoint(const IpAddr& a, uint16_t port) {
  return (a.isV4() ? a.str() : "[" + a.str() + "]") + ":" + std::to_string(port);
}

// A snapshot backend as ADDR:PORT, or null when there is none (JSON replies).
json backendJson(const SnapBackend* b) { return b ? json(endpoint(b->addr, ntohs(b->port_be))) : json(nullptr); }

void need(const std::vector<std::string>& args, size_t lo, size_t hi, const char* usage) {
  if (args.size() < lo || args.size() > hi) throw ApiError{std::string("usage: ") + usage};
}

BackendCounters sumBackend(const std::vector<const dataplane::WorkerState*>& ws, uint32_t id) {
  BackendCounters t;
  if (id == kNoBackend || id >= kMaxCountedBackends) return t;
  for (const auto* w : ws) {
    const BackendCounters& c = w->backend_ctrs[id];
    t.packets += c.packets;
    t.bytes += c.bytes;
    t.flows_new += c.flows_new;
    t.flows_ended += c.flows_ended;
  }
  return t;
}

json countersJson(const BackendCounters& c) {
  return {{"packets", c.packets},
          {"bytes", c.bytes},
          {"flows_new", c.flows_new},
          {"active_flows", c.flows_new >= c.flows_ended ? c.flows_new - c.flows_ended : 0}};
}

}  // namespace

std::string ControlPlane::handleRequest(const std::string& request) {
  json reply;
  try {
    json req = json::parse(request, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
      throw ApiError{"bad request: expected {\"cmd\": \"...\", \"args\": [...]}"};
    std::vector<std::string> args;
    if (req.contains("args")) {
      if (!req["args"].is_array()) throw ApiError{"bad request: args must be an array of strings"};
      for (const auto& a : req["args"]) {
        if (!a.is_string()) throw ApiError{"bad request: args must be an array of strings"};
        args.push_back(a.get<std::string>());
      }
    }
    const std::string cmd = req["cmd"].get<std::string>();
    if (cmd == "status") need(args, 0, 0, "status"), reply = cmdStatus();
    else if (cmd == "vips") need(args, 0, 0, "vips"), reply = cmdVips();
    else if (cmd == "backends") reply = cmdBackends(args);
    else if (cmd == "stats") need(args, 0, 0, "stats"), reply = cmdStats();
    else if (cmd == "drain") reply = cmdDrain(args, true);
    else if (cmd == "undrain") reply = cmdDrain(args, false);
    else if (cmd == "weight") reply = cmdWeight(args);
    else if (cmd == "reload") need(args, 0, 0, "reload"), reply = cmdReload();
    else if (cmd == "explain") reply = cmdExplain(args);
    else if (cmd == "diff") reply = cmdDiff(args);
    else throw ApiError{"unknown command '" + cmd + "'"};
    if (!reply.contains("ok")) reply["ok"] = true;
  } catch (const ApiError& e) {
    reply = {{"ok", false}, {"error", e.msg}};
  } catch (const std::exception& e) {  // a bug, not the client's fault: say so, keep running
    logError(std::string("control API: internal error: ") + e.what());
    reply = {{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
  }
  return reply.dump();
}

Observation ControlPlane::observe() const {
  Observation o;
  o.version = L4LB_VERSION;
  const Snapshot* s = publisher_.current();
  for (const VipConfig& v : cfg_.vips)
    for (const BackendConfig& b : v.backends) {
      ObservedBackend ob;
      ob.vip = v.name;
      ob.backend = endpoint(b.address, b.port);
      ob.key = backendIdentity(v, b);
      ob.id = builder_.idOf(ob.key);
      const SnapBackend* sb = s ? s->backend(ob.id) : nullptr;
      ob.state = sb ? stateName(sb->state) : "unknown";
      ob.weight = sb ? sb->weight : b.weight;
      ob.c = sumBackend(workers_, ob.id);
      o.backends.push_back(std::move(ob));
    }
  for (size_t i = 0; i < workers_.size(); i++) {
    const dataplane::WorkerState& w = *workers_[i];
    ObservedWorker ow;
    ow.counters = w.counters;
    ow.load = w.load;
    ow.busy_ratio = i < busy_ratio_.size() ? busy_ratio_[i] : 0;
    // FlowTable::size() is a relaxed atomic the worker updates: a concurrent insert gives a
    // count off by a burst at worst, never a bad read. The tables themselves are only read by
    // their worker (explain asks it through WorkerState::query).
    ow.flows4 = w.flows4 ? w.flows4->size() : 0;
    ow.flows6 = w.flows6 ? w.flows6->size() : 0;
    ow.capacity = flow_capacity_;
    o.workers.push_back(ow);
  }
  if (s)
    for (size_t p = 0; p < s->ports.size() && p < kMaxPorts; p++) {
      ObservedPort op;
      op.name = s->ports[p].name;
      for (const auto* w : workers_) {
        const PortCounters& c = w->port_ctrs[p];
        op.c.rx_packets += c.rx_packets;
        op.c.rx_bytes += c.rx_bytes;
        op.c.tx_packets += c.tx_packets;
        op.c.tx_bytes += c.tx_bytes;
      }
      o.ports.push_back(op);
    }
  o.health_ok = health_ok_;
  o.health_failed = health_failed_;
  o.reloads_ok = stats_.reloads_ok;
  o.reloads_failed = stats_.reloads_failed;
  o.publishes = stats_.publishes;
  o.health_transitions = stats_.health_transitions;
  o.uptime_s = double(monoMsNow() - started_mono_ms_) / 1000.0;
  return o;
}

json ControlPlane::cmdStatus() const {
  const Snapshot* s = publisher_.current();
  json ports = json::array();
  for (size_t i = 0; i < cfg_.ports.size(); i++) {
    const PortConfig& p = cfg_.ports[i];
    json j{{"name", p.name}, {"device", p.device}, {"mtu", p.mtu}};
    if (i < ports_.runtime.size()) {
      j["port_id"] = ports_.runtime[i].port_id;
      j["mac"] = ports_.runtime[i].mac.str();
    }
    ports.push_back(j);
  }
  // Drift: what l4lbctl changed at run time that the file does not say.
  json drift = json::array();
  for (const VipConfig& v : cfg_.vips)
    for (const BackendConfig& b : v.backends) {
      auto it = dyn_.backends.find(backendIdentity(v, b));
      if (it == dyn_.backends.end()) continue;
      const BackendRuntime& r = it->second;
      if (r.drained)
        drift.push_back({{"vip", v.name}, {"backend", endpoint(b.address, b.port)}, {"what", "drained"},
                         {"file", "not drained"}, {"running", "drained"}});
      if (r.weight && *r.weight != b.weight)
        drift.push_back({{"vip", v.name}, {"backend", endpoint(b.address, b.port)}, {"what", "weight"},
                         {"file", b.weight}, {"running", *r.weight}});
    }
  const std::string on_disk = fileSha256Of(path_);
  return {{"version", L4LB_VERSION},
          {"pid", int64_t(getpid())},
          {"uptime_s", double(monoMsNow() - started_mono_ms_) / 1000.0},
          {"started_unix", started_unix_},
          {"workers", workers_.size()},
          {"ports", ports},
          {"vips", cfg_.vips.size()},
          {"config", {{"path", path_}, {"sha256", config_sha256_}, {"on_disk_sha256", on_disk},
                      {"changed_on_disk", on_disk != config_sha256_}}},
          {"generation", s ? s->generation : 0},
          {"reloads", {{"ok", stats_.reloads_ok}, {"failed", stats_.reloads_failed}}},
          {"log_level", cfg_.log.level},
          {"metrics", metrics_.listening() ? cfg_.metrics.listen : ""},
          {"drift", drift}};
}

json ControlPlane::cmdVips() const {
  const Snapshot* s = publisher_.current();
  json out = json::array();
  for (size_t i = 0; i < cfg_.vips.size(); i++) {
    const VipConfig& v = cfg_.vips[i];
    size_t healthy = 0;
    for (const BackendConfig& b : v.backends)
      if (const SnapBackend* sb = s ? s->backend(builder_.idOf(backendIdentity(v, b))) : nullptr)
        healthy += sb->state == BackendState::Healthy;
    out.push_back({{"name", v.name},
                   {"address", v.address.str()},
                   {"port", v.port},
                   {"protocol", std::string(toString(v.protocol))},
                   {"scheduler", std::string(toString(v.scheduler))},
                   {"forwarding", std::string(toString(v.forwarding))},
                   {"maglev_table_size", v.maglev_table_size},
                   {"backends", v.backends.size()},
                   {"healthy", healthy}});
  }
  return {{"vips", out}};
}

json ControlPlane::cmdBackends(const std::vector<std::string>& args) const {
  need(args, 0, 1, "backends [VIP]");
  const Snapshot* s = publisher_.current();
  json out = json::array();
  bool found = args.empty();
  for (const VipConfig& v : cfg_.vips) {
    if (!args.empty() && args[0] != v.name && args[0] != endpoint(v.address, v.port) && args[0] != v.address.str())
      continue;
    found = true;
    for (const BackendConfig& b : v.backends) {
      const std::string key = backendIdentity(v, b);
      const uint32_t id = builder_.idOf(key);
      const SnapBackend* sb = s ? s->backend(id) : nullptr;
      auto dit = dyn_.backends.find(key);
      const BackendRuntime* r = dit == dyn_.backends.end() ? nullptr : &dit->second;
      json j{{"vip", v.name},
             {"backend", endpoint(b.address, b.port)},
             {"address", b.address.str()},
             {"port", b.port},
             {"id", id},
             {"state", sb ? stateName(sb->state) : "unknown"},
             {"weight", sb ? sb->weight : b.weight},
             {"file_weight", b.weight},
             {"drained_by_command", r && r->drained},
             {"health_down", r && r->down}};
      j.update(countersJson(sumBackend(workers_, id)));
      if (const HealthChecker::Status* st = health_.status(key))
        j["health"] = {{"state", std::string(toString(st->state))}, {"checks", st->checks},
                       {"last_reason", st->last_reason}, {"last_latency_ms", st->last_latency_ms},
                       {"last_change_reason", st->last_change_reason}};
      else
        j["health"] = {{"state", "not checked"}};
      if (auto t = transitions_.find(key); t != transitions_.end())
        j["last_transition"] = {{"unix_time", t->second.unix_time}, {"from", t->second.from},
                                {"to", t->second.to}, {"why", t->second.why}};
      else
        j["last_transition"] = nullptr;
      out.push_back(j);
    }
  }
  if (!found) throw ApiError{"no VIP named '" + args[0] + "' (see l4lbctl vips)"};
  return {{"backends", out}};
}

json ControlPlane::cmdStats() const {
  const Observation o = observe();
  json vips = json::array(), backends = json::array(), workers = json::array(), ports = json::array();
  std::map<std::string, BackendCounters> per_vip;
  for (const VipConfig& v : cfg_.vips) per_vip[v.name];
  for (const ObservedBackend& b : o.backends) {
    json j{{"vip", b.vip}, {"backend", b.backend}, {"state", b.state}};
    j.update(countersJson(b.c));
    backends.push_back(j);
    BackendCounters& t = per_vip[b.vip];
    t.packets += b.c.packets, t.bytes += b.c.bytes, t.flows_new += b.c.flows_new, t.flows_ended += b.c.flows_ended;
  }
  for (const VipConfig& v : cfg_.vips) {
    json j{{"vip", v.name}};
    j.update(countersJson(per_vip[v.name]));
    vips.push_back(j);
  }
  json drops_total = json::object();
  for (size_t r = 1; r < size_t(Drop::Count); r++) drops_total[std::string(kDropNames[r])] = 0;
  for (size_t i = 0; i < o.workers.size(); i++) {
    const ObservedWorker& w = o.workers[i];
    json drops = json::object(), ctrs = json::object();
    for (size_t r = 1; r < size_t(Drop::Count); r++) {
      drops[std::string(kDropNames[r])] = w.counters.drops[r];
      drops_total[std::string(kDropNames[r])] = drops_total[std::string(kDropNames[r])].get<uint64_t>() + w.counters.drops[r];
    }
    for (size_t c = 0; c < size_t(Ctr::Count); c++) ctrs[std::string(kCtrNames[c])] = w.counters.ctrs[c];
    workers.push_back({{"worker", i},
                       {"counters", ctrs},
                       {"drops", drops},
                       {"flows4", w.flows4},
                       {"flows6", w.flows6},
                       {"capacity", w.capacity},
                       {"occupancy", w.capacity ? double(w.flows4 + w.flows6) / double(2 * w.capacity) : 0.0},
                       {"busy_ratio", w.busy_ratio},
                       {"loops", w.load.loops}});
  }
  for (const ObservedPort& p : o.ports)
    ports.push_back({{"port", p.name}, {"rx_packets", p.c.rx_packets}, {"rx_bytes", p.c.rx_bytes},
                     {"tx_packets", p.c.tx_packets}, {"tx_bytes", p.c.tx_bytes}});
  return {{"vips", vips},     {"backends", backends}, {"workers", workers},
          {"ports", ports},   {"drops", drops_total}, {"new_flows_per_s", flows_per_s_}};
}

// BACKEND is ADDR, ADDR:PORT or [ADDR6]:PORT, optionally prefixed "VIP/" to pick one VIP.
std::vector<std::pair<const VipConfig*, const BackendConfig*>> ControlPlane::matchBackends(
    const std::vector<std::string>& args, size_t first) const {
  // VIP names default to "addr:port/proto": the backend is what follows the last '/'.
  std::string spec = args[first], vip;
  if (size_t slash = spec.rfind('/'); slash != std::string::npos) {
    vip = spec.substr(0, slash);
    spec = spec.substr(slash + 1);
  }
  std::optional<IpAddr> addr = IpAddr::parse(spec);
  std::optional<uint16_t> port;
  if (!addr) {
    // Port 0 is a backend's "keeps the client's port": accepted here, unlike in listen addresses.
    const bool zero = spec.size() > 2 && spec.compare(spec.size() - 2, 2, ":0") == 0;
    auto l = parseListenAddr(zero ? spec.substr(0, spec.size() - 1) + "1" : spec);
    if (!l) throw ApiError{"bad backend '" + args[first] + "': expected ADDR, ADDR:PORT or [ADDR6]:PORT (optionally VIP/...)"};
    addr = l->first;
    port = zero ? 0 : l->second;
  }
  std::vector<std::pair<const VipConfig*, const BackendConfig*>> out;
  bool vip_found = vip.empty();
  for (const VipConfig& v : cfg_.vips) {
    if (!vip.empty() && v.name != vip) continue;
    vip_found = true;
    for (const BackendConfig& b : v.backends)
      if (b.address == *addr && (!port || b.port == *port)) out.emplace_back(&v, &b);
  }
  if (!vip_found) throw ApiError{"no VIP named '" + vip + "' (see l4lbctl vips)"};
  if (out.empty()) throw ApiError{"no backend " + args[first] + " in the running configuration (see l4lbctl backends)"};
  return out;
}

json ControlPlane::cmdDrain(const std::vector<std::string>& args, bool drain) {
  need(args, 1, 1, drain ? "drain BACKEND" : "undrain BACKEND");
  json changed = json::array();
  for (const auto& [v, b] : matchBackends(args, 0)) {
    BackendRuntime& r = dyn_.backends[backendIdentity(*v, *b)];
    if (r.drained != drain) changed.push_back({{"vip", v->name}, {"backend", endpoint(b->address, b->port)}});
    r.drained = drain;
  }
  if (!changed.empty()) {
    logInfo(std::string(drain ? "drain " : "undrain ") + args[0] + " (l4lbctl): " + std::to_string(changed.size()) +
            " backend(s)");
    if (!rebuild(std::string(drain ? "drained" : "undrained") + " by l4lbctl")) throw ApiError{"rebuild failed (see the log)"};
  }
  return {{"changed", changed}};
}

json ControlPlane::cmdWeight(const std::vector<std::string>& args) {
  need(args, 2, 2, "weight BACKEND N");
  const std::string& n = args[1];
  if (n.empty() || n.size() > 5 || !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(n) > 65535)
    throw ApiError{"bad weight '" + n + "': must be 0..65535"};
  const uint32_t w = uint32_t(std::stoul(n));
  json changed = json::array();
  for (const auto& [v, b] : matchBackends(args, 0)) {
    BackendRuntime& r = dyn_.backends[backendIdentity(*v, *b)];
    const uint32_t before = r.weight ? *r.weight : b->weight;
    // Setting the file's own weight ends the override (no drift left to report).
    if (w == b->weight) r.weight.reset();
    else r.weight = w;
    if (before != w)
      changed.push_back({{"vip", v->name}, {"backend", endpoint(b->address, b->port)}, {"from", before}, {"to", w}});
  }
  if (!changed.empty()) {
    logInfo("weight " + args[0] + " " + n + " (l4lbctl): " + std::to_string(changed.size()) + " backend(s)");
    if (!rebuild("weight set by l4lbctl")) throw ApiError{"rebuild failed (see the log)"};
  }
  return {{"changed", changed}};
}

json ControlPlane::cmdReload() {
  const bool ok = reload();
  json j{{"ok", ok}, {"messages", last_reload_messages_}};
  if (!ok) j["error"] = "reload failed: the running configuration is unchanged";
  return j;
}

std::vector<ControlPlane::FlowAnswer> ControlPlane::askFlowTables(bool v6, const void* key, size_t key_len,
                                                                  uint32_t sig) const {
  std::vector<FlowAnswer> out(queries_.size());
  std::vector<bool> asked(queries_.size());
  // A worker with an earlier question still unanswered (stopped or stuck) is not asked again.
  for (size_t i = 0; i < queries_.size(); i++) asked[i] = dataplane::postFlowQuery(*queries_[i], v6, key, key_len, sig);
  const uint64_t deadline = monoMsNow() + kFlowQueryWaitMs;
  for (;;) {
    bool pending = false;
    for (size_t i = 0; i < queries_.size(); i++) {
      if (!asked[i] || out[i].answered) continue;
      dataplane::FlowQueryAnswer a;
      if (dataplane::takeFlowAnswer(*queries_[i], a)) out[i].answered = true, out[i].hit = a.hit, out[i].value = a.value;
      else pending = true;
    }
    if (!pending || monoMsNow() >= deadline) break;
    usleep(20);  // workers poll continuously: an answer takes one loop (microseconds)
  }
  return out;
}

namespace {

const char* flowStateName(dataplane::FlowState s) {
  switch (s) {
    case dataplane::FlowState::TcpSyn: return "syn";
    case dataplane::FlowState::TcpEstablished: return "established";
    case dataplane::FlowState::TcpClosing: return "closing";
    case dataplane::FlowState::Udp: return "udp";
  }
  return "?";
}

}  // namespace

json ControlPlane::cmdExplain(const std::vector<std::string>& args) const {
  need(args, 3, 3, "explain tcp|udp SRC:PORT DST:PORT");
  uint8_t proto;
  if (args[0] == "tcp") proto = uint8_t(Proto::Tcp);
  else if (args[0] == "udp") proto = uint8_t(Proto::Udp);
  else throw ApiError{"bad protocol '" + args[0] + "': tcp or udp"};
  auto src = parseListenAddr(args[1]), dst = parseListenAddr(args[2]);
  if (!src) throw ApiError{"bad source '" + args[1] + "': expected ADDR:PORT or [ADDR6]:PORT"};
  if (!dst) throw ApiError{"bad destination '" + args[2] + "': expected ADDR:PORT or [ADDR6]:PORT"};
  if (src->first.family != dst->first.family) throw ApiError{"source and destination are different address families"};
  const Snapshot* s = publisher_.current();
  if (s == nullptr) throw ApiError{"no snapshot published yet"};
  const Family f = dst->first.family;
  const uint16_t sport_be = htons(src->second), dport_be = htons(dst->second);
  json j{{"flow", args[0] + " " + args[1] + " -> " + args[2]}, {"flow_table", "not inspected"}, {"flow_entry", nullptr}};
  uint32_t vi;
  const SnapVip* v = dataplane::findVip(*s, dst->first.bytes.data(), f, dport_be, proto, vi);
  if (v == nullptr) {
    j["vip"] = nullptr;
    j["backend"] = nullptr;
    j["reason"] = "destination is no VIP: counted as no_vip (or handed to the kernel on a port with an exception path)";
    return j;
  }
  j["vip"] = v->name;
  j["scheduler"] = std::string(toString(v->scheduler));
  hash_sig_t sig;
  dataplane::FlowKey4 k4{};
  dataplane::FlowKey6 k6{};
  if (f == Family::V4) {
    sig = dataplane::makeFlowKey(k4, src->first.bytes.data(), dst->first.bytes.data(), sport_be, dport_be, proto);
  } else {
    sig = dataplane::makeFlowKey(k6, src->first.bytes.data(), dst->first.bytes.data(), sport_be, dport_be, proto);
  }
  j["hash"] = sig;

  // What a new flow gets now: the scheduler over the published tables.
  std::string fresh_why;
  const SnapBackend* fresh = nullptr;
  if (v->scheduler == Scheduler::RoundRobin || v->scheduler == Scheduler::WeightedRoundRobin) {
    json cands = json::array();
    std::set<uint32_t> seen;
    for (uint32_t id : v->rr)
      if (seen.insert(id).second)
        if (const SnapBackend* b = s->backend(id)) cands.push_back(backendJson(b));
    j["candidates"] = cands;
    fresh_why = v->rr.empty() ? "no usable backend: dropped as no_backend"
                              : "round robin: a new flow takes the next backend of the worker's cursor";
  } else {
    fresh = s->backend(dataplane::statelessBackend(*v, sig, src->first.bytes.data(), f));
    if (fresh == nullptr) {
      fresh_why = "no usable backend: dropped as no_backend";
    } else {
      const uint64_t slot = dataplane::statelessSlot(*v, sig, src->first.bytes.data(), f);
      j["slot"] = slot;
      j["table_size"] = v->maglev.size();
      fresh_why = std::string(v->scheduler == Scheduler::SourceHash ? "source hash" : "Maglev") + " slot " +
                  std::to_string(slot) + " of " + std::to_string(v->maglev.size());
    }
  }
  j["new_flow_backend"] = backendJson(fresh);

  // What the flow has: each worker answers for its own table (RSS decides which one holds it).
  const std::vector<FlowAnswer> answers = f == Family::V4 ? askFlowTables(false, &k4, sizeof(k4), sig)
                                                          : askFlowTables(true, &k6, sizeof(k6), sig);
  const SnapBackend* kept = nullptr;
  std::string table_why;
  if (!answers.empty()) {
    std::vector<std::string> silent;
    int hit_worker = -1;
    dataplane::FlowValue fv;
    for (size_t i = 0; i < answers.size(); i++) {
      if (!answers[i].answered) silent.push_back(std::to_string(i));
      else if (answers[i].hit && hit_worker < 0) hit_worker = int(i), fv = dataplane::FlowValue::unpack(answers[i].value);
    }
    if (hit_worker >= 0) {
      const uint32_t now = dataplane::nowMs();  // the workers' clock
      const uint32_t idle = now - fv.last_seen_ms;
      const bool expired = dataplane::isExpired(fv, now, s->timeouts);
      const SnapBackend* eb = s->backend(fv.backend_id);
      const bool usable = dataplane::usableForExisting(eb, vi);
      j["flow_entry"] = {{"worker", hit_worker},
                         {"backend", backendJson(eb)},
                         {"backend_id", fv.backend_id},
                         {"state", flowStateName(fv.state)},
                         {"idle_ms", idle},
                         {"expired", expired},
                         {"backend_usable", usable}};
      std::string entry = "hit on worker " + std::to_string(hit_worker) + " (" + flowStateName(fv.state) + ", idle " +
                          std::to_string(idle / 1000) + "." + std::to_string(idle % 1000 / 100) + " s)";
      if (expired) {
        j["flow_table"] = entry + ", expired";
        table_why = "its flow-table entry has expired: the next packet starts a new flow";
      } else if (!usable) {
        j["flow_table"] = entry + ", backend no longer usable";
        table_why = "its flow-table entry's backend left the pool or failed: the next packet is re-hashed (flow_rehash)";
      } else {
        j["flow_table"] = entry;
        kept = eb;
        table_why = "flow-table hit on worker " + std::to_string(hit_worker) + ": an existing flow keeps its backend";
      }
    } else {
      j["flow_table"] = "miss on " + std::to_string(answers.size() - silent.size()) + " of " +
                        std::to_string(answers.size()) + " workers";
      table_why = "no flow-table entry: a new flow";
    }
    if (!silent.empty()) {
      std::string w;
      for (const auto& x : silent) w += (w.empty() ? "" : ",") + x;
      j["flow_table"] = j["flow_table"].get<std::string>() + "; worker " + w + " did not answer within " +
                        std::to_string(kFlowQueryWaitMs) + " ms";
    }
  } else {
    table_why = "flow tables not inspected (no workers)";
  }

  const SnapBackend* chosen = kept ? kept : fresh;
  j["backend"] = backendJson(chosen);
  if (chosen) j["backend_state"] = stateName(chosen->state);
  if (kept) {
    j["reason"] = table_why + "; a new flow would get " +
                  (fresh ? backendJson(fresh).get<std::string>() + " (" + fresh_why + ")" : fresh_why);
  } else {
    j["reason"] = table_why + "; " + fresh_why;
  }
  return j;
}

json ControlPlane::cmdDiff(const std::vector<std::string>& args) const {
  need(args, 1, 1, "diff FILE");
  ConfigResult r = loadConfigFile(args[0]);
  if (!r.ok()) return {{"ok", false}, {"error", args[0] + " is not a valid configuration"}, {"messages", r.error.messages}};
  const Config& next = *r.config;
  std::vector<std::string> restart = restartRequired(cfg_, next);
  if (next.control.socket != cfg_.control.socket) restart.push_back("control.socket: needs a restart");
  if (next.control.mode != cfg_.control.mode) restart.push_back("control.mode: needs a restart");
  if (next.metrics.listen != cfg_.metrics.listen) restart.push_back("metrics.listen: needs a restart");
  SnapshotBuilder trial = builder_;
  BuildResult built = trial.build(next, ports_.runtime, &dyn_);
  if (!built) return {{"ok", false}, {"error", args[0] + " cannot be built on the running ports"}, {"messages", built.errors}};
  std::unique_ptr<Snapshot> ns = std::move(built.snapshot);
  const Snapshot* cur = publisher_.current();
  json vips = json::array();
  std::map<std::string, size_t> old_by_id, new_by_id;
  for (size_t i = 0; i < cfg_.vips.size(); i++) old_by_id[vipIdentity(cfg_.vips[i])] = i;
  for (size_t i = 0; i < next.vips.size(); i++) new_by_id[vipIdentity(next.vips[i])] = i;
  std::set<std::string> all;
  for (auto& [k, i] : old_by_id) all.insert(k);
  for (auto& [k, i] : new_by_id) all.insert(k);
  for (const std::string& k : all) {
    auto o = old_by_id.find(k), n = new_by_id.find(k);
    json j;
    if (o == old_by_id.end()) {
      j = {{"vip", next.vips[n->second].name}, {"change", "added"}};
    } else if (n == new_by_id.end()) {
      j = {{"vip", cfg_.vips[o->second].name}, {"change", "removed"}};
    } else {
      const VipConfig &ov = cfg_.vips[o->second], &nv = next.vips[n->second];
      json added = json::array(), removed = json::array(), weights = json::array();
      std::map<std::string, const BackendConfig*> ob, nb;
      for (const auto& b : ov.backends) ob[endpoint(b.address, b.port)] = &b;
      for (const auto& b : nv.backends) nb[endpoint(b.address, b.port)] = &b;
      for (auto& [e, b] : nb)
        if (!ob.count(e)) added.push_back(e);
        else if (ob[e]->weight != b->weight) weights.push_back({{"backend", e}, {"from", ob[e]->weight}, {"to", b->weight}});
      for (auto& [e, b] : ob)
        if (!nb.count(e)) removed.push_back(e);
      const std::vector<uint32_t>& om = cur->vips[o->second].maglev;
      const std::vector<uint32_t>& nm = ns->vips[n->second].maglev;
      size_t moved = 0;
      if (om.size() == nm.size()) {
        for (size_t i = 0; i < om.size(); i++) moved += om[i] != nm[i];
      } else {
        moved = std::max(om.size(), nm.size());  // a new table size reshuffles every slot
      }
      const size_t total = std::max<size_t>(nm.size(), 1);
      j = {{"vip", nv.name},
           {"change", added.empty() && removed.empty() && weights.empty() && moved == 0 ? "unchanged" : "changed"},
           {"backends_added", added},
           {"backends_removed", removed},
           {"weights_changed", weights},
           {"slots_moved", moved},
           {"slots_total", nm.size()},
           {"moved_share", double(moved) / double(total)}};
    }
    vips.push_back(j);
  }
  return {{"file", args[0]}, {"summary", diffSummary(cfg_, next)}, {"restart_required", restart},
          {"vips", vips}};
}

}  // namespace l4lb::control
