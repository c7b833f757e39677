// The control plane's one logging path (stderr, which journald captures under systemd). Levels
// filter at the call; the data plane never logs, it counts.
#pragma once

#include <string>

#include "l4lb/enum_names.h"

namespace l4lb::control {

enum class LogLevel { Debug, Info, Warning, Error };

}  // namespace l4lb::control

// The names [log] level accepts and each log line prints.
template <>
struct l4lb::EnumNames<l4lb::control::LogLevel> {
  using LogLevel = l4lb::control::LogLevel;
  static constexpr std::array<EnumName<LogLevel>, 4> kTable{{{LogLevel::Debug, "debug"},
                                                              {LogLevel::Info, "info"},
                                                              {LogLevel::Warning, "warning"},
                                                              {LogLevel::Error, "error"}}};
};
static_assert(l4lb::enumTableDense(l4lb::control::LogLevel::Error));

namespace l4lb::control {

void setLogLevel(LogLevel l);
void logMsg(LogLevel l, const std::string& msg);
inline void logInfo(const std::string& m) { logMsg(LogLevel::Info, m); }
inline void logWarn(const std::string& m) { logMsg(LogLevel::Warning, m); }
inline void logError(const std::string& m) { logMsg(LogLevel::Error, m); }

}  // namespace l4lb::control
