// The config file's schema: each section's keys, defaults (config.h), ranges and the checks
// across keys, read through reader::TableReader (toml_reader.h) so each key is named once.
// Internal to the loader (config.cc); the public API is config.h.
#pragma once

#include <map>
#include <string>
#include <toml++/toml.h>

#include "control/config.h"
#include "control/toml_reader.h"

namespace l4lb::control {

class ConfigSchema {
 public:
  ConfigSchema(reader::Reader& r, Config& out) : r_(r), config_(out) {}

  // Fills the Config with every valid value and reports every invalid one; the caller keeps the
  // Config only if nothing was reported.
  void load(const toml::table& root);

 private:
  using Field = reader::Field;
  using TableReader = reader::TableReader;

  // config_schema.cc: [eal], [flow_table], [icmp], [[ports]], [[neighbours]], [health], [control],
  // [metrics], [log].
  void loadEal(const Field& f, const toml::table& root);
  void loadWorkerCores(const Field& f, bool mainOk);
  void loadFlowTable(const Field& f);
  void loadIcmp(const Field& f);
  void loadFragments(const Field& f);
  void loadPorts(const Field& f, const toml::table& root);
  void loadPortFamily(TableReader& t, PortConfig& port, Family family);
  void loadExceptionPath(TableReader& t, PortConfig& port);
  void loadNeighbours(const Field& f);
  void loadHealthGlobal(const Field& f);
  void loadOperator(const Field& control, const Field& metrics, const Field& log);
  // config_schema.cc: [cluster], [bgp] (scale-out). loadBgp runs after loadVips: announce names VIPs.
  void loadCluster(const Field& f);
  void loadBgp(const Field& f);
  // After every section: the tables and pools fit the EAL's memory.
  void checkMemory(const Field& eal, const Field& flowTable);

  // config_sync.cc: [sync].
  void loadSync(const Field& f);
  std::optional<SyncEndpoint> syncEndpoint(const Field& f);

  // config_vips.cc: [[vips]], [[vips.backends]] and their health_check tables.
  // The keys one health_check table set, so that checks across keys report at the table that
  // caused them and only once.
  struct HealthKeys {
    // Set only when present and valid.
    Field interval, timeout, max_latency, http_path, http_host, http_expect, udp_payload, udp_expect;
    bool failed = false;  // some key was present and invalid
  };
  HealthKeys readHealth(const toml::table& t, const std::string& path, HealthCheckConfig& cfg);
  std::optional<std::vector<std::pair<uint16_t, uint16_t>>> statusRanges(const Field& f);
  void validateHealth(const HealthCheckConfig& cfg, const HealthKeys& keys);
  void loadVips(const Field& f, const toml::table& root);
  void loadVip(const toml::table& t, const std::string& arrayPath, size_t index,
               std::map<std::string, size_t>& keys, std::map<std::string, size_t>& names);
  // The full-NAT keys of a VIP (snat_*, proxy_protocol) and what they refuse; `fwdOk`: the
  // forwarding key was read.
  void loadFullNat(TableReader& t, VipConfig& vip, bool fwdOk, bool protoOk);
  // After the backends: every backend's family has a source address, and no source address is
  // a VIP or a backend.
  void checkFullNat(TableReader& t, const VipConfig& vip);
  void loadBackends(TableReader& vipTable, VipConfig& vip, bool addrOk, bool fwdOk, bool vipPortOk,
                    bool vipTimeoutSet);
  void loadBackendHealth(TableReader& t, BackendConfig& be, const VipConfig& vip, bool portsOk,
                         bool vipTimeoutSet);
  void checkVia(const Field& f, const std::string& name);

  reader::Reader& r_;
  Config& config_;
};

}  // namespace l4lb::control
