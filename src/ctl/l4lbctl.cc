// l4lbctl: the operator's client for a running l4lb. One JSON request per connection on the
// daemon's Unix socket ([control] socket); prints the reply as tables, or as JSON with --json.
// Exit codes: 0 done, 1 the daemon refused or the command failed, 2 usage, 3 no daemon reachable.
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

constexpr const char* kDefaultSocket = "/run/l4lb/l4lb.sock";
constexpr int kExitFailed = 1, kExitUsage = 2, kExitNoDaemon = 3;
constexpr int kTimeoutMs = 60000;  // a reload rebuilds Maglev tables: allow it time

void usage(FILE* f) {
  std::fprintf(f,
               "usage: l4lbctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
               "  status                       version, uptime, workers, ports, config file and hash, drift\n"
               "  vips                         configured VIPs\n"
               "  backends [VIP]               state, weight, health, active flows, last transition\n"
               "  stats                        per VIP, backend, worker and port counters, drops by reason\n"
               "  drain BACKEND                no new flows to BACKEND; existing flows continue\n"
               "  undrain BACKEND              back in service\n"
               "  weight BACKEND N             set the weight (0..65535) until the next restart\n"
               "  reload                       re-read the config file (as SIGHUP)\n"
               "  explain tcp|udp SRC:PORT DST:PORT   which backend this flow goes to now, and why\n"
               "  diff FILE                    what reloading FILE would change\n"
               "BACKEND: ADDR, ADDR:PORT or [ADDR6]:PORT, optionally VIP/... to pick one VIP.\n"
               "SOCKET defaults to %s. Exit: 0 ok, 1 command failed, 2 usage, 3 daemon not reachable.\n",
               kDefaultSocket);
}

[[noreturn]] void noDaemon(const std::string& msg) {
  std::fprintf(stderr, "l4lbctl: %s\n", msg.c_str());
  std::exit(kExitNoDaemon);
}

std::string talk(const std::string& path, const std::string& request) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) noDaemon("socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) noDaemon(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int e = errno;
    std::string why = std::strerror(e);
    if (e == ENOENT) why = "no such socket (l4lb is not running, or [control] socket names another path; see -s)";
    else if (e == ECONNREFUSED) why = "connection refused (l4lb is not running: stale socket file)";
    else if (e == EACCES || e == EPERM)
      why = "permission denied (the socket is owned by root with [control] mode, 0600 by default: run as root)";
    else if (e == ENOTSOCK) why = "not a socket";
    noDaemon("cannot connect to " + path + ": " + why);
  }
  std::string req = request + "\n";
  for (size_t off = 0; off < req.size();) {
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      noDaemon("sending to " + path + ": " + std::strerror(errno));
    }
    off += size_t(n);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, kTimeoutMs);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) noDaemon("no reply from " + path + " within " + std::to_string(kTimeoutMs / 1000) + " s");
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) noDaemon("reading from " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  close(fd);
  if (out.empty()) noDaemon("the daemon closed the connection without a reply");
  return out;
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

void table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
           const char* indent = "") {
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
    std::printf("%s\n", s.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

std::string ago(int64_t t) {
  int64_t d = int64_t(time(nullptr)) - t;
  return std::to_string(d < 0 ? 0 : d) + "s ago";
}

void printStatus(const json& r) {
  std::printf("l4lb %s  pid %s  uptime %.0fs  workers %s  VIPs %s\n", str(r["version"]).c_str(), str(r["pid"]).c_str(),
              r["uptime_s"].get<double>(), str(r["workers"]).c_str(), str(r["vips"]).c_str());
  const json& c = r["config"];
  std::printf("config %s sha256 %s%s\n", str(c["path"]).c_str(), str(c["sha256"]).c_str(),
              c["changed_on_disk"].get<bool>() ? "  (file changed on disk since loaded: l4lbctl diff / reload)" : "");
  std::printf("generation %s  reloads ok %s failed %s  log %s  metrics %s\n", str(r["generation"]).c_str(),
              str(r["reloads"]["ok"]).c_str(), str(r["reloads"]["failed"]).c_str(), str(r["log_level"]).c_str(),
              r["metrics"].get<std::string>().empty() ? "off" : str(r["metrics"]).c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : r["ports"]) rows.push_back({str(p["name"]), str(p.value("port_id", json())), str(p.value("mac", json())), str(p["mtu"]), str(p["device"])});
  std::printf("ports:\n");
  table({"NAME", "PORT_ID", "MAC", "MTU", "DEVICE"}, rows, "  ");
  if (r["drift"].empty()) {
    std::printf("drift: none (running state matches the config file)\n");
  } else {
    std::printf("drift (changed by l4lbctl, not in the config file):\n");
    rows.clear();
    for (const auto& d : r["drift"]) rows.push_back({str(d["vip"]), str(d["backend"]), str(d["what"]), str(d["file"]), str(d["running"])});
    table({"VIP", "BACKEND", "WHAT", "FILE", "RUNNING"}, rows, "  ");
  }
}

void printVips(const json& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : r["vips"])
    rows.push_back({str(v["name"]), str(v["address"]), str(v["port"]), str(v["protocol"]), str(v["scheduler"]),
                    str(v["forwarding"]), str(v["healthy"]) + "/" + str(v["backends"])});
  table({"NAME", "ADDRESS", "PORT", "PROTO", "SCHEDULER", "FORWARDING", "HEALTHY"}, rows);
}

void printBackends(const json& r) {
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
      last = str(t["from"]) + "->" + str(t["to"]) + " " + ago(t["unix_time"].get<int64_t>()) + ": " + str(t["why"]);
    }
    rows.push_back({str(b["vip"]), str(b["backend"]), str(b["state"]), weight, health, str(b["active_flows"]),
                    str(b["packets"]), last});
  }
  table({"VIP", "BACKEND", "STATE", "WEIGHT", "HEALTH", "ACTIVE_FLOWS", "PACKETS", "LAST_CHANGE"}, rows);
}

void printStats(const json& r) {
  std::vector<std::vector<std::string>> rows;
  std::printf("vips:\n");
  for (const auto& v : r["vips"]) rows.push_back({str(v["vip"]), str(v["packets"]), str(v["bytes"]), str(v["flows_new"]), str(v["active_flows"])});
  table({"VIP", "PACKETS", "BYTES", "NEW_FLOWS", "ACTIVE_FLOWS"}, rows, "  ");
  rows.clear();
  std::printf("backends:\n");
  for (const auto& b : r["backends"])
    rows.push_back({str(b["vip"]), str(b["backend"]), str(b["state"]), str(b["packets"]), str(b["bytes"]),
                    str(b["flows_new"]), str(b["active_flows"])});
  table({"VIP", "BACKEND", "STATE", "PACKETS", "BYTES", "NEW_FLOWS", "ACTIVE_FLOWS"}, rows, "  ");
  rows.clear();
  std::printf("workers:\n");
  for (const auto& w : r["workers"]) {
    uint64_t drops = 0;
    for (const auto& [k, v] : w["drops"].items()) drops += v.get<uint64_t>();
    char occ[32], busy[32];
    std::snprintf(occ, sizeof(occ), "%.4f%%", w["occupancy"].get<double>() * 100);
    std::snprintf(busy, sizeof(busy), "%.1f%%", w["busy_ratio"].get<double>() * 100);
    rows.push_back({str(w["worker"]), str(w["counters"]["rx_packets"]), str(w["counters"]["tx_packets"]), std::to_string(drops),
                    str(w["flows4"]), str(w["flows6"]), occ, busy});
  }
  table({"WORKER", "RX", "TX", "DROPS", "FLOWS4", "FLOWS6", "OCCUPANCY", "BUSY"}, rows, "  ");
  rows.clear();
  std::printf("ports:\n");
  for (const auto& p : r["ports"])
    rows.push_back({str(p["port"]), str(p["rx_packets"]), str(p["rx_bytes"]), str(p["tx_packets"]), str(p["tx_bytes"])});
  table({"PORT", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES"}, rows, "  ");
  rows.clear();
  std::printf("drops:\n");
  for (const auto& [k, v] : r["drops"].items())
    if (v.get<uint64_t>() != 0) rows.push_back({k, str(v)});
  if (rows.empty()) std::printf("  none\n");
  else table({"REASON", "PACKETS"}, rows, "  ");
  std::printf("new flows/s: %.1f\n", r["new_flows_per_s"].get<double>());
}

void printChanged(const std::string& verb, const json& r) {
  if (r["changed"].empty()) {
    std::printf("no change\n");
    return;
  }
  for (const auto& c : r["changed"]) {
    std::string extra = c.contains("from") ? " (" + str(c["from"]) + " -> " + str(c["to"]) + ")" : "";
    std::printf("%s %s in %s%s\n", verb.c_str(), str(c["backend"]).c_str(), str(c["vip"]).c_str(), extra.c_str());
  }
}

void printExplain(const json& r) {
  std::printf("flow:       %s\n", str(r["flow"]).c_str());
  std::printf("vip:        %s\n", str(r["vip"]).c_str());
  if (r.contains("scheduler")) std::printf("scheduler:  %s\n", str(r["scheduler"]).c_str());
  if (r.contains("hash")) std::printf("hash:       0x%08llx\n", static_cast<unsigned long long>(r["hash"].get<uint64_t>()));
  if (r.contains("slot")) std::printf("slot:       %s of %s\n", str(r["slot"]).c_str(), str(r["table_size"]).c_str());
  std::printf("backend:    %s\n", str(r["backend"]).c_str());
  if (r.contains("new_flow_backend") && r["new_flow_backend"] != r["backend"])
    std::printf("new flow:   %s\n", str(r["new_flow_backend"]).c_str());
  if (r.contains("candidates")) std::printf("candidates: %s\n", r["candidates"].dump().c_str());
  std::printf("why:        %s\n", str(r["reason"]).c_str());
  std::printf("flow table: %s\n", str(r["flow_table"]).c_str());
}

void printDiff(const json& r) {
  std::printf("%s: %s\n", str(r["file"]).c_str(), str(r["summary"]).c_str());
  for (const auto& m : r["restart_required"]) std::printf("needs a restart (reload would be refused): %s\n", str(m).c_str());
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
    rows.push_back({str(v["vip"]), str(v["change"]), list("backends_added"), list("backends_removed"), list("weights_changed"), moved});
  }
  table({"VIP", "CHANGE", "ADDED", "REMOVED", "WEIGHTS", "SLOTS_MOVED"}, rows);
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock = kDefaultSocket;
  bool as_json = false;
  std::vector<std::string> words;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--json") as_json = true;
    else if (a == "-s" || a == "--socket") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "l4lbctl: %s needs a value\n", a.c_str());
        return kExitUsage;
      }
      sock = argv[++i];
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && words.empty()) {
      std::fprintf(stderr, "l4lbctl: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return kExitUsage;
    } else words.push_back(a);
  }
  if (words.empty()) {
    usage(stderr);
    return kExitUsage;
  }
  const std::string cmd = words[0];
  std::vector<std::string> args(words.begin() + 1, words.end());
  struct Spec {
    const char* name;
    size_t min, max;
  };
  static const Spec kSpecs[] = {{"status", 0, 0}, {"vips", 0, 0},    {"backends", 0, 1}, {"stats", 0, 0},
                                {"drain", 1, 1},  {"undrain", 1, 1}, {"weight", 2, 2},   {"reload", 0, 0},
                                {"explain", 3, 3}, {"diff", 1, 1}};
  const Spec* spec = nullptr;
  for (const Spec& s : kSpecs)
    if (cmd == s.name) spec = &s;
  if (spec == nullptr) {
    std::fprintf(stderr, "l4lbctl: unknown command '%s'\n", cmd.c_str());
    usage(stderr);
    return kExitUsage;
  }
  if (args.size() < spec->min || args.size() > spec->max) {
    std::fprintf(stderr, "l4lbctl: %s: wrong number of arguments\n", cmd.c_str());
    usage(stderr);
    return kExitUsage;
  }
  // The daemon runs elsewhere in the file system's view of things: send an absolute path.
  if (cmd == "diff") {
    char buf[PATH_MAX];
    if (realpath(args[0].c_str(), buf) == nullptr) {
      std::fprintf(stderr, "l4lbctl: diff: %s: %s\n", args[0].c_str(), std::strerror(errno));
      return kExitFailed;
    }
    args[0] = buf;
  }
  const std::string raw = talk(sock, json{{"cmd", cmd}, {"args", args}}.dump());
  json r = json::parse(raw, nullptr, false);
  if (r.is_discarded() || !r.is_object()) noDaemon("unreadable reply from " + sock + ": " + raw.substr(0, 200));
  const bool ok = r.value("ok", false);
  if (as_json) {
    std::printf("%s\n", r.dump(2).c_str());
    return ok ? 0 : kExitFailed;
  }
  if (!ok) {
    std::fprintf(stderr, "l4lbctl: %s: %s\n", cmd.c_str(), r.value("error", std::string("failed")).c_str());
    if (r.contains("messages"))
      for (const auto& m : r["messages"]) std::fprintf(stderr, "  %s\n", str(m).c_str());
    return kExitFailed;
  }
  if (cmd == "status") printStatus(r);
  else if (cmd == "vips") printVips(r);
  else if (cmd == "backends") printBackends(r);
  else if (cmd == "stats") printStats(r);
  else if (cmd == "drain") printChanged("drained", r);
  else if (cmd == "undrain") printChanged("undrained", r);
  else if (cmd == "weight") printChanged("weight", r);
  else if (cmd == "reload") {
    for (const auto& m : r["messages"]) std::printf("%s\n", str(m).c_str());
  } else if (cmd == "explain") printExplain(r);
  else if (cmd == "diff") printDiff(r);
  return 0;
}
