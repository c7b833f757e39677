#include "control/log.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

namespace l4lb::control {

namespace {
LogLevel g_level = LogLevel::Info;
}  // namespace

void setLogLevel(LogLevel l) { g_level = l; }

void logMsg(LogLevel l, const std::string& msg) {
  if (l < g_level) return;
  timeval tv;
  gettimeofday(&tv, nullptr);
  std::tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::fprintf(stderr, "%s.%03ldZ l4lb %s: %s\n", ts, long(tv.tv_usec / 1000), std::string(enumName(l)).c_str(), msg.c_str());
}

}  // namespace l4lb::control
