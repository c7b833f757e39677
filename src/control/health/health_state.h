// The per-backend health state machine, with no clock and no sockets, so every rule is a unit
// test. Envoy/keepalived semantics: a backend whose state is not yet known takes the first
// result; afterwards `rise` consecutive successes take Down to Up and `fall` consecutive
// failures take Up to Down. Anything in between leaves the state alone (hysteresis: one lost
// probe does not flap a backend).
#pragma once

#include <cstdint>
#include <string_view>

#include "l4lb/enum_names.h"

namespace l4lb::control {

enum class Health : uint8_t { Unknown, Up, Down };

}  // namespace l4lb::control

template <>
struct l4lb::EnumNames<l4lb::control::Health> {
  using Health = l4lb::control::Health;
  static constexpr std::array<EnumName<Health>, 3> kTable{
      {{Health::Unknown, "unknown"}, {Health::Up, "up"}, {Health::Down, "down"}}};
};
static_assert(l4lb::enumTableDense(l4lb::control::Health::Down));

namespace l4lb::control {

constexpr std::string_view toString(Health h) { return enumName(h); }

class HealthState {
 public:
  struct Step {
    bool changed;
    Health from;
    Health to;
  };

  // Records one probe result; rise and fall are >= 1 (the config loader's ranges).
  Step record(bool success, uint32_t rise, uint32_t fall);
  // Forces a state (type none: always Up) without a probe.
  Step force(Health to);

  Health state() const { return state_; }
  uint32_t successes() const { return successes_; }  // consecutive
  uint32_t failures() const { return failures_; }    // consecutive

 private:
  Health state_ = Health::Unknown;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

}  // namespace l4lb::control
