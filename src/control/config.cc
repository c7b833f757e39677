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
  result.sections = r.tableHeaders();
  result.notes = r.takeNotes();
  if (!r.failed()) {
    config.path = name;
    config.text = std::string(text);
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

// The node `keyPath` ("vips[0].backends[1].mac") names, or the deepest one of its ancestors the
// document has; null when not even the first key is there.
const toml::node* deepestNode(const toml::table& root, std::string_view keyPath) {
  const toml::node* at = nullptr;
  const toml::node* cur = &root;
  size_t i = 0;
  while (i < keyPath.size() && cur != nullptr) {
    const size_t end = keyPath.find_first_of(".[", i);
    const std::string_view key = keyPath.substr(i, end == std::string_view::npos ? end : end - i);
    cur = cur->is_table() ? cur->as_table()->get(key) : nullptr;
    if (cur == nullptr) break;
    at = cur;
    i = end == std::string_view::npos ? keyPath.size() : end;
    while (i < keyPath.size() && keyPath[i] == '[') {
      const size_t close = keyPath.find(']', i);
      if (close == std::string_view::npos) return at;
      size_t index = 0;
      for (char c : keyPath.substr(i + 1, close - i - 1)) index = index * 10 + size_t(c - '0');
      cur = cur->is_array() ? cur->as_array()->get(index) : nullptr;
      if (cur == nullptr) return at;
      at = cur;
      i = close + 1;
    }
    if (i < keyPath.size() && keyPath[i] == '.') i++;
  }
  return at;
}

}  // namespace

std::vector<std::string> placeMessages(const std::string& path, const std::vector<std::string>& messages) {
  std::vector<std::string> out;
  std::optional<toml::table> root;
  int err = 0;
  if (auto text = readFile(path, err)) {
    reader::Reader r(path);
    root = r.parse(*text);
  }
  for (const std::string& m : messages) {
    // A key path is the text before the first ": " when it has no space ("ports: 3 configured").
    const size_t colon = m.find(": ");
    const std::string_view keyPath = std::string_view(m).substr(0, colon == std::string::npos ? 0 : colon);
    const toml::node* n = root && keyPath.find(' ') == std::string_view::npos ? deepestNode(*root, keyPath) : nullptr;
    if (n == nullptr) {
      out.push_back(path + ": " + m);
      continue;
    }
    const toml::source_position at = n->source().begin;
    out.push_back(path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " + m);
  }
  return out;
}

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
