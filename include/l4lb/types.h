// Small enums shared by the control plane and the data plane.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace l4lb {

enum class Proto : uint8_t { Tcp = 6, Udp = 17 };

enum class Scheduler : uint8_t { Maglev, SourceHash, RoundRobin, WeightedRoundRobin };

enum class FwdMode : uint8_t { Dsr, Ipip, Gue, Nat };

// Healthy: in the Maglev table and keeps its flows. Draining: out of the table (no new flows)
// but keeps existing flows. Unhealthy: out of the table, its flows are re-hashed.
enum class BackendState : uint8_t { Healthy, Draining, Unhealthy };

std::string_view toString(Proto p);
std::string_view toString(Scheduler s);
std::string_view toString(FwdMode m);
std::string_view toString(BackendState s);
std::optional<Proto> parseProto(std::string_view s);
std::optional<Scheduler> parseScheduler(std::string_view s);
std::optional<FwdMode> parseFwdMode(std::string_view s);

}  // namespace l4lb
