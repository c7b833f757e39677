// The control plane's one logging path (stderr, which journald captures under systemd). Levels
// filter at the call; the data plane never logs, it counts.
#pragma once

#include <string>

namespace l4lb::control {

enum class LogLevel { Debug, Info, Warning, Error };

void setLogLevel(LogLevel l);
void logMsg(LogLevel l, const std::string& msg);
inline void logInfo(const std::string& m) { logMsg(LogLevel::Info, m); }
inline void logWarn(const std::string& m) { logMsg(LogLevel::Warning, m); }
inline void logError(const std::string& m) { logMsg(LogLevel::Error, m); }

}  // namespace l4lb::control
