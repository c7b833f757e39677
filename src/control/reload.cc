#include "control/reload.h"
#include "control/snat_pools.h"

namespace l4lb::control {

namespace {

template <typename T>
std::string show(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return "\"" + v + "\"";
  else if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  else if constexpr (std::is_arithmetic_v<T>) return std::to_string(v);
  else return "";
}
template <typename T>
std::string show(const std::optional<T>& v) {
  return v ? v->str() : "unset";
}
std::string show(const std::vector<uint32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}
std::string show(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + v[i];
  return s + "]";
}
std::string show(const SyncEndpoint& e) { return e.str(); }
std::string show(const std::vector<SyncEndpoint>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + v[i].str();
  return s + "]";
}
std::string show(ExceptionPath e) { return std::string(toString(e)); }

struct Differ {
  std::vector<std::string>& out;
  template <typename T>
  void operator()(const std::string& key, const T& a, const T& b) {
    if (!(a == b)) out.push_back(key + " changed (" + show(a) + " -> " + show(b) + "): needs a restart");
  }
};

}  // namespace

std::vector<std::string> restartRequired(const Config& a, const Config& b) {
  std::vector<std::string> out;
  Differ d{out};
  d("eal.main_core", a.eal.main_core, b.eal.main_core);
  d("eal.worker_cores", a.eal.worker_cores, b.eal.worker_cores);
  d("eal.hugepages", a.eal.hugepages, b.eal.hugepages);
  d("eal.memory_mb", a.eal.memory_mb, b.eal.memory_mb);
  d("eal.in_memory", a.eal.in_memory, b.eal.in_memory);
  d("eal.file_prefix", a.eal.file_prefix, b.eal.file_prefix);
  d("eal.extra_args", a.eal.extra_args, b.eal.extra_args);
  d("eal.lcores", a.eal.lcores, b.eal.lcores);
  d("eal.idle_backoff", a.eal.idle_backoff, b.eal.idle_backoff);
  d("eal.idle_polls_before_sleep", a.eal.idle_polls_before_sleep, b.eal.idle_polls_before_sleep);
  d("eal.idle_sleep_max_us", a.eal.idle_sleep_max_us, b.eal.idle_sleep_max_us);
  d("flow_table.capacity", a.flow_table.capacity, b.flow_table.capacity);
  // The workers' full-NAT session tables are sized by the source addresses at start.
  if (!(snatPools(a).addrs == snatPools(b).addrs))
    out.push_back("vips.snat_addresses / snat_ports / snat_quiet_time: the full-NAT source addresses changed: "
                  "needs a restart");
  // The sync thread, its socket and the workers' rings exist from start-up on; only
  // announce_interval (in the Snapshot) changes live.
  d("sync.enabled", a.sync.enabled, b.sync.enabled);
  d("sync.listen", a.sync.listen, b.sync.listen);
  d("sync.peers", a.sync.peers, b.sync.peers);
  d("sync.key_file", a.sync.key_file, b.sync.key_file);
  if (a.sync.key != b.sync.key) out.push_back("sync.key_file: the key changed: needs a restart");
  if (a.ports.size() != b.ports.size()) {
    out.push_back("ports: " + std::to_string(a.ports.size()) + " -> " + std::to_string(b.ports.size()) +
                  " ports: needs a restart");
    return out;
  }
  for (size_t i = 0; i < a.ports.size(); i++) {
    const PortConfig& p = a.ports[i];
    const PortConfig& q = b.ports[i];
    const std::string k = "ports[" + std::to_string(i) + "].";
    d(k + "name", p.name, q.name);
    d(k + "device", p.device, q.device);
    d(k + "queues", p.queues, q.queues);
    d(k + "mtu", p.mtu, q.mtu);
    d(k + "mac", p.mac, q.mac);
    d(k + "ipv4", p.ipv4, q.ipv4);
    d(k + "ipv6", p.ipv6, q.ipv6);
    d(k + "exception_path", p.exception_path, q.exception_path);
    d(k + "kernel_iface", p.kernel_iface, q.kernel_iface);
    d(k + "xdp_program", p.xdp_program, q.xdp_program);
    // Gateways may change live: the snapshot carries their MACs and neighbours are re-resolved.
  }
  return out;
}

}  // namespace l4lb::control
