// The health state machine alone: first result decides, then rise/fall hysteresis.
#include "control/health/health_state.h"

#include <gtest/gtest.h>

#include <string>

namespace l4lb::control {
namespace {

// Feeds "s"/"f" results and returns the state after each as "U"/"D".
std::string run(HealthState& st, const std::string& results, uint32_t rise, uint32_t fall) {
  std::string out;
  for (char c : results) {
    st.record(c == 's', rise, fall);
    out += st.state() == Health::Up ? 'U' : st.state() == Health::Down ? 'D' : '?';
  }
  return out;
}

TEST(HealthState, StartsUnknown) {
  HealthState st;
  EXPECT_EQ(st.state(), Health::Unknown);
  EXPECT_EQ(st.successes(), 0u);
  EXPECT_EQ(st.failures(), 0u);
  EXPECT_EQ(toString(Health::Unknown), "unknown");
  EXPECT_EQ(toString(Health::Up), "up");
  EXPECT_EQ(toString(Health::Down), "down");
}

TEST(HealthState, FirstSuccessIsUpAtOnce) {
  HealthState st;
  HealthState::Step s = st.record(true, 5, 5);
  EXPECT_TRUE(s.changed);
  EXPECT_EQ(s.from, Health::Unknown);
  EXPECT_EQ(s.to, Health::Up);
  EXPECT_EQ(st.successes(), 1u);
}

TEST(HealthState, FirstFailureIsDownAtOnce) {
  HealthState st;
  HealthState::Step s = st.record(false, 5, 5);
  EXPECT_TRUE(s.changed);
  EXPECT_EQ(s.from, Health::Unknown);
  EXPECT_EQ(s.to, Health::Down);
  EXPECT_EQ(st.failures(), 1u);
}

TEST(HealthState, FallConsecutiveFailuresTakeUpToDown) {
  HealthState st;
  EXPECT_EQ(run(st, "sfffs", 2, 3), "UUUDD");
  EXPECT_EQ(st.successes(), 1u);
  EXPECT_EQ(st.failures(), 0u);
}

TEST(HealthState, ASuccessResetsTheFailureCount) {
  HealthState st;
  EXPECT_EQ(run(st, "sffsffsfff", 2, 3), "UUUUUUUUUD");
}

TEST(HealthState, RiseConsecutiveSuccessesTakeDownToUp) {
  HealthState st;
  EXPECT_EQ(run(st, "fssfsss", 3, 2), "DDDDDDU");
}

TEST(HealthState, RiseAndFallOfOneFlipOnEveryChange) {
  HealthState st;
  EXPECT_EQ(run(st, "sfsfss", 1, 1), "UDUDUU");
}

TEST(HealthState, StepsReportOnlyRealChanges) {
  HealthState st;
  st.record(true, 2, 2);
  HealthState::Step s = st.record(false, 2, 2);
  EXPECT_FALSE(s.changed);
  EXPECT_EQ(s.from, Health::Up);
  EXPECT_EQ(s.to, Health::Up);
  s = st.record(false, 2, 2);
  EXPECT_TRUE(s.changed);
  EXPECT_EQ(s.from, Health::Up);
  EXPECT_EQ(s.to, Health::Down);
}

TEST(HealthState, ForceSetsStateAndClearsCounts) {
  HealthState st;
  st.record(false, 2, 2);
  HealthState::Step s = st.force(Health::Up);
  EXPECT_TRUE(s.changed);
  EXPECT_EQ(s.from, Health::Down);
  EXPECT_EQ(st.state(), Health::Up);
  EXPECT_EQ(st.failures(), 0u);
  EXPECT_FALSE(st.force(Health::Up).changed);
}

}  // namespace
}  // namespace l4lb::control
