// Config loader: TOML text -> validated Config, or every error found, each naming its place as
// "file:line:col: key.path: message". Nothing here throws out of loadConfig*: toml++ parse
// errors and anything unexpected become messages. The generic TOML reading is toml_reader.h;
// the sections and their keys are config_schema.h.
#include "control/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "control/config_schema.h"
#include "control/toml_reader.h"

namespace l4lb::control {

std::string ConfigError::str() const {
  std::string out;
  for (size_t i = 0; i < messages.size(); i++) {
    if (i > 0) out += '\n';
    out += messages[i];
  }
  return out;
}

namespace {

ConfigResult load(std::string_view text, const std::string& name) {
  ConfigResult result;
  reader::Reader r(name);
  Config config;
  try {
    if (auto root = r.parse(text)) ConfigSchema(r, config).load(*root);
  } catch (const std::exception& e) {
    // Only std::bad_alloc and the like can get here; report rather than escape.
    r.internalError(e.what());
  } catch (...) {
    r.internalError("");
  }
  result.keys = r.askedKeys();
  if (!r.failed()) {
    config.path = name;
    result.config = std::move(config);
    return result;
  }
  result.error.messages = r.takeMessages();
  return result;
}

// Reads with open/read rather than streams so the message carries the real errno.
std::optional<std::string> readFile(const std::string& path, int& err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

ConfigResult loadConfigString(std::string_view toml, const std::string& name) {
  return load(toml, name);
}

ConfigResult loadConfigFile(const std::string& path) {
  ConfigResult r;
  try {
    int err = 0;
    auto text = readFile(path, err);
    if (!text) {
      r.error.messages.push_back(path + ": cannot read: " + std::strerror(err));
      return r;
    }
    return loadConfigString(*text, path);
  } catch (const std::exception& e) {
    r.error.messages.push_back(path + ": internal error: " + e.what());
    return r;
  }
}

}  // namespace l4lb::control

namespace l4lb::control {

std::optional<std::pair<IpAddr, uint16_t>> parseListenAddr(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + uint32_t(c - '0');
  }
  if (p == 0 || p > 65535) return std::nullopt;
  auto a = IpAddr::parse(host);
  if (!a || (s[0] == '[') == a->isV4()) return std::nullopt;
  return std::make_pair(*a, uint16_t(p));
}

}  // namespace l4lb::control
