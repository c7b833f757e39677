// The schema of [[vips]]: each VIP, its [[vips.backends]] and the health_check tables of both
// (a backend's keys override its VIP's, key by key). Every key is read with TableReader::get.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "control/config_schema.h"
#include "l4lb/addr.h"

namespace l4lb::control {

using reader::child;
using reader::element;
using reader::quote;

namespace {

constexpr int64_t kMinMaglevSize = 7;
constexpr int64_t kMaxMaglevSize = 16777213;  // largest prime below 2^24
// new_flow_rate / new_flow_burst: at most 10^8 flows (/s); keeps the token arithmetic in range.
constexpr int64_t kMaxNewFlowRate = 100'000'000;
constexpr int64_t kMaxPort = 65535;
constexpr int64_t kMaxWeight = 65535;
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

std::string_view familyName(const IpAddr& a) { return a.isV4() ? "IPv4" : "IPv6"; }

bool tunnels(FwdMode m) { return m == FwdMode::Ipip || m == FwdMode::Gue; }

// Visible ASCII only: the value is copied into an HTTP/1.1 request line or header
// (RFC 9112 §3.2 request-target, RFC 9110 §7.2 Host), where a space or CR/LF would split it.
bool isVisibleAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
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

// Without an explicit timeout_ms anywhere, a short interval shortens the default timeout
// rather than making the pair invalid.
void defaultTimeout(HealthCheckConfig& cfg, bool explicitTimeout) {
  if (!explicitTimeout) cfg.timeout_ms = std::min(HealthCheckConfig{}.timeout_ms, cfg.interval_ms);
}

}  // namespace

// Applies the keys of one health_check table on top of `cfg` (the VIP's check for a backend,
// the defaults for a VIP): key by key, so a backend can override just its port.
ConfigSchema::HealthKeys ConfigSchema::readHealth(const toml::table& tt, const std::string& path,
                                                  HealthCheckConfig& cfg) {
  HealthKeys keys;
  TableReader t(r_, tt, path);
  auto note = [&](Field* slot, const Field& f, bool ok) {
    if (!ok) keys.failed = true;
    else if (slot != nullptr) *slot = f;
  };
  if (Field v = t.get("type")) {
    auto x = r_.enumValue<HealthType>(v);
    if (x) cfg.type = *x;
    note(nullptr, v, x.has_value());
  }
  const std::tuple<std::string_view, uint32_t*, int64_t, int64_t, Field*> numbers[] = {
      {"interval_ms", &cfg.interval_ms, kMinHealthIntervalMs, kMaxHealthIntervalMs, &keys.interval},
      {"timeout_ms", &cfg.timeout_ms, 1, kMaxHealthIntervalMs, &keys.timeout},
      {"rise", &cfg.rise, 1, kMaxHealthThreshold, nullptr},
      {"fall", &cfg.fall, 1, kMaxHealthThreshold, nullptr},
      {"max_latency_ms", &cfg.max_latency_ms, 0, kMaxHealthIntervalMs, &keys.max_latency},
      {"jitter_pct", &cfg.jitter_pct, 0, kMaxJitterPct, nullptr},
  };
  for (auto [key, field, lo, hi, slot] : numbers) {
    if (Field v = t.get(key)) {
      auto x = r_.integer(v, lo, hi);
      if (x) *field = static_cast<uint32_t>(*x);
      note(slot, v, x.has_value());
    }
  }
  if (Field v = t.get("port")) {
    auto x = r_.integer(v, 0, kMaxPort);
    if (x) cfg.port = static_cast<uint16_t>(*x);
    note(nullptr, v, x.has_value());
  }
  if (Field v = t.get("http_path")) {
    auto x = r_.string(v);
    bool ok = x && !x->empty() && (*x)[0] == '/' && x->size() <= kMaxHttpPathLen && isVisibleAscii(*x);
    if (x && !ok)
      r_.report(v, "must start with \"/\" and be at most 1024 visible ASCII characters (no spaces)");
    if (ok) cfg.http_path = *x;
    note(&keys.http_path, v, ok);
  }
  if (Field v = t.get("http_host")) {
    auto x = r_.string(v);
    bool ok = x && !x->empty() && x->size() <= kMaxHttpHostLen && isVisibleAscii(*x);
    if (x && !ok) r_.report(v, "must be 1..255 visible ASCII characters (no spaces)");
    if (ok) cfg.http_host = *x;
    note(&keys.http_host, v, ok);
  }
  if (Field v = t.get("http_expect")) {
    auto x = statusRanges(v);
    if (x) cfg.http_expect = std::move(*x);
    note(&keys.http_expect, v, x.has_value());
  }
  if (Field v = t.get("udp_payload")) {
    auto x = r_.string(v);
    bool ok = x && !x->empty() && x->size() <= kMaxUdpPayload;
    if (x && !ok) r_.report(v, "must be 1..1024 bytes");
    if (ok) cfg.udp_payload = *x;
    note(&keys.udp_payload, v, ok);
  }
  if (Field v = t.get("udp_expect")) {
    auto x = r_.string(v);
    bool ok = x && x->size() <= kMaxUdpPayload;
    if (x && !ok) r_.report(v, "must be at most 1024 bytes");
    if (ok) cfg.udp_expect = *x;
    note(&keys.udp_expect, v, ok);
  }
  return keys;
}

std::optional<std::vector<std::pair<uint16_t, uint16_t>>> ConfigSchema::statusRanges(const Field& f) {
  auto* arr = f->as_array();
  if (arr == nullptr) {
    r_.report(f, "must be an array of status codes and ranges like \"200-399\"");
    return std::nullopt;
  }
  if (arr->empty()) {
    r_.report(f, "must not be empty (omit it to accept 200-299)");
    return std::nullopt;
  }
  std::vector<std::pair<uint16_t, uint16_t>> out;
  bool ok = true;
  for (size_t i = 0; i < arr->size(); i++) {
    const Field e{arr->get(i), element(f.path, i)};
    if (e->is_integer()) {
      auto x = r_.integer(e, kMinHttpStatus, kMaxHttpStatus);
      if (x) out.emplace_back(static_cast<uint16_t>(*x), static_cast<uint16_t>(*x));
      ok = ok && x.has_value();
    } else if (auto* str = e->as_string()) {
      auto r = parseStatusRange(str->get());
      if (r)
        out.push_back(*r);
      else
        r_.report(e, "must be a status code or a range like \"200-399\" within 100..599 (got " +
                         quote(str->get()) + ")");
      ok = ok && r.has_value();
    } else {
      r_.report(e, "must be an integer or a string like \"200-399\"");
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

// Checks across keys of an effective check; reports at the keys `keys` set, so a backend that
// only inherits a problem from its VIP does not repeat the VIP's message.
void ConfigSchema::validateHealth(const HealthCheckConfig& cfg, const HealthKeys& keys) {
  if (keys.failed) return;  // one message per mistake
  if (cfg.timeout_ms > cfg.interval_ms) {
    // A probe still running when the next one is due would overlap it.
    if (keys.timeout)
      r_.report(keys.timeout, "must be 1..interval_ms (" + std::to_string(cfg.interval_ms) + ")");
    else if (keys.interval)
      r_.report(keys.interval, "must be >= timeout_ms (" + std::to_string(cfg.timeout_ms) + ")");
  } else if (cfg.max_latency_ms > cfg.timeout_ms) {
    // A reply slower than the timeout is a timeout: the threshold could never apply.
    std::string bound = std::to_string(cfg.max_latency_ms);
    if (keys.max_latency)
      r_.report(keys.max_latency, "must be 0 or 1..timeout_ms (" + std::to_string(cfg.timeout_ms) + ")");
    else if (keys.timeout)
      r_.report(keys.timeout, "must be >= max_latency_ms (" + bound + ")");
    else if (keys.interval)
      r_.report(keys.interval, "must be >= max_latency_ms (" + bound + ") (the timeout defaults to the "
                               "interval when shorter than 1000 ms)");
  }
  for (const Field* f : {&keys.http_path, &keys.http_host, &keys.http_expect})
    if (*f && cfg.type != HealthType::Http) r_.report(*f, "only allowed with type http");
  for (const Field* f : {&keys.udp_payload, &keys.udp_expect})
    if (*f && cfg.type != HealthType::Udp) r_.report(*f, "only allowed with type udp");
}

void ConfigSchema::loadVips(const Field& f, const toml::table& root) {
  auto tables = r_.requiredTableArray(f, root, "[[vips]]", "at least one [[vips]] is required");
  std::map<std::string, size_t> keys, names;
  for (size_t i = 0; i < tables.size(); i++) {
    if (tables[i] == nullptr) continue;
    loadVip(*tables[i], f.path, i, keys, names);
  }
}

void ConfigSchema::loadVip(const toml::table& tt, const std::string& arrayPath, size_t index,
                           std::map<std::string, size_t>& keys, std::map<std::string, size_t>& names) {
  TableReader t(r_, tt, element(arrayPath, index));
  // Asked first, as documented first: a misspelt key's suggestion prefers it on a tie.
  const Field nameField = t.get("name");
  VipConfig vip;

  // Whether each field that later checks depend on is known to be right.
  bool addrOk = false, portOk = true, protoOk = true, fwdOk = true;
  if (Field v = t.get("address"); v) {
    auto a = r_.address(v);
    if (a) vip.address = *a;
    addrOk = a.has_value();
  } else {
    t.report(v, "is required");
  }
  if (Field v = t.get("port")) {
    auto x = r_.integer(v, 0, kMaxPort);
    if (x) vip.port = static_cast<uint16_t>(*x);
    portOk = x.has_value();
  }
  if (Field v = t.get("protocol")) {
    auto x = r_.enumValue<Proto>(v);
    if (x) vip.protocol = *x;
    protoOk = x.has_value();
  }
  if (Field v = t.get("scheduler")) {
    if (auto x = r_.enumValue<Scheduler>(v)) vip.scheduler = *x;
  }
  if (Field v = t.get("forwarding")) {
    auto x = r_.enumValue<FwdMode>(v);
    if (x) vip.forwarding = *x;
    fwdOk = x.has_value();
  }
  bool sizeOk = true;
  const Field sizeField = t.get("maglev_table_size");
  if (sizeField) {
    auto x = r_.integer(sizeField, kMinMaglevSize, kMaxMaglevSize);
    sizeOk = x.has_value();
    if (x && !isPrime(static_cast<uint32_t>(*x))) {
      // Maglev NSDI'16 §3.4: the permutation only covers every slot when the size is prime.
      r_.report(sizeField, "must be a prime number (e.g. 65537)");
      sizeOk = false;
    }
    if (sizeOk) vip.maglev_table_size = static_cast<uint32_t>(*x);
  }

  const std::pair<std::string_view, Family> sources[] = {{"tunnel_source4", Family::V4},
                                                         {"tunnel_source6", Family::V6}};
  for (auto [key, family] : sources) {
    const Field v = t.get(key);
    if (!v) continue;
    auto a = r_.address(v, family);
    if (a && fwdOk && !tunnels(vip.forwarding)) {
      r_.report(v, "only allowed with forwarding ipip or gue");
    } else if (a) {
      (family == Family::V4 ? vip.tunnel_source4 : vip.tunnel_source6) = a;
    }
  }
  if (Field v = t.get("gue_port")) {
    auto x = r_.integer(v, 1, kMaxPort);
    if (x && fwdOk && vip.forwarding != FwdMode::Gue)
      r_.report(v, "only allowed with forwarding gue");
    else if (x)
      vip.gue_port = static_cast<uint16_t>(*x);
  }

  if (Field v = t.get("on_all_down")) {
    if (auto x = r_.enumValue<AllDownPolicy>(v)) vip.on_all_down = *x;
  }
  // New-flow rate limit: new_flow_rate and new_flow_burst are per balancer (over all workers); the
  // snapshot builder splits both evenly over the workers (dataplane/token_bucket.h).
  const Field rateField = t.get("new_flow_rate");
  if (rateField) {
    if (auto x = r_.integer(rateField, 0, kMaxNewFlowRate)) vip.new_flow_rate = static_cast<uint32_t>(*x);
  }
  if (Field v = t.get("new_flow_burst")) {
    auto x = r_.integer(v, 1, kMaxNewFlowRate);
    if (x && vip.new_flow_rate == 0)
      r_.report(v, "only allowed with new_flow_rate > 0");
    else if (x)
      vip.new_flow_burst = static_cast<uint32_t>(*x);
  }
  if (Field v = t.get("over_rate")) {
    if (auto x = r_.string(v)) {
      if (*x != "stateless" && *x != "drop")
        r_.report(v, "must be one of stateless, drop (got " + quote(*x) + ")");
      else if (vip.new_flow_rate == 0)
        r_.report(v, "only allowed with new_flow_rate > 0");
      else
        vip.over_rate_drop = *x == "drop";
    }
  }
  if (Field v = t.get("fragments")) {
    if (auto x = r_.enumValue<FragPolicy>(v)) vip.fragments = *x;
  }
  loadFullNat(t, vip, fwdOk, protoOk);
  bool vipTimeoutSet = false;
  if (Field v = t.get("health_check")) {
    if (const toml::table* ht = r_.table(v)) {
      HealthKeys set = readHealth(*ht, v.path, vip.health);
      vipTimeoutSet = bool(set.timeout);
      defaultTimeout(vip.health, vipTimeoutSet);
      validateHealth(vip.health, set);
    }
  }

  loadBackends(t, vip, addrOk, fwdOk, portOk, vipTimeoutSet);
  if (fwdOk && vip.forwarding == FwdMode::FullNat) checkFullNat(t, vip);
  if (sizeOk && !vip.backends.empty() && vip.maglev_table_size <= vip.backends.size()) {
    std::string msg = "must be larger than the number of backends (" + std::to_string(vip.backends.size()) + ")";
    if (sizeField)
      r_.report(sizeField, msg);
    else
      t.report(sizeField, msg + "; the default is " + std::to_string(VipConfig{}.maglev_table_size));
  }

  bool duplicate = false;
  if (addrOk && portOk && protoOk) {
    std::string key = vip.address.str() + "|" + std::to_string(vip.port) + "|" + std::string(toString(vip.protocol));
    if (auto [it, fresh] = keys.emplace(key, index); !fresh) {
      r_.report(tt, t.path(), "duplicate of " + element(arrayPath, it->second) + " (same address, port and protocol)");
      duplicate = true;
    }
  }

  if (nameField) {
    if (auto x = r_.string(nameField)) {
      if (x->empty())
        r_.report(nameField, "must not be empty");
      else
        vip.name = *x;
    }
  } else if (addrOk) {
    std::string a = vip.address.isV4() ? vip.address.str() : "[" + vip.address.str() + "]";
    vip.name = a + ":" + std::to_string(vip.port) + "/" + std::string(toString(vip.protocol));
  }
  // Names label metrics and log lines, so two VIPs must not share one. A duplicate VIP's
  // default name necessarily clashes too; that says nothing new.
  if (!vip.name.empty() && !(duplicate && !nameField)) {
    if (auto [it, fresh] = names.emplace(vip.name, index); !fresh) {
      std::string msg = quote(vip.name) + " is already used by " + element(arrayPath, it->second);
      if (nameField)
        r_.report(nameField, msg);
      else
        t.report(nameField, msg);
    }
  }
  config_.vips.push_back(std::move(vip));
}

void ConfigSchema::loadBackends(TableReader& vipTable, VipConfig& vip, bool addrOk, bool fwdOk, bool vipPortOk,
                                bool vipTimeoutSet) {
  const Field f = vipTable.get("backends");
  auto tables = r_.requiredTableArray(f, vipTable.table(), "[[vips.backends]]", "a VIP needs at least one backend");
  std::map<std::string, size_t> seen;
  bool allZero = true;
  for (size_t i = 0; i < tables.size(); i++) {
    if (tables[i] == nullptr) {
      allZero = false;
      continue;
    }
    TableReader t(r_, *tables[i], element(f.path, i));
    BackendConfig be;

    bool beAddrOk = false, bePortOk = true, weightOk = true;
    if (Field v = t.get("address"); v) {
      auto a = r_.address(v);
      beAddrOk = a.has_value();
      if (a) be.address = *a;
      // DSR rewrites only the MAC and NAT only addresses of the same family; crossing families
      // needs an outer header of the backend's family (RFC 2473 / GUE), or full NAT, which
      // replaces the IP header (fullnat/family_xlate.h).
      if (a && addrOk && fwdOk && !tunnels(vip.forwarding) && vip.forwarding != FwdMode::FullNat &&
          a->family != vip.address.family) {
        r_.report(v, std::string(familyName(*a)) + " backend for an " + std::string(familyName(vip.address)) +
                         " VIP needs forwarding ipip, gue or fullnat");
      }
    } else {
      t.report(v, "is required");
    }
    if (Field v = t.get("port"); !v && fwdOk && vipPortOk && vip.forwarding == FwdMode::Nat && vip.port != 0) {
      // The rule (l4lb.toml(5)): NAT without a backend port keeps the VIP's port.
      r_.note(t.table(), v.path, "not set: forwarding nat sends to the VIP's port " + std::to_string(vip.port));
    } else if (v) {
      auto x = r_.integer(v, 0, kMaxPort);
      bePortOk = x.has_value();
      if (x) be.port = static_cast<uint16_t>(*x);
      if (x && *x != 0 && fwdOk && vip.forwarding != FwdMode::Nat && vip.forwarding != FwdMode::FullNat) {
        // Only NAT rewrites the L4 header; the other modes deliver the packet unchanged.
        r_.report(v, "a nonzero backend port needs forwarding nat or fullnat");
        bePortOk = false;
      }
    }
    if (Field v = t.get("weight")) {
      auto x = r_.integer(v, 0, kMaxWeight);
      if (x) be.weight = static_cast<uint32_t>(*x);
      weightOk = x.has_value();
    }
    if (Field v = t.get("mac")) be.mac = r_.mac(v);
    if (Field v = t.get("via")) {
      if (auto x = r_.string(v)) {
        be.via = *x;
        checkVia(v, *x);
      }
    }
    loadBackendHealth(t, be, vip, vipPortOk && bePortOk, vipTimeoutSet);
    if (beAddrOk && bePortOk) {
      std::string key = be.address.str() + "|" + std::to_string(be.port);
      if (auto [it, fresh] = seen.emplace(key, i); !fresh)
        r_.report(t.table(), t.path(), "duplicate of " + element(f.path, it->second) + " (same address and port)");
    }
    allZero = allZero && weightOk && be.weight == 0;
    vip.backends.push_back(std::move(be));
  }
  // Weight 0 drains a backend; with every backend drained the VIP could never take a new flow.
  if (allZero && !tables.empty())
    r_.report(f, "every backend has weight 0, so the VIP can never serve; give one a weight > 0 "
                 "(to take a VIP out of service, remove it)");
}

// BackendConfig::health: the VIP's check with this backend's [vips.backends.health_check]
// keys on top.
void ConfigSchema::loadBackendHealth(TableReader& t, BackendConfig& be, const VipConfig& vip, bool portsOk,
                                     bool vipTimeoutSet) {
  be.health = vip.health;
  be.health.proxy_v2_local = vip.proxy_v2;
  const Field hn = t.get("health_check");
  const toml::table* ht = hn ? r_.table(hn) : nullptr;
  if (hn && ht == nullptr) return;
  HealthKeys keys;
  if (ht != nullptr) {
    keys = readHealth(*ht, hn.path, be.health);
    defaultTimeout(be.health, vipTimeoutSet || keys.timeout);
    validateHealth(be.health, keys);
  }
  if (keys.failed || !portsOk) return;
  if (be.health.type != HealthType::None && be.health.port == 0 && be.port == 0 && vip.port == 0) {
    // The check's own port key (readHealth), named where the check is or would be written.
    const toml::node& at = ht != nullptr ? static_cast<const toml::node&>(*ht) : t.table();
    r_.report(at, child(hn.path, "port"), "is required: the backend's and the VIP's port are 0");
  }
}

void ConfigSchema::loadFullNat(TableReader& t, VipConfig& vip, bool fwdOk, bool protoOk) {
  const bool fullnat = fwdOk && vip.forwarding == FwdMode::FullNat;
  auto onlyFullNat = [&](const Field& v) {
    if (fwdOk && !fullnat) r_.report(v, "only allowed with forwarding fullnat");
    return fullnat;
  };
  const Field addrs = t.get("snat_addresses");
  if (addrs && onlyFullNat(addrs)) {
    if (auto* arr = addrs->as_array(); arr != nullptr && !arr->empty()) {
      std::set<std::string> seen;
      for (size_t i = 0; i < arr->size(); i++) {
        const Field e{arr->get(i), element(addrs.path, i)};
        auto a = r_.address(e);
        if (!a) continue;
        if (!seen.insert(a->str()).second)
          r_.report(e, a->str() + " is listed twice");
        else
          vip.snat_addresses.push_back(*a);
      }
    } else {
      r_.report(addrs, "must be a non-empty array of addresses");
    }
  } else if (!addrs && fullnat) {
    t.report(addrs, "is required with forwarding fullnat: the source addresses this balancer owns on the "
                    "backends' side");
  }
  if (Field v = t.get("snat_ports"); v && onlyFullNat(v)) {
    // "lo-hi", both 1..65535, lo <= hi.
    if (auto x = r_.string(v)) {
      unsigned lo = 0, hi = 0;
      char dash = 0;
      int used = 0;
      if (std::sscanf(x->c_str(), "%u%c%u%n", &lo, &dash, &hi, &used) != 3 || dash != '-' ||
          size_t(used) != x->size() || lo < 1 || hi > kMaxPort)
        r_.report(v, "must be a range \"lo-hi\" of ports 1..65535 (got " + quote(*x) + ")");
      else if (lo > hi)
        r_.report(v, "is an empty range: " + std::to_string(lo) + " > " + std::to_string(hi));
      else
        vip.snat_port_lo = uint16_t(lo), vip.snat_port_hi = uint16_t(hi);
    }
  }
  if (Field v = t.get("snat_quiet_time"); v && onlyFullNat(v)) {
    if (auto x = r_.secondsAsMs(v)) vip.snat_quiet_ms = *x;
  }
  if (Field v = t.get("proxy_protocol")) {
    if (auto x = r_.string(v)) {
      if (*x != "v2" && *x != "none")
        r_.report(v, "must be one of v2, none (got " + quote(*x) + ")");
      else if (*x == "v2" && onlyFullNat(v)) {
        if (protoOk && vip.protocol != Proto::Tcp)
          r_.report(v, "v2 needs protocol tcp: the header is the first bytes of a TCP stream");
        else
          vip.proxy_v2 = true;
      }
    }
  }
}

void ConfigSchema::checkFullNat(TableReader& t, const VipConfig& vip) {
  if (vip.snat_addresses.empty()) return;  // reported by loadFullNat
  const Field at = t.get("snat_addresses");
  for (const Family f : {Family::V4, Family::V6}) {
    bool needed = false, have = false;
    for (const auto& b : vip.backends) needed |= b.address.family == f;
    for (const auto& a : vip.snat_addresses) have |= a.family == f;
    if (needed && !have)
      r_.report(at, std::string("needs an ") + (f == Family::V4 ? "IPv4" : "IPv6") +
                        " address: the VIP has backends of that family");
  }
  for (const auto& a : vip.snat_addresses) {
    if (a == vip.address) r_.report(at, a.str() + " is the VIP's own address");
    for (const auto& b : vip.backends)
      if (a == b.address) r_.report(at, a.str() + " is also a backend");
  }
}

void ConfigSchema::checkVia(const Field& f, const std::string& name) {
  std::vector<std::string_view> portNames;
  for (auto& p : config_.ports) {
    if (p.name == name) return;
    if (!p.name.empty()) portNames.push_back(p.name);
  }
  std::string msg = "no port named " + quote(name);
  if (auto s = reader::closest(name, portNames); !s.empty()) msg += ", did you mean " + quote(s) + "?";
  r_.report(f, msg);
}

}  // namespace l4lb::control
