// The TOML configurations of the tests, kept as files in tests/common/configs/ so that the C++
// tests, the fuzzers and the Python tests (and tests/fuzz/make_seeds.py) read the same text.
// L4LB_TEST_CONFIG_DIR is the absolute path of that directory, set by tests/meson.build and
// tests/fuzz/meson.build. A missing file aborts: a test must not run on an empty config.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#ifndef L4LB_TEST_CONFIG_DIR
#error "L4LB_TEST_CONFIG_DIR must name tests/common/configs"
#endif

namespace l4lb::test {

inline std::string configText(std::string_view name) {
  const std::string path = std::string(L4LB_TEST_CONFIG_DIR) + "/" + std::string(name);
  std::ifstream f(path);
  if (!f) {
    fprintf(stderr, "test config %s: cannot read\n", path.c_str());
    abort();
  }
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace l4lb::test
