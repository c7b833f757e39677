#include "control/health/health_state.h"

namespace l4lb::control {

HealthState::Step HealthState::record(bool success, uint32_t rise, uint32_t fall) {
  const Health from = state_;
  if (success) {
    failures_ = 0;
    if (successes_ < UINT32_MAX) successes_++;
    if (state_ == Health::Unknown || (state_ == Health::Down && successes_ >= rise))
      state_ = Health::Up;
  } else {
    successes_ = 0;
    if (failures_ < UINT32_MAX) failures_++;
    if (state_ == Health::Unknown || (state_ == Health::Up && failures_ >= fall))
      state_ = Health::Down;
  }
  return {state_ != from, from, state_};
}

HealthState::Step HealthState::force(Health to) {
  const Health from = state_;
  state_ = to;
  successes_ = 0;
  failures_ = 0;
  return {to != from, from, to};
}

}  // namespace l4lb::control
