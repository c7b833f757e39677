// The schema of the sections other than [[vips]] (config_vips.cc): keys, ranges, checks across
// keys. Every key is read with TableReader::get, which is what makes it a known key.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "control/config_schema.h"
#include "control/log.h"
#include "control/memory_estimate.h"
#include "dataplane/idle_backoff.h"

namespace l4lb::control {

using reader::child;
using reader::element;
using reader::quote;

namespace {

constexpr int64_t kMinFlowCapacity = 1024;
constexpr int64_t kMaxFlowCapacity = int64_t{1} << 27;
constexpr int64_t kMaxPortQueues = 64;
constexpr int64_t kMinMtu = 68;  // RFC 791: every IPv4 host must forward a 68-byte datagram
constexpr int64_t kMaxMtu = 9000;
constexpr size_t kMaxPortNameLen = 32;
// Linux IFNAMSIZ (16) including the terminating NUL.
constexpr size_t kMaxIfaceNameLen = 15;
// sockaddr_un::sun_path, including the terminating NUL.
constexpr size_t kSunPathLen = 108;

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool isNameString(std::string_view s) { return std::all_of(s.begin(), s.end(), isNameChar); }

bool isPortName(const std::string& s) { return !s.empty() && s.size() <= kMaxPortNameLen && isNameString(s); }

bool isNonEmpty(const std::string& s) { return !s.empty(); }

// What the kernel accepts as an interface name (dev_valid_name): no '/', ':' or whitespace. We
// are stricter and allow only characters that need no quoting in ip(8) commands and logs.
bool isIfaceName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxIfaceNameLen && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) { return isNameChar(c) || c == '.'; });
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

}  // namespace

void ConfigSchema::load(const toml::table& root) {
  TableReader t(r_, root, "");
  // Asked in the order the sections are documented: a misspelt section's suggestion prefers the
  // first of two equally close names.
  const Field eal = t.get("eal");
  const Field flowTable = t.get("flow_table");
  const Field icmp = t.get("icmp");
  const Field fragments = t.get("fragments");
  const Field ports = t.get("ports");
  const Field neighbours = t.get("neighbours");
  const Field vips = t.get("vips");
  const Field health = t.get("health");
  const Field control = t.get("control");
  const Field metrics = t.get("metrics");
  const Field log = t.get("log");
  const Field sync = t.get("sync");
  const Field cluster = t.get("cluster");
  const Field bgp = t.get("bgp");
  loadEal(eal, root);
  if (flowTable) loadFlowTable(flowTable);
  if (icmp) loadIcmp(icmp);
  if (fragments) loadFragments(fragments);
  loadPorts(ports, root);
  loadNeighbours(neighbours);
  loadHealthGlobal(health);
  loadOperator(control, metrics, log);
  loadVips(vips, root);
  if (sync) loadSync(sync);
  loadCluster(cluster);
  if (bgp) loadBgp(bgp);
  if (!r_.failed()) checkMemory(eal, flowTable);
}

// The flow tables and pools must fit the EAL's memory (memory_estimate.h): reported at
// flow_table.capacity, else at eal.memory_mb, else at [eal].
void ConfigSchema::checkMemory(const Field& eal, const Field& flowTable) {
  const std::string msg = memoryRefusal(config_);
  if (msg.empty()) return;
  auto at = [](const Field& table, std::string_view key) -> const toml::node* {
    return table && table->is_table() ? table->as_table()->get(key) : nullptr;
  };
  if (const toml::node* n = at(flowTable, "capacity")) r_.report(*n, child(flowTable.path, "capacity"), msg);
  else if (const toml::node* m = at(eal, "memory_mb")) r_.report(*m, child(eal.path, "memory_mb"), msg);
  else r_.report(*eal, eal.path, msg);
}

// [cluster] name: logs, metrics and `l4lbctl cluster` name the balancer by it.
void ConfigSchema::loadCluster(const Field& f) {
  constexpr size_t kMaxClusterName = 64;
  if (f)
    if (const toml::table* tt = r_.table(f)) {
      TableReader t(r_, *tt, f.path);
      if (Field v = t.get("name"))
        if (auto x = r_.string(v)) {
          if (x->empty() || x->size() > kMaxClusterName ||
              !std::all_of(x->begin(), x->end(), [](char c) { return isNameChar(c) || c == '.'; }))
            r_.report(v, "must be 1..64 characters from A-Z a-z 0-9 _ - . (got " + quote(*x) + ")");
          else
            config_.cluster.name = *x;
        }
    }
  if (config_.cluster.name.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0) config_.cluster.name = host;
    if (config_.cluster.name.empty()) config_.cluster.name = "l4lb";
  }
}

// [bgp]: what the announcer (control/bgp/announcer.h) writes for BIRD and when. Runs after
// [[vips]]: announce names VIPs.
void ConfigSchema::loadBgp(const Field& f) {
  TableReader t(r_, f);
  if (!t) return;
  BgpConfig& bgp = config_.bgp;
  bgp.enabled = true;
  auto absolutePath = [&](const Field& v, std::string& out, size_t max) {
    auto x = r_.string(v);
    if (!x) return;
    if (x->empty() || (*x)[0] != '/') r_.report(v, "must be an absolute path (got " + quote(*x) + ")");
    else if (x->back() == '/') r_.report(v, "must name a file, not a directory (got " + quote(*x) + ")");
    else if (x->size() >= max) r_.report(v, "must be shorter than " + std::to_string(max) + " bytes");
    else out = *x;
  };
  if (Field v = t.get("bird_socket")) absolutePath(v, bgp.bird_socket, kSunPathLen);
  if (Field v = t.get("include_file")) absolutePath(v, bgp.include_file, 4096);
  if (Field v = t.get("announce")) {
    if (auto* arr = v->as_array()) {
      std::set<std::string> names, seen;
      for (const VipConfig& vip : config_.vips) names.insert(vip.name);
      bgp.announce_all = false;
      for (size_t i = 0; i < arr->size(); i++) {
        const Field e{arr->get(i), element(v.path, i)};
        auto x = r_.string(e);
        if (!x) continue;
        if (!names.count(*x))
          r_.report(e, "no VIP is named " + quote(*x));
        else if (!seen.insert(*x).second)
          r_.report(e, quote(*x) + " is listed twice");
        else
          bgp.announce.push_back(*x);
      }
    } else {
      r_.report(v, "must be an array of VIP names");
    }
  }
  auto nextHop = [&](const Field& v, Family family, std::optional<IpAddr>& out) {
    auto a = r_.address(v, family);
    if (!a) return;
    // Unspecified (0.0.0.0, ::) or multicast (224/4, ff00::/8) cannot be a next hop.
    const uint8_t b0 = a->bytes[0];
    const bool unspecified = std::all_of(a->bytes.begin(), a->bytes.begin() + (a->isV4() ? 4 : 16),
                                         [](uint8_t b) { return b == 0; });
    if (unspecified || (a->isV4() ? (b0 & 0xf0) == 0xe0 : b0 == 0xff))
      r_.report(v, "must be a unicast address (got " + a->str() + ")");
    else
      out = a;
  };
  if (Field v = t.get("next_hop4")) nextHop(v, Family::V4, bgp.next_hop4);
  if (Field v = t.get("next_hop6")) nextHop(v, Family::V6, bgp.next_hop6);
  if (Field v = t.get("withdraw_when_down"))
    if (auto x = r_.boolean(v)) bgp.withdraw_when_down = *x;
  if (Field v = t.get("drain_time")) {
    // 0 is allowed (withdraw, then stop at once), unlike the other durations.
    double sec = -1;
    if (auto* i = v->as_integer()) sec = double(i->get());
    else if (auto* d = v->as_floating_point()) sec = d->get();
    if (!(sec >= 0 && sec <= 3600)) r_.report(v, "must be a number of seconds, 0..3600");
    else bgp.drain_time_ms = uint32_t(std::round(sec * 1000));
  }
}

// [control], [metrics], [log]: the operator interface.
void ConfigSchema::loadOperator(const Field& control, const Field& metrics, const Field& log) {
  if (control)
    if (const toml::table* tt = r_.table(control)) {
      TableReader t(r_, *tt, control.path);
      if (Field v = t.get("socket"))
        if (auto x = r_.string(v)) {
          if (!x->empty() && (*x)[0] != '/') r_.report(v, "must be an absolute path (or \"\" to disable)");
          else if (x->size() >= kSunPathLen) r_.report(v, "must be shorter than 108 bytes (sun_path)");
          else config_.control.socket = *x;
        }
      if (Field v = t.get("mode"))
        if (auto x = r_.string(v)) {
          // A string of octal digits as chmod takes it ("0600"): TOML's 0o600 is easy to
          // mistype as decimal 600.
          bool ok = !x->empty() && x->size() <= 4 &&
                    std::all_of(x->begin(), x->end(), [](char c) { return c >= '0' && c <= '7'; });
          uint32_t m = ok ? uint32_t(std::stoul(*x, nullptr, 8)) : 0;
          if (!ok || m > 0777) r_.report(v, "must be octal permission bits such as \"0600\" (got " + quote(*x) + ")");
          else if (m & 0111) r_.report(v, "must not contain execute bits (got " + quote(*x) + ")");
          else config_.control.mode = m;
        }
    }
  if (metrics)
    if (const toml::table* tt = r_.table(metrics)) {
      TableReader t(r_, *tt, metrics.path);
      if (Field v = t.get("listen"))
        if (auto x = r_.string(v)) {
          if (!x->empty() && !parseListenAddr(*x))
            r_.report(v, "must be \"ADDR:PORT\", \"[ADDR6]:PORT\" or \"\" (got " + quote(*x) + ")");
          else config_.metrics.listen = *x;
        }
    }
  if (auto l = parseListenAddr(config_.metrics.listen)) {
    config_.metrics.addr = l->first;
    config_.metrics.port = l->second;
  }
  if (log)
    if (const toml::table* tt = r_.table(log)) {
      TableReader t(r_, *tt, log.path);
      if (Field v = t.get("level"))
        if (auto x = r_.enumValue<LogLevel>(v)) config_.log.level = std::string(enumName(*x));
    }
}

void ConfigSchema::loadEal(const Field& f, const toml::table& root) {
  constexpr std::string_view kWorkerCores = "worker_cores";
  constexpr std::string_view kWorkersRequired = "is required (at least one worker core)";
  if (!f) {
    r_.report(root.source().begin, child(f.path, kWorkerCores), std::string(kWorkersRequired));
    return;
  }
  TableReader t(r_, f);
  if (!t) return;
  auto& eal = config_.eal;
  bool mainOk = true;
  if (Field v = t.get("main_core")) {
    auto x = r_.unsignedInt(v);
    if (x) eal.main_core = *x;
    mainOk = x.has_value();
  }
  if (Field v = t.get(kWorkerCores); v)
    loadWorkerCores(v, mainOk);
  else
    t.report(v, std::string(kWorkersRequired));
  if (Field v = t.get("hugepages")) {
    if (auto x = r_.boolean(v)) eal.hugepages = *x;
  }
  if (Field v = t.get("memory_mb")) {
    if (auto x = r_.unsignedInt(v)) eal.memory_mb = *x;
  }
  if (Field v = t.get("in_memory")) {
    if (auto x = r_.boolean(v)) eal.in_memory = *x;
    // DPDK 22.11: --no-huge implies legacy memory mode, which --in-memory rejects.
    if (eal.in_memory && !eal.hugepages)
      r_.report(v, "cannot be true with hugepages = false (EAL refuses the pair)");
  }
  if (Field v = t.get("lcores")) {
    if (auto x = r_.string(v)) {
      if (x->empty() || x->find_first_not_of("0123456789@,()-") != std::string::npos)
        r_.report(v, "must be an EAL --lcores map such as \"0@0,1@1,2@1\" (digits and @ , ( ) - only)");
      else
        eal.lcores = *x;
    }
  }
  if (Field v = t.get("file_prefix")) {
    if (auto x = r_.string(v)) {
      // It becomes a file name under /var/run/dpdk and hugetlbfs.
      if (x->empty() || !isNameString(*x))
        r_.report(v, "must be non-empty and use only A-Z a-z 0-9 _ -");
      else
        eal.file_prefix = *x;
    }
  }
  if (Field v = t.get("idle_backoff")) {
    if (auto x = r_.boolean(v)) eal.idle_backoff = *x;
  }
  if (Field v = t.get("idle_polls_before_sleep")) {
    if (auto x = r_.integer(v, 1, dataplane::kIdlePollsLimit)) eal.idle_polls_before_sleep = uint32_t(*x);
  }
  if (Field v = t.get("idle_sleep_max_us")) {
    if (auto x = r_.integer(v, dataplane::kIdleSleepMinUs, dataplane::kIdleSleepMaxUsLimit))
      eal.idle_sleep_max_us = uint32_t(*x);
  }
  if (Field v = t.get("extra_args")) {
    if (auto* arr = v->as_array()) {
      for (size_t i = 0; i < arr->size(); i++) {
        if (auto x = r_.string({arr->get(i), element(v.path, i)})) eal.extra_args.push_back(*x);
      }
    } else {
      r_.report(v, "must be an array of strings");
    }
  }
}

void ConfigSchema::loadWorkerCores(const Field& f, bool mainOk) {
  auto* arr = f->as_array();
  if (arr == nullptr) {
    r_.report(f, "must be an array of integers");
    return;
  }
  if (arr->empty()) {
    r_.report(f, "must list at least one worker core");
    return;
  }
  auto& eal = config_.eal;
  for (size_t i = 0; i < arr->size(); i++) {
    const Field e{arr->get(i), element(f.path, i)};
    auto core = r_.unsignedInt(e);
    if (!core) continue;
    std::string c = "core " + std::to_string(*core);
    if (mainOk && *core == eal.main_core)
      r_.report(e, c + " is the main core");
    else if (std::find(eal.worker_cores.begin(), eal.worker_cores.end(), *core) != eal.worker_cores.end())
      r_.report(e, c + " is listed twice");
    else
      eal.worker_cores.push_back(*core);
  }
}

void ConfigSchema::loadFlowTable(const Field& f) {
  TableReader t(r_, f);
  if (!t) return;
  auto& ft = config_.flow_table;
  if (Field v = t.get("capacity")) {
    if (auto x = r_.integer(v, kMinFlowCapacity, kMaxFlowCapacity)) ft.capacity = static_cast<uint32_t>(*x);
  }
  const std::pair<std::string_view, uint32_t*> timeouts[] = {
      {"tcp_syn_timeout", &ft.tcp_syn_timeout_ms},
      {"tcp_established_timeout", &ft.tcp_established_timeout_ms},
      {"tcp_fin_timeout", &ft.tcp_fin_timeout_ms},
      {"udp_timeout", &ft.udp_timeout_ms},
      {"udp_new_timeout", &ft.udp_new_timeout_ms},
  };
  for (auto [key, field] : timeouts) {
    if (Field v = t.get(key)) {
      if (auto x = r_.secondsAsMs(v)) *field = *x;
    }
  }
  if (Field v = t.get("embryonic_share")) {
    double x = -1;
    if (auto* i = v->as_integer()) x = double(i->get());
    else if (auto* d = v->as_floating_point()) x = d->get();
    // Written so NaN fails too; a share that rounds to 0 ppm would admit nothing.
    if (!(x > 0 && x <= 1) || std::round(x * 1e6) < 1)
      r_.report(v, "must be a number > 0 and <= 1 (the share of capacity embryonic entries may hold)");
    else
      ft.embryonic_ppm = uint32_t(std::round(x * 1e6));
  }
}

// [icmp]: the token bucket for forwarded ICMP errors (slow_path.h, dataplane/token_bucket.h).
// Both keys are per worker, used as given: the balancer's total is workers times these.
void ConfigSchema::loadIcmp(const Field& f) {
  TableReader t(r_, f);
  if (!t) return;
  auto& e = config_.icmp.errors;
  if (Field v = t.get("errors_per_second")) {  // per worker
    if (auto x = r_.integer(v, 1, kMaxIcmpErrorsPerSecond)) e.per_second = static_cast<uint32_t>(*x);
  }
  if (Field v = t.get("burst")) {  // per worker
    if (auto x = r_.integer(v, 1, kMaxIcmpErrorsPerSecond)) e.burst = static_cast<uint32_t>(*x);
  }
}

void ConfigSchema::loadFragments(const Field& f) {
  TableReader t(r_, f);
  if (!t) return;
  auto& fc = config_.fragments;
  if (Field v = t.get("timeout")) {
    if (auto x = r_.secondsAsMs(v)) {
      if (*x < 100 || *x > 60'000) r_.report(v, "must be between 0.1s and 60s");
      else fc.timeout_ms = *x;
    }
  }
  if (Field v = t.get("table_size")) {
    if (auto x = r_.integer(v, 64, 1 << 20)) fc.table_size = static_cast<uint32_t>(*x);
  }
  if (Field v = t.get("max_held")) {
    if (auto x = r_.integer(v, 0, 4096)) fc.max_held = static_cast<uint32_t>(*x);
  }
  if (Field v = t.get("max_held_per_datagram")) {
    if (auto x = r_.integer(v, 1, 64)) fc.max_held_per_datagram = static_cast<uint32_t>(*x);
  }
}

void ConfigSchema::loadPorts(const Field& f, const toml::table& root) {
  auto tables = r_.requiredTableArray(f, root, "[[ports]]", "at least one [[ports]] is required");
  std::map<std::string, size_t> names, devices;
  for (size_t i = 0; i < tables.size(); i++) {
    if (tables[i] == nullptr) continue;
    TableReader t(r_, *tables[i], element(f.path, i));
    PortConfig port;

    // name and device: required, and no two ports share one. The value is kept even when
    // invalid, so later checks do not also complain that it is missing.
    auto unique = [&](const Field& v, std::map<std::string, size_t>& seen, bool valid(const std::string&),
                      const char* invalid) -> std::string {
      if (!v) {
        t.report(v, "is required");
        return "";
      }
      auto x = r_.string(v);
      if (!x) return "";
      if (!valid(*x))
        r_.report(v, invalid);
      else if (auto [it, fresh] = seen.emplace(*x, i); !fresh)
        r_.report(v, quote(*x) + " is already used by " + element(f.path, it->second));
      return *x;
    };
    port.name = unique(t.get("name"), names, isPortName, "must be 1..32 characters from A-Z a-z 0-9 _ -");
    port.device = unique(t.get("device"), devices, isNonEmpty, "must not be empty");

    if (Field v = t.get("queues")) {
      if (auto x = r_.integer(v, 0, kMaxPortQueues)) port.queues = static_cast<uint16_t>(*x);
    }
    if (Field v = t.get("mtu")) {
      if (auto x = r_.integer(v, kMinMtu, kMaxMtu)) port.mtu = static_cast<uint16_t>(*x);
    }
    if (Field v = t.get("mac")) port.mac = r_.mac(v);
    loadPortFamily(t, port, Family::V4);
    loadPortFamily(t, port, Family::V6);
    loadExceptionPath(t, port);
    config_.ports.push_back(std::move(port));
  }
}

// ipv4 + gateway4, or ipv6 + gateway6.
void ConfigSchema::loadPortFamily(TableReader& t, PortConfig& port, Family family) {
  const bool v4 = family == Family::V4;
  const std::string prefixKey = v4 ? "ipv4" : "ipv6";
  const Field pn = t.get(prefixKey);
  const Field gn = t.get(v4 ? "gateway4" : "gateway6");
  std::optional<Prefix>& pfx = v4 ? port.ipv4 : port.ipv6;
  std::optional<IpAddr>& gw = v4 ? port.gateway4 : port.gateway6;

  if (pn) pfx = r_.prefix(pn, family);
  if (!gn) return;
  gw = r_.address(gn, family);
  if (!gw) return;
  if (!pn) {
    r_.report(gn, "needs " + prefixKey + " to be set on this port");
  } else if (pfx) {
    // A gateway must be on-link, or we could never resolve its MAC.
    if (!pfx->contains(*gw))
      r_.report(gn, gw->str() + " is not inside " + prefixKey + " " + pfx->str());
    else if (*gw == pfx->addr)
      r_.report(gn, gw->str() + " is the port's own address");
  }
}

// exception_path, kernel_iface, xdp_program (config.h, ExceptionPath).
void ConfigSchema::loadExceptionPath(TableReader& t, PortConfig& port) {
  const Field mode = t.get("exception_path");
  bool modeOk = true;
  if (mode) {
    auto x = r_.enumValue<ExceptionPath>(mode);
    if (x) port.exception_path = *x;
    modeOk = x.has_value();
  }

  const Field ifaceField = t.get("kernel_iface");
  std::optional<std::string> iface;
  if (ifaceField) {
    if (auto x = r_.string(ifaceField)) {
      if (!isIfaceName(*x))
        r_.report(ifaceField, "must be 1..15 characters from A-Z a-z 0-9 _ - . (a Linux interface name)");
      else if (modeOk && port.exception_path == ExceptionPath::None)
        r_.report(ifaceField, "only allowed with exception_path tap or xdp");
      else
        iface = *x;
    }
  }

  if (Field v = t.get("xdp_program")) {
    if (auto x = r_.string(v)) {
      if (x->empty())
        r_.report(v, "must not be empty (omit it for the program installed with l4lb)");
      else if (modeOk && port.exception_path != ExceptionPath::Xdp)
        r_.report(v, "only allowed with exception_path xdp");
      else
        port.xdp_program = *x;
    }
  }

  if (!modeOk) return;
  // Problems of the mode as a whole are reported at exception_path, or at the port's table when
  // the mode is the default.
  auto reportAt = [&](const Field& key, const std::string& msg) {
    if (mode) r_.report(*mode, key.path, msg);
    else t.report(key, msg);
  };
  switch (port.exception_path) {
    case ExceptionPath::None:
      break;
    case ExceptionPath::Tap:
      if (startsWith(port.device, "net_tap")) {
        // The device is already a kernel interface; a second TAP in front of it would loop.
        reportAt(mode, "tap cannot be used on a net_tap device (" + quote(port.device) +
                           " is already a kernel interface)");
      } else if (iface) {
        port.kernel_iface = *iface;
      } else if (!port.name.empty()) {
        std::string def = "l4lb-" + port.name;
        if (def.size() > kMaxIfaceNameLen)
          reportAt(ifaceField, "the default " + quote(def) + " is longer than 15 characters; set kernel_iface");
        else
          port.kernel_iface = def;
      }
      break;
    case ExceptionPath::Xdp: {
      if (port.device.empty()) break;  // already reported
      if (!startsWith(port.device, "net_af_xdp")) {
        reportAt(mode, "xdp needs a net_af_xdp device (got " + quote(port.device) + ")");
        break;
      }
      auto devIface = devarg(port.device, "iface");
      if (!devIface || devIface->empty()) {
        reportAt(mode, "xdp needs an iface= argument in device " + quote(port.device));
        break;
      }
      if (iface && *iface != *devIface) {
        r_.report(ifaceField, "must match the device's iface= (" + quote(*devIface) + ") with exception_path xdp");
        break;
      }
      port.kernel_iface = *devIface;
      break;
    }
  }
}

void ConfigSchema::loadHealthGlobal(const Field& f) {
  if (!f) return;
  TableReader t(r_, f);
  if (!t) return;
  if (Field v = t.get("source4")) config_.health.source4 = r_.address(v, Family::V4);
  if (Field v = t.get("source6")) config_.health.source6 = r_.address(v, Family::V6);
}

void ConfigSchema::loadNeighbours(const Field& f) {
  if (!f) return;
  auto tables = r_.tableArray(f, "[[neighbours]]");
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < tables.size(); i++) {
    if (tables[i] == nullptr) continue;
    TableReader t(r_, *tables[i], element(f.path, i));
    std::optional<IpAddr> addr;
    std::optional<MacAddr> hw;
    if (Field v = t.get("address"); v)
      addr = r_.address(v);
    else
      t.report(v, "is required");
    if (Field v = t.get("mac"); v)
      hw = r_.mac(v);
    else
      t.report(v, "is required");
    if (addr) {
      if (auto [it, fresh] = seen.emplace(addr->str(), i); !fresh)
        r_.report(t.table(), t.path(), "duplicate of " + element(f.path, it->second) + " (same address)");
    }
    if (addr && hw) config_.neighbours.push_back({*addr, *hw});
  }
}

}  // namespace l4lb::control
