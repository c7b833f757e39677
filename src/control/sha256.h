// SHA-256 (FIPS 180-4) of a config file's bytes, so `l4lbctl status` shows the same digest as
// sha256sum(1) and an operator can tell which file the daemon runs.
#pragma once

#include <string>
#include <string_view>

namespace l4lb::control {

std::string sha256Hex(std::string_view data);
// SHA-256 of a file's bytes, "" when it cannot be read.
std::string fileSha256Of(const std::string& path);

}  // namespace l4lb::control
