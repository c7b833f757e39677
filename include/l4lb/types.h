// Small enums shared by the control plane and the data plane, each with its one name table
// (enum_names.h): the names the config file accepts are the names the API and logs print.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "l4lb/enum_names.h"

namespace l4lb {

enum class Proto : uint8_t { Tcp = 6, Udp = 17 };

enum class Scheduler : uint8_t { Maglev, SourceHash, RoundRobin, WeightedRoundRobin };

enum class FwdMode : uint8_t { Dsr, Ipip, Gue, Nat, FullNat };

// What a VIP does with IP fragments. track: a first fragment is scheduled as its 5-tuple and
// the later ones follow it (dataplane/frag_table.h); drop: every fragment is a counted drop
// (Drop::Fragment).
enum class FragPolicy : uint8_t { Track, Drop };

// Healthy: in the Maglev table and keeps its flows. Draining: out of the table (no new flows)
// but keeps existing flows. Unhealthy: out of the table, its flows are re-hashed.
enum class BackendState : uint8_t { Healthy, Draining, Unhealthy };

template <>
struct EnumNames<Proto> {
  static constexpr std::array<EnumName<Proto>, 2> kTable{{{Proto::Tcp, "tcp"}, {Proto::Udp, "udp"}}};
};
static_assert(enumTableUnique<Proto>());

template <>
struct EnumNames<FragPolicy> {
  static constexpr std::array<EnumName<FragPolicy>, 2> kTable{{{FragPolicy::Track, "track"}, {FragPolicy::Drop, "drop"}}};
};
static_assert(enumTableDense(FragPolicy::Drop));

template <>
struct EnumNames<Scheduler> {
  static constexpr std::array<EnumName<Scheduler>, 4> kTable{{
      {Scheduler::Maglev, "maglev"},
      {Scheduler::SourceHash, "source_hash"},
      {Scheduler::RoundRobin, "round_robin"},
      {Scheduler::WeightedRoundRobin, "weighted_round_robin"},
  }};
};
static_assert(enumTableDense(Scheduler::WeightedRoundRobin));

template <>
struct EnumNames<FwdMode> {
  static constexpr std::array<EnumName<FwdMode>, 5> kTable{{
      {FwdMode::Dsr, "dsr"},
      {FwdMode::Ipip, "ipip"},
      {FwdMode::Gue, "gue"},
      {FwdMode::Nat, "nat"},
      {FwdMode::FullNat, "fullnat"},
  }};
};
static_assert(enumTableDense(FwdMode::FullNat));

template <>
struct EnumNames<BackendState> {
  static constexpr std::array<EnumName<BackendState>, 3> kTable{{
      {BackendState::Healthy, "healthy"},
      {BackendState::Draining, "draining"},
      {BackendState::Unhealthy, "unhealthy"},
  }};
};
static_assert(enumTableDense(BackendState::Unhealthy));

constexpr std::string_view toString(Proto p) { return enumName(p); }
constexpr std::string_view toString(Scheduler s) { return enumName(s); }
constexpr std::string_view toString(FwdMode m) { return enumName(m); }
constexpr std::string_view toString(BackendState s) { return enumName(s); }
constexpr std::optional<Proto> parseProto(std::string_view s) { return parseEnum<Proto>(s); }
constexpr std::optional<Scheduler> parseScheduler(std::string_view s) { return parseEnum<Scheduler>(s); }
constexpr std::optional<FwdMode> parseFwdMode(std::string_view s) { return parseEnum<FwdMode>(s); }

}  // namespace l4lb
