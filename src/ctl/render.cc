// l4lbctl's human output: each reply rendered as text (tables), apart from the socket I/O so
// unit tests can check it byte for byte.
#include "ctl/render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "control/api/commands.h"
#include "ctl/top.h"

namespace l4lb::ctl {

using nlohmann::json;

void appendTable(std::string& out, const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                 const char* indent) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); i++) w[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); i++) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s = indent;
    for (size_t i = 0; i < r.size(); i++) {
      s += r[i];
      if (i + 1 < r.size()) s += std::string(w[i] - r[i].size() + 2, ' ');
    }
    out += s + "\n";
  };
  line(head);
  for (const auto& r : rows) line(r);
}


std::string str(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof(b), "%.2f", j.get<double>());
    return b;
  }
  return j.dump();
}

namespace {

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char* p = nullptr;
  const int n = vasprintf(&p, fmt, ap);
  va_end(ap);
  if (n >= 0) out.append(p, size_t(n));
  free(p);
}

std::string ago(int64_t t, int64_t now) {
  int64_t d = now - t;
  return std::to_string(d < 0 ? 0 : d) + "s ago";
}

using control::api::CommandId;

// How l4lbctl prints a successful reply to one command: the reply, and the current Unix time
// for "12s ago". kRender<C> is specialised for every command next to its printer; the table
// below is built from them and checked at compile time against control/api/commands.h.
using Renderer = void (*)(std::string& out, const json& reply, int64_t now);
template <CommandId>
constexpr Renderer kRender = nullptr;

void printStatus(std::string& out, const json& r, int64_t) {
  appendf(out, "l4lb %s  pid %s  uptime %.0fs  workers %s  VIPs %s\n", str(r["version"]).c_str(), str(r["pid"]).c_str(),
              r["uptime_s"].get<double>(), str(r["workers"]).c_str(), str(r["vips"]).c_str());
  const json& c = r["config"];
  appendf(out, "config %s sha256 %s%s\n", str(c["path"]).c_str(), str(c["sha256"]).c_str(),
              c["changed_on_disk"].get<bool>() ? "  (file changed on disk since loaded: l4lbctl diff / reload)" : "");
  appendf(out, "generation %s  reloads ok %s failed %s  log %s  metrics %s\n", str(r["generation"]).c_str(),
              str(r["reloads"]["ok"]).c_str(), str(r["reloads"]["failed"]).c_str(), str(r["log_level"]).c_str(),
              r["metrics"].get<std::string>().empty() ? "off" : str(r["metrics"]).c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : r["ports"]) rows.push_back({str(p["name"]), str(p.value("port_id", json())), str(p.value("mac", json())), str(p["mtu"]), str(p["device"])});
  appendf(out, "ports:\n");
  appendTable(out, {"NAME", "PORT_ID", "MAC", "MTU", "DEVICE"}, rows, "  ");
  if (r["drift"].empty()) {
    appendf(out, "drift: none (running state matches the config file)\n");
  } else {
    appendf(out, "drift (changed by l4lbctl, not in the config file):\n");
    rows.clear();
    for (const auto& d : r["drift"]) rows.push_back({str(d["vip"]), str(d["backend"]), str(d["what"]), str(d["file"]), str(d["running"])});
    appendTable(out, {"VIP", "BACKEND", "WHAT", "FILE", "RUNNING"}, rows, "  ");
  }
}
template <>
constexpr Renderer kRender<CommandId::Status> = printStatus;

void printVips(std::string& out, const json& r, int64_t) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : r["vips"])
    rows.push_back({str(v["name"]), str(v["address"]), str(v["port"]), str(v["protocol"]), str(v["scheduler"]),
                    str(v["forwarding"]), str(v["healthy"]) + "/" + str(v["backends"])});
  appendTable(out, {"NAME", "ADDRESS", "PORT", "PROTO", "SCHEDULER", "FORWARDING", "HEALTHY"}, rows);
}
template <>
constexpr Renderer kRender<CommandId::Vips> = printVips;

void printBackends(std::string& out, const json& r, int64_t now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : r["backends"]) {
    const json& h = b["health"];
    std::string health = str(h["state"]);
    if (h.contains("last_reason") && !h["last_reason"].get<std::string>().empty()) health += " (" + str(h["last_reason"]) + ")";
    std::string weight = str(b["weight"]);
    if (b["weight"] != b["file_weight"]) weight += " (file " + str(b["file_weight"]) + ")";
    std::string last = "-";
    if (!b["last_transition"].is_null()) {
      const json& t = b["last_transition"];
      last = str(t["from"]) + "->" + str(t["to"]) + " " + ago(t["unix_time"].get<int64_t>(), now) + ": " + str(t["why"]);
    }
    rows.push_back({str(b["vip"]), str(b["backend"]), str(b["state"]), weight, health, str(b["active_flows"]),
                    str(b["packets"]), last});
  }
  appendTable(out, {"VIP", "BACKEND", "STATE", "WEIGHT", "HEALTH", "ACTIVE_FLOWS", "PACKETS", "LAST_CHANGE"}, rows);
}
template <>
constexpr Renderer kRender<CommandId::Backends> = printBackends;

// Full NAT's pools per source address (only with fullnat VIPs).
void printSnatUsage(std::string& out, const json& r) {
  if (!r.contains("snat") || r["snat"].empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : r["snat"])
    rows.push_back({str(a["address"]), str(a["in_use"]), str(a["free"]), str(a["quiet"])});
  appendf(out, "snat ports:\n");
  appendTable(out, {"ADDRESS", "IN_USE", "FREE", "QUIET"}, rows, "  ");
}
// ipvsadm -L's shape: a VIP's line, then "  -> " and each backend.
void printList(std::string& out, const json& r, int64_t) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : r["vips"]) {
    rows.push_back({str(v["protocol"]) + " " + str(v["address"]) + " " + str(v["name"]),
                    str(v["scheduler"]) + " " + str(v["forwarding"]), "", str(v["active_flows"]),
                    str(v["packets_per_s"]), str(v["new_flows_per_s"])});
    for (const auto& b : v["backends"])
      rows.push_back({"  -> " + str(b["backend"]), str(b["state"]), str(b["weight"]), str(b["active_flows"]),
                      str(b["packets_per_s"]), str(b["new_flows_per_s"])});
  }
  appendTable(out, {"VIP / BACKEND", "STATE", "WEIGHT", "ACTIVE_FLOWS", "PACKETS/S", "NEW_FLOWS/S"}, rows);
}
template <>
constexpr Renderer kRender<CommandId::List> = printList;

// The file's text as is, so `l4lbctl config > FILE` is a config file; drift as TOML comments
// after it (they change nothing a loader reads).
void printConfig(std::string& out, const json& r, int64_t) {
  out += r["text"].get<std::string>();
  if (!out.empty() && out.back() != '\n') out += '\n';
  if (r.contains("drift") && !r["drift"].empty()) {
    out += "# Changed by l4lbctl since it was loaded (not in the text above):\n";
    for (const auto& d : r["drift"])
      out += "#   " + str(d["vip"]) + " " + str(d["backend"]) + ": " + str(d["what"]) + " " + str(d["running"]) +
             " (file: " + str(d["file"]) + ")\n";
  }
}
template <>
constexpr Renderer kRender<CommandId::Config> = printConfig;

void printStats(std::string& out, const json& r, int64_t) {
  std::vector<std::vector<std::string>> rows;
  appendf(out, "vips:\n");
  for (const auto& v : r["vips"]) rows.push_back({str(v["vip"]), str(v["packets"]), str(v["bytes"]), str(v["flows_new"]), str(v["active_flows"])});
  appendTable(out, {"VIP", "PACKETS", "BYTES", "NEW_FLOWS", "ACTIVE_FLOWS"}, rows, "  ");
  rows.clear();
  appendf(out, "backends:\n");
  for (const auto& b : r["backends"])
    rows.push_back({str(b["vip"]), str(b["backend"]), str(b["state"]), str(b["packets"]), str(b["bytes"]),
                    str(b["flows_new"]), str(b["active_flows"])});
  appendTable(out, {"VIP", "BACKEND", "STATE", "PACKETS", "BYTES", "NEW_FLOWS", "ACTIVE_FLOWS"}, rows, "  ");
  rows.clear();
  appendf(out, "workers:\n");
  for (const auto& w : r["workers"]) {
    uint64_t drops = 0;
    for (const auto& [k, v] : w["drops"].items()) drops += v.get<uint64_t>();
    char occ[32], busy[32];
    std::snprintf(occ, sizeof(occ), "%.4f%%", w["occupancy"].get<double>() * 100);
    std::snprintf(busy, sizeof(busy), "%.1f%%", w["busy_ratio"].get<double>() * 100);
    rows.push_back({str(w["worker"]), str(w["counters"]["rx_packets"]), str(w["counters"]["tx_packets"]), std::to_string(drops),
                    str(w["flows4"]), str(w["flows6"]), w.contains("embryonic") ? str(w["embryonic"]) : "-",
                    w.contains("confirmed") ? str(w["confirmed"]) : "-", occ, busy});
  }
  appendTable(out, {"WORKER", "RX", "TX", "DROPS", "FLOWS4", "FLOWS6", "EMBRYONIC", "CONFIRMED", "OCCUPANCY", "BUSY"}, rows,
              "  ");
  rows.clear();
  appendf(out, "ports:\n");
  for (const auto& p : r["ports"])
    rows.push_back({str(p["port"]), str(p["rx_packets"]), str(p["rx_bytes"]), str(p["tx_packets"]), str(p["tx_bytes"])});
  appendTable(out, {"PORT", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES"}, rows, "  ");
  rows.clear();
  appendf(out, "drops:\n");
  for (const auto& [k, v] : r["drops"].items())
    if (v.get<uint64_t>() != 0) rows.push_back({k, str(v)});
  if (rows.empty()) appendf(out, "  none\n");
  else appendTable(out, {"REASON", "PACKETS"}, rows, "  ");
  appendf(out, "new flows/s: %.1f\n", r["new_flows_per_s"].get<double>());
  printSnatUsage(out, r);
}
template <>
constexpr Renderer kRender<CommandId::Stats> = printStats;

void printChanged(std::string& out, const std::string& verb, const json& r) {
  if (r["changed"].empty()) {
    appendf(out, "no change\n");
    return;
  }
  for (const auto& c : r["changed"]) {
    std::string extra = c.contains("from") ? " (" + str(c["from"]) + " -> " + str(c["to"]) + ")" : "";
    appendf(out, "%s %s in %s%s\n", verb.c_str(), str(c["backend"]).c_str(), str(c["vip"]).c_str(), extra.c_str());
  }
}
template <>
constexpr Renderer kRender<CommandId::Drain> = [](std::string& out, const json& r, int64_t) { printChanged(out, "drained", r); };
template <>
constexpr Renderer kRender<CommandId::Undrain> = [](std::string& out, const json& r, int64_t) { printChanged(out, "undrained", r); };
template <>
constexpr Renderer kRender<CommandId::Weight> = [](std::string& out, const json& r, int64_t) { printChanged(out, "weight", r); };

void printReload(std::string& out, const json& r, int64_t) {
  for (const auto& m : r["messages"]) out += str(m) + "\n";
}
template <>
constexpr Renderer kRender<CommandId::Reload> = printReload;

// Full NAT: the source pair the flow uses toward its backend, and the PROXY v2 header.
void printExplainFullNat(std::string& out, const json& r) {
  if (!r.contains("fullnat")) return;
  const json& f = r["fullnat"];
  if (f["source"].is_null()) appendf(out, "snat:       none yet (a new flow takes its worker's next free pair)\n");
  else appendf(out, "snat:       %s (worker %s)\n", str(f["source"]).c_str(), str(f["worker"]).c_str());
  appendf(out, "proxy v2:   %s\n", f["proxy_v2"].get<bool>() ? "on" : "off");
}

void printExplain(std::string& out, const json& r, int64_t) {
  appendf(out, "flow:       %s\n", str(r["flow"]).c_str());
  appendf(out, "vip:        %s\n", str(r["vip"]).c_str());
  if (r.contains("scheduler")) appendf(out, "scheduler:  %s\n", str(r["scheduler"]).c_str());
  if (r.contains("hash")) appendf(out, "hash:       0x%08llx\n", static_cast<unsigned long long>(r["hash"].get<uint64_t>()));
  if (r.contains("slot")) appendf(out, "slot:       %s of %s\n", str(r["slot"]).c_str(), str(r["table_size"]).c_str());
  appendf(out, "backend:    %s\n", str(r["backend"]).c_str());
  if (r.contains("new_flow_backend") && r["new_flow_backend"] != r["backend"])
    appendf(out, "new flow:   %s\n", str(r["new_flow_backend"]).c_str());
  if (r.contains("candidates")) appendf(out, "candidates: %s\n", r["candidates"].dump().c_str());
  appendf(out, "why:        %s\n", str(r["reason"]).c_str());
  appendf(out, "flow table: %s\n", str(r["flow_table"]).c_str());
  printExplainFullNat(out, r);
}
template <>
constexpr Renderer kRender<CommandId::Explain> = printExplain;

void printDiff(std::string& out, const json& r, int64_t) {
  appendf(out, "%s: %s\n", str(r["file"]).c_str(), str(r["summary"]).c_str());
  for (const auto& m : r["restart_required"]) appendf(out, "needs a restart (reload would be refused): %s\n", str(m).c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : r["vips"]) {
    auto list = [&](const char* k) {
      if (!v.contains(k) || v[k].empty()) return std::string("-");
      std::string s;
      for (const auto& e : v[k]) s += (s.empty() ? "" : ",") + (e.is_object() ? str(e["backend"]) + "=" + str(e["to"]) : str(e));
      return s;
    };
    std::string moved = "-";
    if (v.contains("moved_share")) {
      char b[64];
      std::snprintf(b, sizeof(b), "%.2f%% (%s/%s)", v["moved_share"].get<double>() * 100, str(v["slots_moved"]).c_str(),
                    str(v["slots_total"]).c_str());
      moved = b;
    }
    // The VIP's own settings that changed, then other backend settings as BACKEND: FIELD (...).
    std::string fields;
    auto add = [&](const std::string& f) { fields += (fields.empty() ? "" : ", ") + f; };
    if (v.contains("fields_changed"))
      for (const auto& f : v["fields_changed"]) add(str(f));
    if (v.contains("backends_changed"))
      for (const auto& b : v["backends_changed"])
        for (const auto& f : b["fields"]) add(str(b["backend"]) + ": " + str(f));
    rows.push_back({str(v["vip"]), str(v["change"]), list("backends_added"), list("backends_removed"), list("weights_changed"), moved,
                    fields.empty() ? "-" : fields});
  }
  appendTable(out, {"VIP", "CHANGE", "ADDED", "REMOVED", "WEIGHTS", "SLOTS_MOVED", "FIELDS"}, rows);
}
template <>
constexpr Renderer kRender<CommandId::Diff> = printDiff;

// `cluster`: this balancer, BIRD's BGP sessions, each VIP announced or not and why, then sync.
void printCluster(std::string& out, const json& r, int64_t) {
  appendf(out, "balancer:  %s%s\n", str(r["name"]).c_str(), r.value("balancer_drained", false) ? " (DRAINED: every VIP withdrawn)" : "");
  const json& b = r["bgp"];
  if (b.is_null()) {
    appendf(out, "bgp:       off (no [bgp] in the configuration)\n");
  } else {
    appendf(out, "bird:      %s, %s%s\n", str(b["bird_socket"]).c_str(), b.value("bird_reachable", false) ? "reachable" : "NOT reachable",
            b.value("in_sync", false) ? "" : ", announcements not applied yet");
    if (b.contains("last_error"))
      appendf(out, "error:     %s (%s errors; retry in %.1f s)\n", str(b["last_error"]).c_str(), str(b["bird_errors"]).c_str(),
              b.value("retry_in_ms", 0) / 1000.0);
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : b["protocols"])
      rows.push_back({str(p["name"]), str(p["state"]), str(p["since"]), p["info"].get<std::string>().empty() ? "-" : str(p["info"])});
    if (rows.empty()) appendf(out, "sessions:  none reported by BIRD\n");
    else {
      out += "\n";
      appendTable(out, {"BGP", "STATE", "SINCE", "INFO"}, rows);
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : r["announcements"])
    rows.push_back({str(a["vip"]), str(a["prefix"]), a.value("announced", false) ? "yes" : "no", str(a["reason"])});
  if (!rows.empty()) {
    out += "\n";
    appendTable(out, {"VIP", "PREFIX", "ANNOUNCED", "WHY"}, rows);
  }
  const json& sync = r["sync"];
  if (sync.is_null()) {
    appendf(out, "\nsync:      off\n");
  } else {
    // Rejections: the reasons with a count, "-" when none.
    auto rejected = [](const json& rj) {
      std::string s;
      for (const auto& [reason, n] : rj.items())
        if (n.get<uint64_t>() != 0) s += (s.empty() ? "" : " ") + reason + "=" + n.dump();
      return s.empty() ? std::string("-") : s;
    };
    const json& t = sync["totals"];
    const json& lag = sync["lag_ms"];
    appendf(out, "\nsync:      %s; records out %s, in %s (to workers %s, ring full %s); lag %s ms (max %s)\n",
            str(sync["listen"]).c_str(), str(t["records_out"]).c_str(), str(t["records_in"]).c_str(),
            str(t["delivered"]).c_str(), str(t["ring_full"]).c_str(), str(lag["last"]).c_str(), str(lag["max"]).c_str());
    appendf(out, "rejected:  %s\n", rejected(t["rejected"]).c_str());
    std::vector<std::vector<std::string>> peers;
    for (const auto& p : sync["peers"]) {
      char in[32], outr[32];
      std::snprintf(in, sizeof(in), "%.1f", p.value("records_in_per_s", 0.0));
      std::snprintf(outr, sizeof(outr), "%.1f", p.value("records_out_per_s", 0.0));
      const json& heard = p["last_heard_ms_ago"];
      peers.push_back({str(p["address"]), heard.is_null() ? "never" : heard.dump() + " ms ago", in, outr,
                       rejected(p["rejected"])});
    }
    out += "\n";
    appendTable(out, {"PEER", "LAST HEARD", "IN/S", "OUT/S", "REJECTED"}, peers);
  }
}
template <>
constexpr Renderer kRender<CommandId::Cluster> = printCluster;

void printBalancerDrain(std::string& out, const json& r, int64_t) {
  appendf(out, "balancer %s%s\n", r.value("balancer_drained", false) ? "drained: every VIP withdrawn" : "undrained: VIPs announced again",
          r.value("changed", false) ? "" : " (no change)");
  if (!r.value("in_sync", false)) appendf(out, "warning: BIRD has not confirmed it yet (l4lbctl cluster)\n");
}
template <>
constexpr Renderer kRender<CommandId::DrainBalancer> = printBalancerDrain;
template <>
constexpr Renderer kRender<CommandId::UndrainBalancer> = printBalancerDrain;

// kRender<C> for every command, indexed by CommandId.
template <size_t... I>
constexpr std::array<Renderer, sizeof...(I)> rendererTable(std::index_sequence<I...>) {
  return {kRender<CommandId(I)>...};
}
constexpr auto kRenderers = rendererTable(std::make_index_sequence<control::api::kCommandCount>{});

constexpr bool everyCommandRendered() {
  for (Renderer r : kRenderers)
    if (r == nullptr) return false;
  return true;
}
static_assert(everyCommandRendered(),
              "a command of control/api/commands.h has no renderer: specialise kRender<CommandId::...> here");

}  // namespace

std::vector<std::string> commandNames() {
  std::vector<std::string> out;
  for (const control::api::CommandSpec& c : control::api::kCommands) out.emplace_back(c.name);
  for (const control::api::CommandSpec& c : kClientCommands) out.emplace_back(c.name);
  return out;
}

std::string usageText(const char* default_socket) {
  std::string out = "usage: l4lbctl [-s SOCKET] [--json] COMMAND [ARGS]\n";
  out += control::api::commandHelp(control::api::kCommands);
  out += control::api::commandHelp(kClientCommands);
  out += "BACKEND: ADDR, ADDR:PORT or [ADDR6]:PORT, optionally VIP/... to pick one VIP.\n";
  out += "SOCKET defaults to " + std::string(default_socket) +
         ". Exit: 0 ok, 1 command failed, 2 usage, 3 daemon not reachable.\n";
  return out;
}

int checkCommand(const std::string& cmd, size_t nargs, std::string& err) {
  const control::api::CommandSpec* spec = control::api::findCommand(cmd);
  for (const control::api::CommandSpec& c : kClientCommands)
    if (c.name == cmd) spec = &c;
  if (spec == nullptr) {
    err = "unknown command '" + cmd + "'";
    return kExitUsage;
  }
  if (!control::api::arityOk(*spec, nargs)) {
    err = cmd + ": wrong number of arguments (usage: l4lbctl " + spec->usage() + ")";
    return kExitUsage;
  }
  return kExitOk;
}

int checkCommand(const std::string& cmd, const std::vector<std::string>& args, std::string& err) {
  // Only top takes options of its own; its loop reports one it does not know. No argument of
  // the others starts with '-' and a letter (a negative number is a value, refused by its command).
  if (cmd != "top" && control::api::findCommand(cmd) != nullptr)
    for (const std::string& a : args)
      if (a.size() > 1 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) {
        err = cmd + ": unknown option '" + a + "'";
        return kExitUsage;
      }
  return checkCommand(cmd, args.size(), err);
}

std::string renderError(const std::string& cmd, const json& r) {
  std::string out = "l4lbctl: " + cmd + ": " + r.value("error", std::string("failed")) + "\n";
  if (r.contains("messages"))
    for (const auto& m : r["messages"]) out += "  " + str(m) + "\n";
  return out;
}

std::string renderReply(const std::string& cmd, const json& r, int64_t now) {
  std::string out;
  if (const control::api::CommandSpec* spec = control::api::findCommand(cmd))
    kRenderers[size_t(spec - control::api::kCommands)](out, r, now);
  return out;
}

}  // namespace l4lb::ctl
