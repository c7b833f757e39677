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
#include <tuple>
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

constexpr std::string_view kRootKeys[] = {"eal", "flow_table", "ports", "neighbours", "vips",
                                         "health", "control", "metrics", "log"};
constexpr std::string_view kControlKeys[] = {"socket", "mode"};
constexpr std::string_view kMetricsKeys[] = {"listen"};
constexpr std::string_view kLogKeys[] = {"level"};
constexpr std::string_view kLogLevels[] = {"debug", "info", "warning", "error"};
constexpr std::string_view kEalKeys[] = {"main_core", "worker_cores", "hugepages", "memory_mb",
                                         "in_memory", "file_prefix", "extra_args"};
constexpr std::string_view kFlowTableKeys[] = {"capacity", "tcp_syn_timeout",
                                               "tcp_established_timeout", "tcp_fin_timeout",
                                               "udp_timeout"};
constexpr std::string_view kPortKeys[] = {"name",     "device",         "queues",       "mtu",
                                          "mac",      "ipv4",           "ipv6",         "gateway4",
                                          "gateway6", "exception_path", "kernel_iface", "xdp_program"};
constexpr std::string_view kNeighbourKeys[] = {"address", "mac"};
constexpr std::string_view kVipKeys[] = {"name",           "address",           "port",
                                         "protocol",       "scheduler",         "forwarding",
                                         "maglev_table_size", "tunnel_source4", "tunnel_source6",
                                         "gue_port",       "on_all_down",    "health_check",
                                         "backends"};
constexpr std::string_view kBackendKeys[] = {"address", "port", "weight", "mac", "via",
                                             "health_check"};
constexpr std::string_view kHealthCheckKeys[] = {
    "type",      "interval_ms", "timeout_ms",  "rise",        "fall",
    "max_latency_ms", "jitter_pct", "port",   "http_path",   "http_host",
    "http_expect", "udp_payload", "udp_expect"};
constexpr std::string_view kHealthGlobalKeys[] = {"source4", "source6"};

constexpr std::string_view kProtoNames[] = {"tcp", "udp"};
constexpr std::string_view kSchedulerNames[] = {"maglev", "source_hash", "round_robin",
                                                "weighted_round_robin"};
constexpr std::string_view kFwdModeNames[] = {"dsr", "ipip", "gue", "nat"};
constexpr std::string_view kExceptionPathNames[] = {"none", "tap", "xdp"};
constexpr std::string_view kAllDownNames[] = {"drop", "keep"};
constexpr std::string_view kHealthTypeNames[] = {"none", "tcp", "http", "udp"};

constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
constexpr int64_t kMinFlowCapacity = 1024;
constexpr int64_t kMaxFlowCapacity = int64_t{1} << 27;
constexpr int64_t kMinMaglevSize = 7;
constexpr int64_t kMaxMaglevSize = 16777213;  // largest prime below 2^24
constexpr double kMaxTimeoutSeconds = 86400;
constexpr int64_t kMaxPortQueues = 64;
constexpr size_t kMaxPortNameLen = 32;
// Linux IFNAMSIZ (16) including the terminating NUL.
constexpr size_t kMaxIfaceNameLen = 15;
constexpr int64_t kMaxHealthIntervalMs = 3'600'000;
constexpr int64_t kMinHealthIntervalMs = 10;
constexpr int64_t kMaxHealthThreshold = 100;
constexpr int64_t kMaxJitterPct = 50;
// One datagram that fits any path's MTU after IPv6 + UDP headers (RFC 8200 minimum MTU 1280).
constexpr size_t kMaxUdpPayload = 1024;
constexpr size_t kMaxHttpPathLen = 1024;
constexpr size_t kMaxHttpHostLen = 255;
constexpr int kMinHttpStatus = 100;
constexpr int kMaxHttpStatus = 599;
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

// types.h only carries the enums the data plane shares; these three are control-plane only.
std::optional<ExceptionPath> parseExceptionPath(std::string_view s) {
  if (s == "none") return ExceptionPath::None;
  if (s == "tap") return ExceptionPath::Tap;
  if (s == "xdp") return ExceptionPath::Xdp;
  return std::nullopt;
}

std::optional<AllDownPolicy> parseAllDown(std::string_view s) {
  if (s == "drop") return AllDownPolicy::Drop;
  if (s == "keep") return AllDownPolicy::Keep;
  return std::nullopt;
}

std::optional<HealthType> parseHealthType(std::string_view s) {
  if (s == "none") return HealthType::None;
  if (s == "tcp") return HealthType::Tcp;
  if (s == "http") return HealthType::Http;
  if (s == "udp") return HealthType::Udp;
  return std::nullopt;
}

// What the kernel accepts as an interface name (dev_valid_name): no '/', ':' or whitespace. We
// are stricter and allow only characters that need no quoting in ip(8) commands and logs.
bool isIfaceName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxIfaceNameLen && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) { return isNameChar(c) || c == '.'; });
}

// Visible ASCII only: the value is copied into an HTTP/1.1 request line or header
// (RFC 9112 §3.2 request-target, RFC 9110 §7.2 Host), where a space or CR/LF would split it.
bool isVisibleAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The value of `key=` in a devargs string "driver,key=value,key=value".
std::optional<std::string> devarg(std::string_view device, std::string_view key) {
  size_t pos = device.find(',');
  while (pos != std::string_view::npos) {
    size_t start = pos + 1;
    size_t end = device.find(',', start);
    std::string_view kv = device.substr(start, end == std::string_view::npos ? end : end - start);
    if (kv.size() > key.size() && startsWith(kv, key) && kv[key.size()] == '=')
      return std::string(kv.substr(key.size() + 1));
    pos = end;
  }
  return std::nullopt;
}

// Parses "200", or "200-399"; both ends inside kMinHttpStatus..kMaxHttpStatus, lo <= hi.
std::optional<std::pair<uint16_t, uint16_t>> parseStatusRange(std::string_view s) {
  auto number = [](std::string_view d) -> std::optional<int> {
    if (d.size() != 3 || !std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    int v = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    if (v < kMinHttpStatus || v > kMaxHttpStatus) return std::nullopt;
    return v;
  };
  size_t dash = s.find('-');
  auto lo = number(s.substr(0, dash));
  auto hi = dash == std::string_view::npos ? lo : number(s.substr(dash + 1));
  if (!lo || !hi || *lo > *hi) return std::nullopt;
  return std::pair(static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi));
}

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
    loadHealthGlobal(root);
    loadOperator(root);
    loadVips(root);
  }

  // [control], [metrics], [log]: the operator interface.
  void loadOperator(const toml::table& root) {
    if (const toml::node* n = root.get("control"))
      if (const toml::table* t = asTable(*n, "control")) {
        checkKeys(*t, "control", kControlKeys);
        if (auto* v = t->get("socket"))
          if (auto x = string(*v, "control.socket")) {
            if (!x->empty() && (*x)[0] != '/') report(*v, "control.socket", "must be an absolute path (or \"\" to disable)");
            else if (x->size() >= 108) report(*v, "control.socket", "must be shorter than 108 bytes (sun_path)");
            else config_.control.socket = *x;
          }
        if (auto* v = t->get("mode"))
          if (auto x = string(*v, "control.mode")) {
            // A string of octal digits as chmod takes it ("0600"): TOML's 0o600 is easy to
            // mistype as decimal 600.
            bool ok = !x->empty() && x->size() <= 4 &&
                      std::all_of(x->begin(), x->end(), [](char c) { return c >= '0' && c <= '7'; });
            uint32_t m = ok ? uint32_t(std::stoul(*x, nullptr, 8)) : 0;
            if (!ok || m > 0777) report(*v, "control.mode", "must be octal permission bits such as \"0600\" (got " + quote(*x) + ")");
            else if (m & 0111) report(*v, "control.mode", "must not contain execute bits (got " + quote(*x) + ")");
            else config_.control.mode = m;
          }
      }
    if (const toml::node* n = root.get("metrics"))
      if (const toml::table* t = asTable(*n, "metrics")) {
        checkKeys(*t, "metrics", kMetricsKeys);
        if (auto* v = t->get("listen"))
          if (auto x = string(*v, "metrics.listen")) {
            if (!x->empty() && !parseListenAddr(*x))
              report(*v, "metrics.listen", "must be \"ADDR:PORT\", \"[ADDR6]:PORT\" or \"\" (got " + quote(*x) + ")");
            else config_.metrics.listen = *x;
          }
      }
    if (auto l = parseListenAddr(config_.metrics.listen)) {
      config_.metrics.addr = l->first;
      config_.metrics.port = l->second;
    }
    if (const toml::node* n = root.get("log"))
      if (const toml::table* t = asTable(*n, "log")) {
        checkKeys(*t, "log", kLogKeys);
        if (auto* v = t->get("level"))
          if (auto x = string(*v, "log.level")) {
            if (std::find(std::begin(kLogLevels), std::end(kLogLevels), *x) == std::end(kLogLevels))
              report(*v, "log.level", "must be one of debug, info, warning, error (got " + quote(*x) + ")");
            else config_.log.level = *x;
          }
      }
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
      loadExceptionPath(t, path, port);
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

  // exception_path, kernel_iface, xdp_program (config.h, ExceptionPath).
  void loadExceptionPath(const toml::table& t, const std::string& path, PortConfig& port) {
    const toml::node* modeNode = t.get("exception_path");
    bool modeOk = true;
    if (modeNode != nullptr) {
      auto x = enumValue<ExceptionPath>(*modeNode, child(path, "exception_path"),
                                        parseExceptionPath, kExceptionPathNames);
      if (x) port.exception_path = *x;
      modeOk = x.has_value();
    }

    const toml::node* ifaceNode = t.get("kernel_iface");
    const std::string ifacePath = child(path, "kernel_iface");
    std::optional<std::string> iface;
    if (ifaceNode != nullptr) {
      if (auto x = string(*ifaceNode, ifacePath)) {
        if (!isIfaceName(*x))
          report(*ifaceNode, ifacePath,
                 "must be 1..15 characters from A-Z a-z 0-9 _ - . (a Linux interface name)");
        else if (modeOk && port.exception_path == ExceptionPath::None)
          report(*ifaceNode, ifacePath, "only allowed with exception_path tap or xdp");
        else
          iface = *x;
      }
    }

    if (auto* v = t.get("xdp_program")) {
      const std::string p = child(path, "xdp_program");
      if (auto x = string(*v, p)) {
        if (x->empty())
          report(*v, p, "must not be empty (omit it for the program installed with l4lb)");
        else if (modeOk && port.exception_path != ExceptionPath::Xdp)
          report(*v, p, "only allowed with exception_path xdp");
        else
          port.xdp_program = *x;
      }
    }

    if (!modeOk) return;
    const toml::node& at = modeNode != nullptr ? *modeNode : static_cast<const toml::node&>(t);
    const std::string modePath = child(path, "exception_path");
    switch (port.exception_path) {
      case ExceptionPath::None:
        break;
      case ExceptionPath::Tap:
        if (startsWith(port.device, "net_tap")) {
          // The device is already a kernel interface; a second TAP in front of it would loop.
          report(at, modePath, "tap cannot be used on a net_tap device (" + quote(port.device) +
                                   " is already a kernel interface)");
        } else if (iface) {
          port.kernel_iface = *iface;
        } else if (!port.name.empty()) {
          std::string def = "l4lb-" + port.name;
          if (def.size() > kMaxIfaceNameLen)
            report(at, ifacePath, "the default " + quote(def) +
                                      " is longer than 15 characters; set kernel_iface");
          else
            port.kernel_iface = def;
        }
        break;
      case ExceptionPath::Xdp: {
        if (port.device.empty()) break;  // already reported
        if (!startsWith(port.device, "net_af_xdp")) {
          report(at, modePath, "xdp needs a net_af_xdp device (got " + quote(port.device) + ")");
          break;
        }
        auto devIface = devarg(port.device, "iface");
        if (!devIface || devIface->empty()) {
          report(at, modePath, "xdp needs an iface= argument in device " + quote(port.device));
          break;
        }
        if (iface && *iface != *devIface) {
          report(*ifaceNode, ifacePath, "must match the device's iface= (" + quote(*devIface) +
                                            ") with exception_path xdp");
          break;
        }
        port.kernel_iface = *devIface;
        break;
      }
    }
  }

  // The keys one [vips.health_check] or [vips.backends.health_check] table set, so that checks
  // across keys report at the table that caused them and only once.
  struct HealthKeys {
    std::map<std::string_view, const toml::node*> set;  // keys present and valid
    bool failed = false;                                // some key was present and invalid
    const toml::node* get(std::string_view k) const {
      auto it = set.find(k);
      return it == set.end() ? nullptr : it->second;
    }
  };

  // Applies the keys of one health_check table on top of `cfg` (the VIP's check for a backend,
  // the defaults for a VIP): key by key, so a backend can override just its port.
  HealthKeys readHealth(const toml::table& t, const std::string& path, HealthCheckConfig& cfg) {
    HealthKeys keys;
    checkKeys(t, path, kHealthCheckKeys);
    auto note = [&](std::string_view k, const toml::node& n, bool ok) {
      if (ok)
        keys.set[k] = &n;
      else
        keys.failed = true;
    };
    if (auto* v = t.get("type")) {
      auto x = enumValue<HealthType>(*v, child(path, "type"), parseHealthType, kHealthTypeNames);
      if (x) cfg.type = *x;
      note("type", *v, x.has_value());
    }
    const std::tuple<std::string_view, uint32_t*, int64_t, int64_t> numbers[] = {
        {"interval_ms", &cfg.interval_ms, kMinHealthIntervalMs, kMaxHealthIntervalMs},
        {"timeout_ms", &cfg.timeout_ms, 1, kMaxHealthIntervalMs},
        {"rise", &cfg.rise, 1, kMaxHealthThreshold},
        {"fall", &cfg.fall, 1, kMaxHealthThreshold},
        {"max_latency_ms", &cfg.max_latency_ms, 0, kMaxHealthIntervalMs},
        {"jitter_pct", &cfg.jitter_pct, 0, kMaxJitterPct},
    };
    for (auto [key, field, lo, hi] : numbers) {
      if (auto* v = t.get(key)) {
        auto x = integer(*v, child(path, key), lo, hi);
        if (x) *field = static_cast<uint32_t>(*x);
        note(key, *v, x.has_value());
      }
    }
    if (auto* v = t.get("port")) {
      auto x = integer(*v, child(path, "port"), 0, 65535);
      if (x) cfg.port = static_cast<uint16_t>(*x);
      note("port", *v, x.has_value());
    }
    if (auto* v = t.get("http_path")) {
      const std::string p = child(path, "http_path");
      auto x = string(*v, p);
      bool ok = x && !x->empty() && (*x)[0] == '/' && x->size() <= kMaxHttpPathLen &&
                isVisibleAscii(*x);
      if (x && !ok)
        report(*v, p, "must start with \"/\" and be at most 1024 visible ASCII characters (no "
                      "spaces)");
      if (ok) cfg.http_path = *x;
      note("http_path", *v, ok);
    }
    if (auto* v = t.get("http_host")) {
      const std::string p = child(path, "http_host");
      auto x = string(*v, p);
      bool ok = x && !x->empty() && x->size() <= kMaxHttpHostLen && isVisibleAscii(*x);
      if (x && !ok) report(*v, p, "must be 1..255 visible ASCII characters (no spaces)");
      if (ok) cfg.http_host = *x;
      note("http_host", *v, ok);
    }
    if (auto* v = t.get("http_expect")) {
      auto x = statusRanges(*v, child(path, "http_expect"));
      if (x) cfg.http_expect = std::move(*x);
      note("http_expect", *v, x.has_value());
    }
    if (auto* v = t.get("udp_payload")) {
      const std::string p = child(path, "udp_payload");
      auto x = string(*v, p);
      bool ok = x && !x->empty() && x->size() <= kMaxUdpPayload;
      if (x && !ok) report(*v, p, "must be 1..1024 bytes");
      if (ok) cfg.udp_payload = *x;
      note("udp_payload", *v, ok);
    }
    if (auto* v = t.get("udp_expect")) {
      const std::string p = child(path, "udp_expect");
      auto x = string(*v, p);
      bool ok = x && x->size() <= kMaxUdpPayload;
      if (x && !ok) report(*v, p, "must be at most 1024 bytes");
      if (ok) cfg.udp_expect = *x;
      note("udp_expect", *v, ok);
    }
    return keys;
  }

  std::optional<std::vector<std::pair<uint16_t, uint16_t>>> statusRanges(const toml::node& n,
                                                                         const std::string& path) {
    auto* arr = n.as_array();
    if (arr == nullptr) {
      report(n, path, "must be an array of status codes and ranges like \"200-399\"");
      return std::nullopt;
    }
    if (arr->empty()) {
      report(n, path, "must not be empty (omit it to accept 200-299)");
      return std::nullopt;
    }
    std::vector<std::pair<uint16_t, uint16_t>> out;
    bool ok = true;
    for (size_t i = 0; i < arr->size(); i++) {
      const toml::node& e = *arr->get(i);
      const std::string p = element(path, i);
      if (e.is_integer()) {
        auto x = integer(e, p, kMinHttpStatus, kMaxHttpStatus);
        if (x) out.emplace_back(static_cast<uint16_t>(*x), static_cast<uint16_t>(*x));
        ok = ok && x.has_value();
      } else if (auto* str = e.as_string()) {
        auto r = parseStatusRange(str->get());
        if (r)
          out.push_back(*r);
        else
          report(e, p, "must be a status code or a range like \"200-399\" within 100..599 (got " +
                           quote(str->get()) + ")");
        ok = ok && r.has_value();
      } else {
        report(e, p, "must be an integer or a string like \"200-399\"");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // Checks across keys of an effective check; reports at the keys `keys` set, so a backend that
  // only inherits a problem from its VIP does not repeat the VIP's message.
  void validateHealth(const HealthCheckConfig& cfg, const HealthKeys& keys, const std::string& path) {
    if (keys.failed) return;  // one message per mistake
    const toml::node* interval = keys.get("interval_ms");
    const toml::node* timeout = keys.get("timeout_ms");
    const toml::node* latency = keys.get("max_latency_ms");
    if (cfg.timeout_ms > cfg.interval_ms) {
      // A probe still running when the next one is due would overlap it.
      if (timeout != nullptr)
        report(*timeout, child(path, "timeout_ms"),
               "must be 1..interval_ms (" + std::to_string(cfg.interval_ms) + ")");
      else if (interval != nullptr)
        report(*interval, child(path, "interval_ms"),
               "must be >= timeout_ms (" + std::to_string(cfg.timeout_ms) + ")");
    } else if (cfg.max_latency_ms > cfg.timeout_ms) {
      // A reply slower than the timeout is a timeout: the threshold could never apply.
      std::string bound = std::to_string(cfg.max_latency_ms);
      if (latency != nullptr)
        report(*latency, child(path, "max_latency_ms"),
               "must be 0 or 1..timeout_ms (" + std::to_string(cfg.timeout_ms) + ")");
      else if (timeout != nullptr)
        report(*timeout, child(path, "timeout_ms"), "must be >= max_latency_ms (" + bound + ")");
      else if (interval != nullptr)
        report(*interval, child(path, "interval_ms"),
               "must be >= max_latency_ms (" + bound + ") (the timeout defaults to the interval "
               "when shorter than 1000 ms)");
    }
    constexpr std::string_view kHttpOnly[] = {"http_path", "http_host", "http_expect"};
    constexpr std::string_view kUdpOnly[] = {"udp_payload", "udp_expect"};
    for (auto k : kHttpOnly) {
      if (auto* n = keys.get(k); n != nullptr && cfg.type != HealthType::Http)
        report(*n, child(path, k), "only allowed with type http");
    }
    for (auto k : kUdpOnly) {
      if (auto* n = keys.get(k); n != nullptr && cfg.type != HealthType::Udp)
        report(*n, child(path, k), "only allowed with type udp");
    }
  }

  // Without an explicit timeout_ms anywhere, a short interval shortens the default timeout
  // rather than making the pair invalid.
  static void defaultTimeout(HealthCheckConfig& cfg, bool explicitTimeout) {
    if (!explicitTimeout) cfg.timeout_ms = std::min(HealthCheckConfig{}.timeout_ms, cfg.interval_ms);
  }

  void loadHealthGlobal(const toml::table& root) {
    const toml::node* n = root.get("health");
    if (n == nullptr) return;
    const toml::table* t = asTable(*n, "health");
    if (t == nullptr) return;
    checkKeys(*t, "health", kHealthGlobalKeys);
    if (auto* v = t->get("source4")) config_.health.source4 = address(*v, "health.source4", Family::V4);
    if (auto* v = t->get("source6")) config_.health.source6 = address(*v, "health.source6", Family::V6);
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

    if (auto* v = t.get("on_all_down")) {
      auto x = enumValue<AllDownPolicy>(*v, child(path, "on_all_down"), parseAllDown, kAllDownNames);
      if (x) vip.on_all_down = *x;
    }
    bool vipTimeoutSet = false;
    if (auto* v = t.get("health_check")) {
      const std::string p = child(path, "health_check");
      if (auto* ht = asTable(*v, p)) {
        HealthKeys set = readHealth(*ht, p, vip.health);
        vipTimeoutSet = set.get("timeout_ms") != nullptr;
        defaultTimeout(vip.health, vipTimeoutSet);
        validateHealth(vip.health, set, p);
      }
    }

    const toml::node* bn = t.get("backends");
    if (bn == nullptr) {
      report(t, child(path, "backends"), "a VIP needs at least one backend");
    } else {
      loadBackends(*bn, path, vip, addrOk, fwdOk, portOk, vipTimeoutSet);
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
                    bool fwdOk, bool vipPortOk, bool vipTimeoutSet) {
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
        if (auto x = integer(*v, child(bpath, "weight"), 0, 65535))
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
      loadBackendHealth(t, bpath, be, vip, vipPortOk && bePortOk, vipTimeoutSet);
      if (beAddrOk && bePortOk) {
        std::string key = be.address.str() + "|" + std::to_string(be.port);
        if (auto [it, fresh] = seen.emplace(key, i); !fresh)
          report(t, bpath, "duplicate of " + element(path, it->second) + " (same address and port)");
      }
      vip.backends.push_back(std::move(be));
    }
  }

  // BackendConfig::health: the VIP's check with this backend's [vips.backends.health_check]
  // keys on top.
  void loadBackendHealth(const toml::table& t, const std::string& bpath, BackendConfig& be,
                         const VipConfig& vip, bool portsOk, bool vipTimeoutSet) {
    be.health = vip.health;
    const std::string p = child(bpath, "health_check");
    const toml::node* hn = t.get("health_check");
    const toml::table* ht = hn != nullptr ? asTable(*hn, p) : nullptr;
    if (hn != nullptr && ht == nullptr) return;
    HealthKeys keys;
    if (ht != nullptr) {
      keys = readHealth(*ht, p, be.health);
      defaultTimeout(be.health, vipTimeoutSet || keys.get("timeout_ms") != nullptr);
      validateHealth(be.health, keys, p);
    }
    if (keys.failed || !portsOk) return;
    if (be.health.type != HealthType::None && be.health.port == 0 && be.port == 0 && vip.port == 0) {
      const toml::node& at = ht != nullptr ? static_cast<const toml::node&>(*ht) : t;
      report(at, child(p, "port"), "is required: the backend's and the VIP's port are 0");
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

namespace l4lb::control {

std::optional<std::pair<IpAddr, uint16_t>> parseListenAddr(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + uint32_t(c - '0');
  }
  if (p == 0 || p > 65535) return std::nullopt;
  auto a = IpAddr::parse(host);
  if (!a || (s[0] == '[') == a->isV4()) return std::nullopt;
  return std::make_pair(*a, uint16_t(p));
}

}  // namespace l4lb::control
