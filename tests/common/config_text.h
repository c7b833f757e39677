// Configuration documents for the loader's unit tests (config_test, config_fullnat_test): the
// common first lines, and the loader's messages for a document that must fail.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "control/config.h"

namespace l4lb::test {

// Lines 1-5 of most documents: a valid [eal] and one port. VIPs start on line 6.
inline const std::string kConfigPrelude =
    "[eal]\n"
    "worker_cores = [1]\n"
    "[[ports]]\n"
    "name = \"wan\"\n"
    "device = \"0000:01:00.0\"\n";

// Loads a document (as "t.toml") that must fail and returns all its messages.
inline std::string configErrorsOf(const std::string& doc) {
  control::ConfigResult r = control::loadConfigString(doc, "t.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.config.has_value());
  return r.error.str();
}

}  // namespace l4lb::test
