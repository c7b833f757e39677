// The operator's configuration, as loaded from TOML (toml++). Control plane only: the data plane
// never sees this type, only the Snapshot built from it (snapshot_builder.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "l4lb/addr.h"
#include "l4lb/types.h"

namespace l4lb::control {

struct EalConfig {
  uint32_t main_core = 0;
  std::vector<uint32_t> worker_cores;  // one worker per core; must not contain main_core
  bool hugepages = true;               // false: EAL --no-huge (tests, small labs)
  uint32_t memory_mb = 0;              // EAL -m; 0 = EAL default
  bool in_memory = false;              // EAL --in-memory: no files in /var/run/dpdk or hugetlbfs
  std::string file_prefix = "l4lb";    // EAL --file-prefix
  std::vector<std::string> extra_args; // appended verbatim
};

struct PortConfig {
  std::string name;                 // operator's name ("wan", "lan")
  std::string device;               // devargs: PCI address or vdev ("net_pcap0,rx_pcap=...")
  uint16_t queues = 0;              // RX queues; 0 = one per worker
  uint16_t mtu = 1500;              // 68..9000
  std::optional<MacAddr> mac;       // override the device's MAC
  std::optional<Prefix> ipv4;       // the port's own address and connected prefix
  std::optional<Prefix> ipv6;
  std::optional<IpAddr> gateway4;   // next hop for IPv4 destinations outside every connected prefix
  std::optional<IpAddr> gateway6;
};

struct BackendConfig {
  IpAddr address;
  uint16_t port = 0;                // NAT: destination port; 0 = keep the client's port
  uint32_t weight = 1;              // 1..65535
  std::optional<MacAddr> mac;       // static next-hop MAC (neighbour resolution comes later)
  std::string via;                  // port name; empty = chosen by connected prefix / gateway
};

struct VipConfig {
  std::string name;                 // defaults to "address:port/proto"
  IpAddr address;
  uint16_t port = 0;                // 0 = all ports
  Proto protocol = Proto::Tcp;
  Scheduler scheduler = Scheduler::Maglev;
  FwdMode forwarding = FwdMode::Dsr;
  uint32_t maglev_table_size = 65537;  // prime
  std::optional<IpAddr> tunnel_source4;  // ipip/gue outer source for IPv4 backends; default port's ipv4
  std::optional<IpAddr> tunnel_source6;  // ... for IPv6 backends; default port's ipv6
  uint16_t gue_port = 6080;         // GUE outer UDP destination port (Katran's default)
  std::vector<BackendConfig> backends;
};

struct NeighbourConfig {
  IpAddr address;
  MacAddr mac;
};

struct FlowTableConfig {
  uint32_t capacity = 1u << 20;     // entries per worker and per address family
  uint32_t tcp_syn_timeout_ms = 10'000;
  uint32_t tcp_established_timeout_ms = 300'000;
  uint32_t tcp_fin_timeout_ms = 10'000;
  uint32_t udp_timeout_ms = 30'000;
};

struct Config {
  std::string path;                 // file it came from (for messages)
  EalConfig eal;
  std::vector<PortConfig> ports;
  std::vector<VipConfig> vips;
  std::vector<NeighbourConfig> neighbours;
  FlowTableConfig flow_table;
};

// Every problem found, each as "file:line:col: key.path: message". Loading collects all
// errors it can rather than stopping at the first.
struct ConfigError {
  std::vector<std::string> messages;
  std::string str() const;  // messages joined by '\n'
};

// Parses and validates; never throws. Either a complete valid Config or errors, never half.
struct ConfigResult {
  std::optional<Config> config;
  ConfigError error;
  bool ok() const { return config.has_value(); }
};

ConfigResult loadConfigFile(const std::string& path);
// `name` is used in messages in place of a file path.
ConfigResult loadConfigString(std::string_view toml, const std::string& name);

}  // namespace l4lb::control
