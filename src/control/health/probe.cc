// What the health check types share outside the socket (socket_check.cc): errno wording, check
// equality, and the factory that picks a type's make<Id>Check from config.h's list.
#include "control/health/probe.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <tuple>

namespace l4lb::control {

bool sameCheck(const HealthCheckConfig& a, const HealthCheckConfig& b) {
  auto tie = [](const HealthCheckConfig& c) {
    return std::tie(c.type, c.interval_ms, c.timeout_ms, c.rise, c.fall, c.max_latency_ms,
                    c.jitter_pct, c.port, c.http_path, c.http_host, c.http_expect, c.udp_payload,
                    c.udp_expect, c.proxy_v2_local);
  };
  return tie(a) == tie(b);
}

std::string errnoReason(int err) {
  switch (err) {
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset";
    case EHOSTUNREACH: return "no route to host";
    case ENETUNREACH: return "network unreachable";
    case ETIMEDOUT: return "timed out (kernel)";
    case EADDRNOTAVAIL: return "no local address available";
    case EPIPE: return "connection closed";
    default: return std::strerror(err);
  }
}

std::unique_ptr<Probe> makeNoneCheck(const HealthTarget&) { return nullptr; }

std::unique_ptr<Probe> makeSocketProbe(const HealthTarget& target) {
#define L4LB_CHECK_FACTORY(Id, name) make##Id##Check,
  static constexpr std::array kFactories{L4LB_HEALTH_TYPES(L4LB_CHECK_FACTORY)};
#undef L4LB_CHECK_FACTORY
  return kFactories[static_cast<size_t>(target.cfg.type)](target);
}

}  // namespace l4lb::control
