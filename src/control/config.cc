// Config loader: TOML text -> validated Config, or every error found, each naming its place as
// "file:line:col: key.path: message" (STYLE.md, "Errors at the boundary"). Nothing here throws
// out of loadConfig*: toml++ parse errors and anything unexpected become messages.
#include "control/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <span>
#include <toml++/toml.h>
#include <utility>

namespace l4lb::control {

std::string ConfigError::str() const {
  std::string out;
  for (size_t i = 0; i < messages.size(); i++) {
    if (i > 0) out += '\n';
    out += messages[i];
  }
  return out;
}

namespace {

using KeyList = std::span<const std::string_view>;

constexpr std::string_view kRootKeys[] = {"eal", "flow_table", "ports", "neighbours", "vips"};
constexpr std::string_view kEalKeys[] = {"main_core", "worker_cores", "hugepages", "memory_mb",
                                         "in_memory", "file_prefix", "extra_args"};
constexpr std::string_view kFlowTableKeys[] = {"capacity", "tcp_syn_timeout",
                                               "tcp_established_timeout", "tcp_fin_timeout",
                                               "udp_timeout"};
constexpr std::string_view kPortKeys[] = {"name", "device",   "queues",   "mtu",     "mac",
                                          "ipv4", "ipv6",     "gateway4", "gateway6"};
constexpr std::string_view kNeighbourKeys[] = {"address", "mac"};
constexpr std::string_view kVipKeys[] = {"name",           "address",           "port",
                                         "protocol",       "scheduler",         "forwarding",
                                         "maglev_table_size", "tunnel_source4", "tunnel_source6",
                                         "gue_port",       "backends"};
constexpr std::string_view kBackendKeys[] = {"address", "port", "weight", "mac", "via"};

constexpr std::string_view kProtoNames[] = {"tcp", "udp"};
constexpr std::string_view kSchedulerNames[] = {"maglev", "source_hash", "round_robin",
                                                "weighted_round_robin"};
constexpr std::string_view kFwdModeNames[] = {"dsr", "ipip", "gue", "nat"};

constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
constexpr int64_t kMinFlowCapacity = 1024;
constexpr int64_t kMaxFlowCapacity = int64_t{1} << 27;
constexpr int64_t kMinMaglevSize = 7;
constexpr int64_t kMaxMaglevSize = 16777213;  // largest prime below 2^24
constexpr double kMaxTimeoutSeconds = 86400;
constexpr int64_t kMaxPortQueues = 64;
constexpr size_t kMaxPortNameLen = 32;
// A suggestion further away than this is more likely noise than the intended key.
constexpr size_t kMaxSuggestDistance = 2;

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest candidate within kMaxSuggestDistance, or empty.
std::string_view closest(std::string_view word, KeyList candidates) {
  std::string_view best;
  size_t bestDist = kMaxSuggestDistance + 1;
  for (auto c : candidates) {
    size_t d = editDistance(word, c);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best;
}

// Quotes operator text for a message; control characters are escaped so one error stays one line.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string joinNames(KeyList names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool isNameString(std::string_view s) { return std::all_of(s.begin(), s.end(), isNameChar); }

std::string_view familyName(const IpAddr& a) { return a.isV4() ? "IPv4" : "IPv6"; }

bool tunnels(FwdMode m) { return m == FwdMode::Ipip || m == FwdMode::Gue; }

class Loader {
 public:
  explicit Loader(std::string name) : name_(std::move(name)) {}

  ConfigResult run(std::string_view text) {
    ConfigResult result;
    try {
      if (parse(text)) load();
    } catch (const std::exception& e) {
      // Only std::bad_alloc and the like can get here; report rather than escape.
      diags_.push_back({0, 0, name_ + ": internal error: " + e.what()});
    } catch (...) {
      diags_.push_back({0, 0, name_ + ": internal error"});
    }
    if (diags_.empty()) {
      config_.path = name_;
      result.config = std::move(config_);
      return result;
    }
    // File order reads best; errors at the same place keep the order they were found in.
    std::stable_sort(diags_.begin(), diags_.end(), [](const Diag& a, const Diag& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    for (auto& d : diags_) result.error.messages.push_back(std::move(d.text));
    return result;
  }

 private:
  struct Diag {
    uint32_t line;
    uint32_t column;
    std::string text;
  };

  void report(const toml::source_position& at, const std::string& path, const std::string& msg) {
    std::string text = name_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                       ": " + path + ": " + msg;
    diags_.push_back({at.line, at.column, std::move(text)});
  }
  void report(const toml::node& at, const std::string& path, const std::string& msg) {
    report(at.source().begin, path, msg);
  }

  bool parse(std::string_view text) {
#if TOML_EXCEPTIONS
    try {
      root_ = toml::parse(text, std::string_view(name_));
    } catch (const toml::parse_error& e) {
      syntaxError(e);
      return false;
    }
#else
    auto res = toml::parse(text, std::string_view(name_));
    if (!res) {
      syntaxError(res.error());
      return false;
    }
    root_ = std::move(res).table();
#endif
    return true;
  }

  void syntaxError(const toml::parse_error& e) {
    auto at = e.source().begin;
    diags_.push_back({at.line, at.column,
                      name_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                          ": syntax error: " + std::string(e.description())});
  }

  // ---- typed readers: each reports its own error and returns nullopt / nullptr on failure ----

  void checkKeys(const toml::table& t, const std::string& path, KeyList allowed) {
    for (auto&& [key, value] : t) {
      std::string_view k = key.str();
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      std::string msg = "unknown key";
      if (auto s = closest(k, allowed); !s.empty()) msg += ", did you mean " + quote(s) + "?";
      report(key.source().begin, child(path, k), msg);
    }
  }

  const toml::table* asTable(const toml::node& n, const std::string& path) {
    if (auto* t = n.as_table()) return t;
    report(n, path, "must be a table");
    return nullptr;
  }

  // An array whose elements are tables; `header` names the TOML form for the message.
  std::vector<const toml::table*> tableArray(const toml::node& n, const std::string& path,
                                             std::string_view header) {
    std::vector<const toml::table*> out;
    auto* arr = n.as_array();
    if (arr == nullptr) {
      report(n, path, "must be an array of tables (" + std::string(header) + ")");
      return out;
    }
    for (size_t i = 0; i < arr->size(); i++) {
      const toml::node& e = *arr->get(i);
      if (auto* t = e.as_table()) {
        out.push_back(t);
      } else {
        out.push_back(nullptr);
        report(e, element(path, i), "must be a table");
      }
    }
    return out;
  }

  std::optional<int64_t> integer(const toml::node& n, const std::string& path, int64_t lo,
                                 int64_t hi) {
    auto* v = n.as_integer();
    if (v == nullptr) {
      report(n, path, "must be an integer");
      return std::nullopt;
    }
    int64_t x = v->get();
    if (x < lo || x > hi) {
      report(n, path, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
      return std::nullopt;
    }
    return x;
  }

  // Unsigned with no meaningful upper bound of its own (core ids, megabytes).
  std::optional<uint32_t> unsignedInt(const toml::node& n, const std::string& path) {
    auto* v = n.as_integer();
    if (v == nullptr) {
      report(n, path, "must be an integer");
      return std::nullopt;
    }
    int64_t x = v->get();
    if (x < 0) {
      report(n, path, "must be >= 0");
      return std::nullopt;
    }
    if (x > kMaxU32) {
      report(n, path, "must be <= " + std::to_string(kMaxU32));
      return std::nullopt;
    }
    return static_cast<uint32_t>(x);
  }

  std::optional<bool> boolean(const toml::node& n, const std::string& path) {
    if (auto* v = n.as_boolean()) return v->get();
    report(n, path, "must be a boolean");
    return std::nullopt;
  }

  std::optional<std::string> string(const toml::node& n, const std::string& path) {
    if (auto* v = n.as_string()) return v->get();
    report(n, path, "must be a string");
    return std::nullopt;
  }

  // Seconds as integer or float, returned in milliseconds.
  std::optional<uint32_t> timeoutMs(const toml::node& n, const std::string& path) {
    double s;
    if (auto* i = n.as_integer()) {
      s = static_cast<double>(i->get());
    } else if (auto* f = n.as_floating_point()) {
      s = f->get();
    } else {
      report(n, path, "must be a number (seconds)");
      return std::nullopt;
    }
    // Written so NaN fails too; a value that rounds to 0 ms would mean "expire at once".
    double ms = std::round(s * 1000.0);
    if (!(s > 0 && s <= kMaxTimeoutSeconds) || ms < 1) {
      report(n, path, "must be > 0 and <= 86400 seconds");
      return std::nullopt;
    }
    return static_cast<uint32_t>(ms);
  }

  // `want` restricts the family; nullopt accepts either.
  std::optional<IpAddr> address(const toml::node& n, const std::string& path,
                                std::optional<Family> want = std::nullopt) {
    auto s = string(n, path);
    if (!s) return std::nullopt;
    auto a = IpAddr::parse(*s);
    if (a && (!want || a->family == *want)) return a;
    std::string what = !want ? "an IPv4 or IPv6 address"
                             : (*want == Family::V4 ? "an IPv4 address" : "an IPv6 address");
    report(n, path, "must be " + what + " (got " + quote(*s) + ")");
    return std::nullopt;
  }

  std::optional<Prefix> prefix(const toml::node& n, const std::string& path, Family want) {
    auto s = string(n, path);
    if (!s) return std::nullopt;
    auto p = Prefix::parse(*s);
    if (p && p->addr.family == want) return p;
    report(n, path,
           want == Family::V4 ? "must be an IPv4 prefix like 198.18.0.1/24 (got " + quote(*s) + ")"
                              : "must be an IPv6 prefix like 2001:db8::1/64 (got " + quote(*s) + ")");
    return std::nullopt;
  }

  std::optional<MacAddr> mac(const toml::node& n, const std::string& path) {
    auto s = string(n, path);
    if (!s) return std::nullopt;
    auto m = MacAddr::parse(*s);
    if (!m) {
      report(n, path, "must be a MAC address like 02:00:00:00:00:01 (got " + quote(*s) + ")");
      return std::nullopt;
    }
    // Group bit set or all-zero: never a valid station address for a port or a next hop.
    if (m->isZero() || (m->bytes[0] & 1) != 0) {
      report(n, path, "must be a unicast MAC address (got " + quote(*s) + ")");
      return std::nullopt;
    }
    return m;
  }

  template <class E, class ParseFn>
  std::optional<E> enumValue(const toml::node& n, const std::string& path, ParseFn parseFn,
                             KeyList names) {
    auto s = string(n, path);
    if (!s) return std::nullopt;
    if (auto v = parseFn(*s)) return v;
    report(n, path, "must be one of " + joinNames(names) + " (got " + quote(*s) + ")");
    return std::nullopt;
  }

  // ---- sections ----

  void load() {
    const toml::table& root = root_;
    checkKeys(root, "", kRootKeys);
    loadEal(root);
    if (auto* n = root.get("flow_table")) {
      if (auto* t = asTable(*n, "flow_table")) loadFlowTable(*t);
    }
    loadPorts(root);
    loadNeighbours(root);
    loadVips(root);
  }

  void loadEal(const toml::table& root) {
    const toml::node* n = root.get("eal");
    const toml::table* t = nullptr;
    if (n != nullptr) {
      t = asTable(*n, "eal");
      if (t == nullptr) return;
    }
    if (t == nullptr) {
      report(root.source().begin, "eal.worker_cores",
             "is required (at least one worker core)");
      return;
    }
    const std::string path = "eal";
    auto& eal = config_.eal;
    checkKeys(*t, path, kEalKeys);
    bool mainOk = true;
    if (auto* v = t->get("main_core")) {
      auto x = unsignedInt(*v, child(path, "main_core"));
      if (x) eal.main_core = *x;
      mainOk = x.has_value();
    }
    if (auto* v = t->get("worker_cores")) {
      loadWorkerCores(*v, child(path, "worker_cores"), mainOk);
    } else {
      report(*t, child(path, "worker_cores"), "is required (at least one worker core)");
    }
    if (auto* v = t->get("hugepages")) {
      if (auto x = boolean(*v, child(path, "hugepages"))) eal.hugepages = *x;
    }
    if (auto* v = t->get("memory_mb")) {
      if (auto x = unsignedInt(*v, child(path, "memory_mb"))) eal.memory_mb = *x;
    }
    if (auto* v = t->get("in_memory")) {
      if (auto x = boolean(*v, child(path, "in_memory"))) eal.in_memory = *x;
      // DPDK 22.11: --no-huge implies legacy memory mode, which --in-memory rejects.
      if (eal.in_memory && !eal.hugepages)
        report(*v, child(path, "in_memory"), "cannot be true with hugepages = false (EAL refuses the pair)");
    }
    if (auto* v = t->get("file_prefix")) {
      const std::string p = child(path, "file_prefix");
      if (auto x = string(*v, p)) {
        // It becomes a file name under /var/run/dpdk and hugetlbfs.
        if (x->empty() || !isNameString(*x))
          report(*v, p, "must be non-empty and use only A-Z a-z 0-9 _ -");
        else
          eal.file_prefix = *x;
      }
    }
    if (auto* v = t->get("extra_args")) {
      const std::string p = child(path, "extra_args");
      if (auto* arr = v->as_array()) {
        for (size_t i = 0; i < arr->size(); i++) {
          if (auto x = string(*arr->get(i), element(p, i))) eal.extra_args.push_back(*x);
        }
      } else {
        report(*v, p, "must be an array of strings");
      }
    }
  }

  void loadWorkerCores(const toml::node& n, const std::string& path, bool mainOk) {
    auto* arr = n.as_array();
    if (arr == nullptr) {
      report(n, path, "must be an array of integers");
      return;
    }
    if (arr->empty()) {
      report(n, path, "must list at least one worker core");
      return;
    }
    auto& eal = config_.eal;
    for (size_t i = 0; i < arr->size(); i++) {
      const toml::node& e = *arr->get(i);
      const std::string p = element(path, i);
      auto core = unsignedInt(e, p);
      if (!core) continue;
      std::string c = "core " + std::to_string(*core);
      if (mainOk && *core == eal.main_core)
        report(e, p, c + " is the main core");
      else if (std::find(eal.worker_cores.begin(), eal.worker_cores.end(), *core) !=
               eal.worker_cores.end())
        report(e, p, c + " is listed twice");
      else
        eal.worker_cores.push_back(*core);
    }
  }

  void loadFlowTable(const toml::table& t) {
    const std::string path = "flow_table";
    auto& ft = config_.flow_table;
    checkKeys(t, path, kFlowTableKeys);
    if (auto* v = t.get("capacity")) {
      if (auto x = integer(*v, child(path, "capacity"), kMinFlowCapacity, kMaxFlowCapacity))
        ft.capacity = static_cast<uint32_t>(*x);
    }
    const std::pair<std::string_view, uint32_t*> timeouts[] = {
        {"tcp_syn_timeout", &ft.tcp_syn_timeout_ms},
        {"tcp_established_timeout", &ft.tcp_established_timeout_ms},
        {"tcp_fin_timeout", &ft.tcp_fin_timeout_ms},
        {"udp_timeout", &ft.udp_timeout_ms},
    };
    for (auto [key, field] : timeouts) {
      if (auto* v = t.get(key)) {
        if (auto x = timeoutMs(*v, child(path, key))) *field = *x;
      }
    }
  }

  void loadPorts(const toml::table& root) {
    const toml::node* n = root.get("ports");
    if (n == nullptr) {
      report(root.source().begin, "ports", "at least one [[ports]] is required");
      return;
    }
    auto tables = tableArray(*n, "ports", "[[ports]]");
    if (n->is_array() && tables.empty()) report(*n, "ports", "at least one [[ports]] is required");
    std::map<std::string, size_t> names, devices;
    for (size_t i = 0; i < tables.size(); i++) {
      if (tables[i] == nullptr) continue;
      const toml::table& t = *tables[i];
      const std::string path = element("ports", i);
      PortConfig port;
      checkKeys(t, path, kPortKeys);

      if (auto* v = t.get("name")) {
        const std::string p = child(path, "name");
        if (auto x = string(*v, p)) {
          if (x->empty() || x->size() > kMaxPortNameLen || !isNameString(*x)) {
            report(*v, p, "must be 1..32 characters from A-Z a-z 0-9 _ -");
          } else if (auto [it, fresh] = names.emplace(*x, i); !fresh) {
            report(*v, p, quote(*x) + " is already used by " + element("ports", it->second));
          }
          port.name = *x;
        }
      } else {
        report(t, child(path, "name"), "is required");
      }

      if (auto* v = t.get("device")) {
        const std::string p = child(path, "device");
        if (auto x = string(*v, p)) {
          if (x->empty()) {
            report(*v, p, "must not be empty");
          } else if (auto [it, fresh] = devices.emplace(*x, i); !fresh) {
            report(*v, p, quote(*x) + " is already used by " + element("ports", it->second));
          }
          port.device = *x;
        }
      } else {
        report(t, child(path, "device"), "is required");
      }

      if (auto* v = t.get("queues")) {
        if (auto x = integer(*v, child(path, "queues"), 0, kMaxPortQueues))
          port.queues = static_cast<uint16_t>(*x);
      }
      if (auto* v = t.get("mtu")) {
        if (auto x = integer(*v, child(path, "mtu"), 68, 9000)) port.mtu = static_cast<uint16_t>(*x);
      }
      if (auto* v = t.get("mac")) port.mac = mac(*v, child(path, "mac"));
      loadPortFamily(t, path, port, Family::V4);
      loadPortFamily(t, path, port, Family::V6);
      config_.ports.push_back(std::move(port));
    }
  }

  // ipv4 + gateway4, or ipv6 + gateway6.
  void loadPortFamily(const toml::table& t, const std::string& path, PortConfig& port, Family f) {
    bool v4 = f == Family::V4;
    std::string_view prefixKey = v4 ? "ipv4" : "ipv6";
    std::string_view gatewayKey = v4 ? "gateway4" : "gateway6";
    std::optional<Prefix>& pfx = v4 ? port.ipv4 : port.ipv6;
    std::optional<IpAddr>& gw = v4 ? port.gateway4 : port.gateway6;

    const toml::node* pn = t.get(prefixKey);
    if (pn != nullptr) pfx = prefix(*pn, child(path, prefixKey), f);
    const toml::node* gn = t.get(gatewayKey);
    if (gn == nullptr) return;
    const std::string p = child(path, gatewayKey);
    gw = address(*gn, p, f);
    if (!gw) return;
    if (pn == nullptr) {
      report(*gn, p, "needs " + std::string(prefixKey) + " to be set on this port");
    } else if (pfx) {
      // A gateway must be on-link, or we could never resolve its MAC.
      if (!pfx->contains(*gw))
        report(*gn, p, gw->str() + " is not inside " + std::string(prefixKey) + " " + pfx->str());
      else if (*gw == pfx->addr)
        report(*gn, p, gw->str() + " is the port's own address");
    }
  }

  void loadNeighbours(const toml::table& root) {
    const toml::node* n = root.get("neighbours");
    if (n == nullptr) return;
    auto tables = tableArray(*n, "neighbours", "[[neighbours]]");
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < tables.size(); i++) {
      if (tables[i] == nullptr) continue;
      const toml::table& t = *tables[i];
      const std::string path = element("neighbours", i);
      checkKeys(t, path, kNeighbourKeys);
      std::optional<IpAddr> addr;
      std::optional<MacAddr> hw;
      if (auto* v = t.get("address"))
        addr = address(*v, child(path, "address"));
      else
        report(t, child(path, "address"), "is required");
      if (auto* v = t.get("mac"))
        hw = mac(*v, child(path, "mac"));
      else
        report(t, child(path, "mac"), "is required");
      if (addr) {
        if (auto [it, fresh] = seen.emplace(addr->str(), i); !fresh)
          report(t, path, "duplicate of " + element("neighbours", it->second) + " (same address)");
      }
      if (addr && hw) config_.neighbours.push_back({*addr, *hw});
    }
  }

  void loadVips(const toml::table& root) {
    const toml::node* n = root.get("vips");
    if (n == nullptr) {
      report(root.source().begin, "vips", "at least one [[vips]] is required");
      return;
    }
    auto tables = tableArray(*n, "vips", "[[vips]]");
    if (n->is_array() && tables.empty()) report(*n, "vips", "at least one [[vips]] is required");
    std::map<std::string, size_t> keys, names;
    for (size_t i = 0; i < tables.size(); i++) {
      if (tables[i] == nullptr) continue;
      loadVip(*tables[i], i, keys, names);
    }
  }

  void loadVip(const toml::table& t, size_t index, std::map<std::string, size_t>& keys,
               std::map<std::string, size_t>& names) {
    const std::string path = element("vips", index);
    VipConfig vip;
    checkKeys(t, path, kVipKeys);

    // Whether each field that later checks depend on is known to be right.
    bool addrOk = false, portOk = true, protoOk = true, fwdOk = true;
    if (auto* v = t.get("address")) {
      auto a = address(*v, child(path, "address"));
      if (a) vip.address = *a;
      addrOk = a.has_value();
    } else {
      report(t, child(path, "address"), "is required");
    }
    if (auto* v = t.get("port")) {
      auto x = integer(*v, child(path, "port"), 0, 65535);
      if (x) vip.port = static_cast<uint16_t>(*x);
      portOk = x.has_value();
    }
    if (auto* v = t.get("protocol")) {
      auto x = enumValue<Proto>(*v, child(path, "protocol"), parseProto, kProtoNames);
      if (x) vip.protocol = *x;
      protoOk = x.has_value();
    }
    if (auto* v = t.get("scheduler")) {
      auto x = enumValue<Scheduler>(*v, child(path, "scheduler"), parseScheduler, kSchedulerNames);
      if (x) vip.scheduler = *x;
    }
    if (auto* v = t.get("forwarding")) {
      auto x = enumValue<FwdMode>(*v, child(path, "forwarding"), parseFwdMode, kFwdModeNames);
      if (x) vip.forwarding = *x;
      fwdOk = x.has_value();
    }
    bool sizeOk = true;
    const toml::node* sizeNode = t.get("maglev_table_size");
    if (sizeNode != nullptr) {
      const std::string p = child(path, "maglev_table_size");
      auto x = integer(*sizeNode, p, kMinMaglevSize, kMaxMaglevSize);
      sizeOk = x.has_value();
      if (x && !isPrime(static_cast<uint32_t>(*x))) {
        // Maglev NSDI'16 §3.4: the permutation only covers every slot when the size is prime.
        report(*sizeNode, p, "must be a prime number (e.g. 65537)");
        sizeOk = false;
      }
      if (sizeOk) vip.maglev_table_size = static_cast<uint32_t>(*x);
    }

    const std::pair<std::string_view, Family> sources[] = {{"tunnel_source4", Family::V4},
                                                           {"tunnel_source6", Family::V6}};
    for (auto [key, family] : sources) {
      const toml::node* v = t.get(key);
      if (v == nullptr) continue;
      const std::string p = child(path, key);
      auto a = address(*v, p, family);
      if (a && fwdOk && !tunnels(vip.forwarding)) {
        report(*v, p, "only allowed with forwarding ipip or gue");
      } else if (a) {
        (family == Family::V4 ? vip.tunnel_source4 : vip.tunnel_source6) = a;
      }
    }
    if (auto* v = t.get("gue_port")) {
      const std::string p = child(path, "gue_port");
      auto x = integer(*v, p, 1, 65535);
      if (x && fwdOk && vip.forwarding != FwdMode::Gue)
        report(*v, p, "only allowed with forwarding gue");
      else if (x)
        vip.gue_port = static_cast<uint16_t>(*x);
    }

    const toml::node* bn = t.get("backends");
    if (bn == nullptr) {
      report(t, child(path, "backends"), "a VIP needs at least one backend");
    } else {
      loadBackends(*bn, path, vip, addrOk, fwdOk);
    }
    if (sizeOk && !vip.backends.empty() && vip.maglev_table_size <= vip.backends.size()) {
      std::string msg = "must be larger than the number of backends (" +
                        std::to_string(vip.backends.size()) + ")";
      if (sizeNode != nullptr)
        report(*sizeNode, child(path, "maglev_table_size"), msg);
      else
        report(t, child(path, "maglev_table_size"), msg + "; the default is 65537");
    }

    bool duplicate = false;
    if (addrOk && portOk && protoOk) {
      std::string key = vip.address.str() + "|" + std::to_string(vip.port) + "|" +
                        std::string(toString(vip.protocol));
      if (auto [it, fresh] = keys.emplace(key, index); !fresh) {
        report(t, path, "duplicate of " + element("vips", it->second) +
                            " (same address, port and protocol)");
        duplicate = true;
      }
    }

    const toml::node* nameNode = t.get("name");
    if (nameNode != nullptr) {
      const std::string p = child(path, "name");
      if (auto x = string(*nameNode, p)) {
        if (x->empty())
          report(*nameNode, p, "must not be empty");
        else
          vip.name = *x;
      }
    } else if (addrOk) {
      std::string a = vip.address.isV4() ? vip.address.str() : "[" + vip.address.str() + "]";
      vip.name = a + ":" + std::to_string(vip.port) + "/" + std::string(toString(vip.protocol));
    }
    // Names label metrics and log lines, so two VIPs must not share one. A duplicate VIP's
    // default name necessarily clashes too; that says nothing new.
    if (!vip.name.empty() && !(duplicate && nameNode == nullptr)) {
      if (auto [it, fresh] = names.emplace(vip.name, index); !fresh) {
        const std::string p = child(path, "name");
        std::string msg = quote(vip.name) + " is already used by " + element("vips", it->second);
        if (nameNode != nullptr)
          report(*nameNode, p, msg);
        else
          report(t, p, msg);
      }
    }
    config_.vips.push_back(std::move(vip));
  }

  void loadBackends(const toml::node& n, const std::string& vipPath, VipConfig& vip, bool addrOk,
                    bool fwdOk) {
    const std::string path = child(vipPath, "backends");
    auto tables = tableArray(n, path, "[[vips.backends]]");
    if (n.is_array() && tables.empty()) {
      report(n, path, "a VIP needs at least one backend");
      return;
    }
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < tables.size(); i++) {
      if (tables[i] == nullptr) continue;
      const toml::table& t = *tables[i];
      const std::string bpath = element(path, i);
      BackendConfig be;
      checkKeys(t, bpath, kBackendKeys);

      bool beAddrOk = false, bePortOk = true;
      if (auto* v = t.get("address")) {
        const std::string p = child(bpath, "address");
        auto a = address(*v, p);
        beAddrOk = a.has_value();
        if (a) be.address = *a;
        // DSR rewrites only the MAC and NAT only addresses of the same family; crossing families
        // needs an outer header of the backend's family (RFC 2473 / GUE).
        if (a && addrOk && fwdOk && !tunnels(vip.forwarding) && a->family != vip.address.family) {
          report(*v, p, std::string(familyName(*a)) + " backend for an " +
                            std::string(familyName(vip.address)) +
                            " VIP needs forwarding ipip or gue");
        }
      } else {
        report(t, child(bpath, "address"), "is required");
      }
      if (auto* v = t.get("port")) {
        const std::string p = child(bpath, "port");
        auto x = integer(*v, p, 0, 65535);
        bePortOk = x.has_value();
        if (x) be.port = static_cast<uint16_t>(*x);
        if (x && *x != 0 && fwdOk && vip.forwarding != FwdMode::Nat) {
          // Only NAT rewrites the L4 header; the other modes deliver the packet unchanged.
          report(*v, p, "a nonzero backend port needs forwarding nat");
          bePortOk = false;
        }
      }
      if (auto* v = t.get("weight")) {
        if (auto x = integer(*v, child(bpath, "weight"), 1, 65535))
          be.weight = static_cast<uint32_t>(*x);
      }
      if (auto* v = t.get("mac")) be.mac = mac(*v, child(bpath, "mac"));
      if (auto* v = t.get("via")) {
        const std::string p = child(bpath, "via");
        if (auto x = string(*v, p)) {
          be.via = *x;
          checkVia(*v, p, *x);
        }
      }
      if (beAddrOk && bePortOk) {
        std::string key = be.address.str() + "|" + std::to_string(be.port);
        if (auto [it, fresh] = seen.emplace(key, i); !fresh)
          report(t, bpath, "duplicate of " + element(path, it->second) + " (same address and port)");
      }
      vip.backends.push_back(std::move(be));
    }
  }

  void checkVia(const toml::node& n, const std::string& path, const std::string& name) {
    std::vector<std::string_view> portNames;
    for (auto& p : config_.ports) {
      if (p.name == name) return;
      if (!p.name.empty()) portNames.push_back(p.name);
    }
    std::string msg = "no port named " + quote(name);
    if (auto s = closest(name, portNames); !s.empty()) msg += ", did you mean " + quote(s) + "?";
    report(n, path, msg);
  }

  std::string name_;
  toml::table root_;
  Config config_;
  std::vector<Diag> diags_;
};

// Reads with open/read rather than streams so the message carries the real errno.
std::optional<std::string> readFile(const std::string& path, int& err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

ConfigResult loadConfigString(std::string_view toml, const std::string& name) {
  return Loader(name).run(toml);
}

ConfigResult loadConfigFile(const std::string& path) {
  ConfigResult r;
  try {
    int err = 0;
    auto text = readFile(path, err);
    if (!text) {
      r.error.messages.push_back(path + ": cannot read: " + std::strerror(err));
      return r;
    }
    return loadConfigString(*text, path);
  } catch (const std::exception& e) {
    r.error.messages.push_back(path + ": internal error: " + e.what());
    return r;
  }
}

}  // namespace l4lb::control
