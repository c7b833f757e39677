// What the health checker is asked to check: one backend's address, the resolved port and the
// effective check (config.h, HealthCheckConfig), under a key the caller chooses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "control/config.h"
#include "l4lb/addr.h"

namespace l4lb::control {

struct HealthTarget {
  std::string key;               // stable identity (the daemon passes "vip|backend")
  IpAddr addr;
  uint16_t port = 0;             // already resolved: resolveCheckPort()
  std::optional<IpAddr> source;  // bind() source; nullopt = the kernel's choice
  HealthCheckConfig cfg;
};

// The check's own port, else the backend's, else the VIP's (config.h, HealthCheckConfig::port).
// 0 only when all three are 0, which the config loader refuses for any type but none.
inline uint16_t resolveCheckPort(const HealthCheckConfig& cfg, uint16_t backendPort,
                                 uint16_t vipPort) {
  if (cfg.port != 0) return cfg.port;
  return backendPort != 0 ? backendPort : vipPort;
}

// Field-by-field equality of two checks (config.h declares no operator==). A new field in
// HealthCheckConfig must be added here, or a changed check would keep its old state.
bool sameCheck(const HealthCheckConfig& a, const HealthCheckConfig& b);

}  // namespace l4lb::control
