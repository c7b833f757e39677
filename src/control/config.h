// The operator's configuration, as loaded from TOML (toml++). Control plane only: the data plane
// never sees this type, only the Snapshot built from it (snapshot_builder.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "l4lb/addr.h"
#include "l4lb/limits.h"
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
  // EAL --lcores (lcore@cpu map), instead of -l: several lcores may share one CPU (a lab, a test
  // with more workers than CPUs). Empty: -l main_core,worker_cores (each lcore on its own CPU).
  std::string lcores;
  // Adaptive idle back-off (src/dataplane/idle_backoff.h): after idle_polls_before_sleep empty
  // polls a worker sleeps 1, 2, 4 ... up to idle_sleep_max_us microseconds per loop until traffic
  // returns. Off by default: a dedicated appliance busy-polls.
  bool idle_backoff = false;
  uint32_t idle_polls_before_sleep = 256;  // 1 .. 2^24
  uint32_t idle_sleep_max_us = 1000;       // 1 .. 10000
};

// How traffic that is not the balancer's reaches the kernel (ARP, ND, SSH, health-check replies).
//  none: it is counted and dropped (test ports, or a NIC whose kernel side is elsewhere).
//  tap:  a net_tap kernel interface `kernel_iface` with the port's MAC and addresses is created;
//        workers hand it every packet that is not balancer traffic and send what the kernel
//        sends out of it on the port (DPDK-driven NICs).
//  xdp:  the device is net_af_xdp; our XDP program (xdp_program) redirects only balancer
//        traffic to DPDK and passes the rest to the kernel on the same interface.
enum class ExceptionPath : uint8_t { None, Tap, Xdp };

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
  ExceptionPath exception_path = ExceptionPath::None;
  std::string kernel_iface;         // tap: name of the created interface (default "l4lb-<name>");
                                    // xdp: the af_xdp iface= devarg (filled in by the loader)
  std::string xdp_program;          // xdp: BPF object path; empty = the one installed with l4lb
};

// The health check types: X(Id, "name"). Each but none has its own file, control/health/
// <name>_check.cc, defining make<Id>Check (control/health/probe.h); "name" is [health_check] type.
#define L4LB_HEALTH_TYPES(X) X(None, "none") X(Tcp, "tcp") X(Http, "http") X(Udp, "udp")

#define L4LB_HEALTH_TYPE_ID(Id, name) Id,
enum class HealthType : uint8_t { L4LB_HEALTH_TYPES(L4LB_HEALTH_TYPE_ID) };
#undef L4LB_HEALTH_TYPE_ID

// One backend's health check (a VIP's [vips.health_check] merged with the backend's own
// [vips.backends.health_check], key by key). Envoy/keepalived semantics: `rise` consecutive
// successes make a backend healthy, `fall` consecutive failures unhealthy; a reply slower than
// `max_latency_ms` is a failure ("slow" counts as well as "unresponsive").
struct HealthCheckConfig {
  HealthType type = HealthType::None;
  uint32_t interval_ms = 1000;      // 10..3600000
  uint32_t timeout_ms = 1000;       // 1..interval_ms
  uint32_t rise = 2;                // 1..100
  uint32_t fall = 3;                // 1..100
  uint32_t max_latency_ms = 0;      // 0 = only the timeout applies; else 1..timeout_ms
  uint32_t jitter_pct = 10;         // each interval is drawn from interval * (1 +- jitter/100); 0..50
  uint16_t port = 0;                // 0 = the backend's port, else the VIP's port (error if both 0)
  std::string http_path = "/";      // http: request target
  std::string http_host;            // http: Host header; empty = backend address
  std::vector<std::pair<uint16_t, uint16_t>> http_expect;  // accepted status ranges; empty = 200..299
  std::string udp_payload = "ping"; // udp: datagram sent
  std::optional<std::string> udp_expect;  // udp: required reply; nullopt = any reply
  // Not a key: set from the VIP (proxy_protocol = "v2"). tcp/http: a PROXY v2 LOCAL header goes
  // first, since a backend that expects PROXY headers refuses a connection without one.
  bool proxy_v2_local = false;
};

// What a VIP does when none of its backends is usable.
//  drop: its packets are dropped and counted (no_backend).
//  keep: it keeps the last set of backends that were healthy (better a degraded pool than none).
enum class AllDownPolicy : uint8_t { Drop, Keep };

struct BackendConfig {
  IpAddr address;
  uint16_t port = 0;                // NAT: destination port; 0 = keep the client's port
  uint32_t weight = 1;              // 0..65535; 0 = draining (no new flows, existing ones continue)
  std::optional<MacAddr> mac;       // static next-hop MAC; else resolved through the kernel (ARP/ND)
  std::string via;                  // port name; empty = chosen by connected prefix / gateway
  HealthCheckConfig health;         // effective check (VIP's merged with the backend's overrides)
};

struct VipConfig {
  std::string name;                 // defaults to "address:port/proto"
  IpAddr address;
  uint16_t port = 0;                // 0 = all ports
  Proto protocol = Proto::Tcp;
  Scheduler scheduler = Scheduler::Maglev;
  FwdMode forwarding = FwdMode::Dsr;
  uint32_t maglev_table_size = 65537;  // prime
  std::optional<IpAddr> tunnel_source4;  // ipip/gue outer source for IPv4 backends; default: each backend's egress port's ipv4
  std::optional<IpAddr> tunnel_source6;  // ... for IPv6 backends; default: each backend's egress port's ipv6
  uint16_t gue_port = 6080;         // GUE outer UDP destination port (Katran's default)
  AllDownPolicy on_all_down = AllDownPolicy::Drop;
  // New-flow rate limit (dataplane/token_bucket.h): flows/s over all workers, 0 = unlimited; the
  // burst defaults to the rate; over it, forward statelessly (default) or drop.
  uint32_t new_flow_rate = 0;
  uint32_t new_flow_burst = 0;      // 0: = new_flow_rate
  bool over_rate_drop = false;
  FragPolicy fragments = FragPolicy::Track;
  // fullnat: the source addresses this balancer owns on the backends' side (at least one of each
  // backend family), the source port range and how long a freed (address, port) waits before
  // reuse (2 x MSL, as TIME-WAIT).
  std::vector<IpAddr> snat_addresses;
  uint16_t snat_port_lo = 1024, snat_port_hi = 65535;
  uint32_t snat_quiet_ms = 60'000;
  // fullnat + tcp: the client's address reaches the backend in a PROXY protocol v2 header.
  bool proxy_v2 = false;
  HealthCheckConfig health;         // the VIP's check as written (backends hold the merged one)
  std::vector<BackendConfig> backends;
};

// [health]: where checks come from. Default: the egress port's own address when that port has
// an exception path (the kernel holds the address), else the kernel's choice (a management
// interface).
struct HealthGlobalConfig {
  std::optional<IpAddr> source4;
  std::optional<IpAddr> source6;
};

struct NeighbourConfig {
  IpAddr address;
  MacAddr mac;
};

struct FlowTableConfig {
  uint32_t capacity = 1u << 20;     // entries per worker and per address family
  uint32_t tcp_syn_timeout_ms = kDefaultFlowTimeouts.tcp_syn_ms;
  uint32_t tcp_established_timeout_ms = kDefaultFlowTimeouts.tcp_established_ms;
  uint32_t tcp_fin_timeout_ms = kDefaultFlowTimeouts.tcp_fin_ms;
  uint32_t udp_timeout_ms = kDefaultFlowTimeouts.udp_ms;
  uint32_t udp_new_timeout_ms = kDefaultFlowTimeouts.udp_new_ms;
  // embryonic_share (0 < x <= 1) in parts per million: the embryonic entries' quota.
  uint32_t embryonic_ppm = kDefaultEmbryonicPpm;
};

// [icmp]: how many ICMP errors about VIP flows each worker forwards (errors_per_second, burst).
struct IcmpConfig {
  IcmpErrorLimit errors = kDefaultIcmpErrorLimit;
};

// [fragments]: the per-worker fragment table (dataplane/frag_table.h). table_size and max_held
// are sized at start-up (a reload keeps them); timeout takes effect on reload.
struct FragmentConfig {
  uint32_t timeout_ms = 2000;        // 100 ms .. 60 s: how long a datagram's decision is kept
  uint32_t table_size = 4096;        // entries per worker, 64 .. 1M
  uint32_t max_held = 256;           // fragments held (waiting for their first) per worker, 0 .. 4096
  uint32_t max_held_per_datagram = 8;  // 1 .. 64
};

// [control]: the operator API's Unix socket (l4lbctl). socket = "" disables it.
struct ControlApiConfig {
  std::string socket = "/run/l4lb/l4lb.sock";
  uint32_t mode = 0600;             // permission bits of the socket file (owner root)
};

// [metrics]: Prometheus text exposition over HTTP. listen = "" disables it.
struct MetricsConfig {
  std::string listen = "127.0.0.1:9100";  // "ADDR:PORT" or "[ADDR6]:PORT"
  std::optional<IpAddr> addr;             // parsed from listen (nullopt when disabled)
  uint16_t port = 0;
};

// One UDP endpoint of flow sync: an address and a port.
struct SyncEndpoint {
  IpAddr addr;
  uint16_t port = 0;
  bool operator==(const SyncEndpoint&) const = default;
  std::string str() const;  // "198.18.40.11:7400", "[2001:db8::1]:7400"
};

// [sync]: flow sync between the balancers of one cluster (control/sync/). Absent or
// enabled = false: no sync thread, no rings, no socket. When enabled, listen, peers and key_file
// are required; the key file is read at load time (so --check-config and reload check it too).
struct SyncConfig {
  bool enabled = false;
  SyncEndpoint listen;                 // the UDP socket's address (v4 or v6)
  std::vector<SyncEndpoint> peers;     // datagrams go to, and are accepted only from, these
  std::string key_file;                // absolute path; 64 hex chars, not group/other-readable
  std::array<uint8_t, 32> key{};       // the key read from key_file (enabled only)
  uint32_t announce_interval_ms = 2000;  // an active flow is re-announced at least this often
};

// [log]: the control plane's log level (debug, info, warning, error).
struct LogConfig {
  std::string level = "info";
};

// [cluster]: this balancer among its peers (logs, metrics, `l4lbctl cluster`).
struct ClusterConfig {
  std::string name;                 // default: the host name
};

// [bgp]: VIP announcement through the operator's BIRD 2 (control/bgp/announcer.h). Absent:
// l4lb announces nothing and talks to no BIRD.
struct BgpConfig {
  bool enabled = false;             // the [bgp] table is present
  std::string bird_socket = "/run/bird/bird.ctl";
  std::string include_file = "/run/l4lb/bird-vips.conf";
  std::vector<std::string> announce;  // VIP names; empty: every VIP (announce_all)
  bool announce_all = true;
  std::optional<IpAddr> next_hop4;  // BGP next hop of the IPv4 VIP routes; default: BIRD's choice
  std::optional<IpAddr> next_hop6;
  bool withdraw_when_down = true;   // withdraw a VIP none of whose backends is healthy
  uint32_t drain_time_ms = 5000;    // clean stop: withdraw, keep forwarding this long, then stop
};

struct Config {
  std::string path;                 // file it came from (for messages)
  std::string text;                 // the TOML it was loaded from (l4lbctl config)
  EalConfig eal;
  std::vector<PortConfig> ports;
  std::vector<VipConfig> vips;
  std::vector<NeighbourConfig> neighbours;
  FlowTableConfig flow_table;
  IcmpConfig icmp;
  FragmentConfig fragments;
  HealthGlobalConfig health;
  ControlApiConfig control;
  MetricsConfig metrics;
  LogConfig log;
  SyncConfig sync;
  ClusterConfig cluster;
  BgpConfig bgp;
};

// "host:port" / "[v6]:port" -> address and port; nullopt when malformed.
std::optional<std::pair<IpAddr, uint16_t>> parseListenAddr(std::string_view s);

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
  // Every key the loader asked for while reading (dotted, without array indexes), tables
  // included: for a document with every table, the whole schema (l4lb --config-keys).
  std::vector<std::string> keys;
  // The tables it read, as TOML headers ("[eal]", "[[vips.backends]]"), sorted: for a document
  // with every table, every section (l4lb --config-sections; l4lb.toml(5) lists them).
  std::vector<std::string> sections;
  // Remarks that do not refuse the file, "file:line:col: key.path: note: ...": a default the
  // operator may not expect (a NAT backend without a port gets the VIP's).
  std::vector<std::string> notes;
  bool ok() const { return config.has_value(); }
};

ConfigResult loadConfigFile(const std::string& path);
// Places messages that name a key path ("vips[0].backends[1]: no port reaches ...", from the
// snapshot builder or a reload's plan) in the file: "path:line:col: vips[0].backends[1]: ...", at
// the deepest node of that path the file has. A message whose path the file lacks, or a file
// that no longer reads, gets "path: " alone.
std::vector<std::string> placeMessages(const std::string& path, const std::vector<std::string>& messages);
// `name` is used in messages in place of a file path.
ConfigResult loadConfigString(std::string_view toml, const std::string& name);

}  // namespace l4lb::control

// The config-only enums' names: what the file accepts and what logs and the API print.
template <>
struct l4lb::EnumNames<l4lb::control::ExceptionPath> {
  using E = l4lb::control::ExceptionPath;
  static constexpr std::array<EnumName<E>, 3> kTable{{{E::None, "none"}, {E::Tap, "tap"}, {E::Xdp, "xdp"}}};
};
static_assert(l4lb::enumTableDense(l4lb::control::ExceptionPath::Xdp));

#define L4LB_HEALTH_TYPE_NAME(Id, name) EnumName<E>{E::Id, name},
template <>
struct l4lb::EnumNames<l4lb::control::HealthType> {
  using E = l4lb::control::HealthType;
  static constexpr std::array kTable{L4LB_HEALTH_TYPES(L4LB_HEALTH_TYPE_NAME)};
};
#undef L4LB_HEALTH_TYPE_NAME
static_assert(l4lb::enumTableDense(
    l4lb::control::HealthType(l4lb::EnumNames<l4lb::control::HealthType>::kTable.size() - 1)));

template <>
struct l4lb::EnumNames<l4lb::control::AllDownPolicy> {
  using E = l4lb::control::AllDownPolicy;
  static constexpr std::array<EnumName<E>, 2> kTable{{{E::Drop, "drop"}, {E::Keep, "keep"}}};
};
static_assert(l4lb::enumTableDense(l4lb::control::AllDownPolicy::Keep));

namespace l4lb::control {

constexpr std::string_view toString(ExceptionPath e) { return enumName(e); }
constexpr std::string_view toString(HealthType t) { return enumName(t); }
constexpr std::string_view toString(AllDownPolicy p) { return enumName(p); }

}  // namespace l4lb::control
