#include "l4lb/types.h"

namespace l4lb {

std::string_view toString(Proto p) { return p == Proto::Tcp ? "tcp" : "udp"; }

std::string_view toString(Scheduler s) {
  switch (s) {
    case Scheduler::Maglev: return "maglev";
    case Scheduler::SourceHash: return "source_hash";
    case Scheduler::RoundRobin: return "round_robin";
    case Scheduler::WeightedRoundRobin: return "weighted_round_robin";
  }
  return "?";
}

std::string_view toString(FwdMode m) {
  switch (m) {
    case FwdMode::Dsr: return "dsr";
    case FwdMode::Ipip: return "ipip";
    case FwdMode::Gue: return "gue";
    case FwdMode::Nat: return "nat";
  }
  return "?";
}

std::string_view toString(BackendState s) {
  switch (s) {
    case BackendState::Healthy: return "healthy";
    case BackendState::Draining: return "draining";
    case BackendState::Unhealthy: return "unhealthy";
  }
  return "?";
}

std::optional<Proto> parseProto(std::string_view s) {
  if (s == "tcp") return Proto::Tcp;
  if (s == "udp") return Proto::Udp;
  return std::nullopt;
}

std::optional<Scheduler> parseScheduler(std::string_view s) {
  for (auto v : {Scheduler::Maglev, Scheduler::SourceHash, Scheduler::RoundRobin,
                 Scheduler::WeightedRoundRobin})
    if (toString(v) == s) return v;
  return std::nullopt;
}

std::optional<FwdMode> parseFwdMode(std::string_view s) {
  for (auto v : {FwdMode::Dsr, FwdMode::Ipip, FwdMode::Gue, FwdMode::Nat})
    if (toString(v) == s) return v;
  return std::nullopt;
}

}  // namespace l4lb
