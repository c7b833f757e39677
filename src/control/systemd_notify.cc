#include "control/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>

#include "control/log.h"

namespace l4lb::control {

SystemdNotifier::SystemdNotifier() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  enabled_ = sock != nullptr && *sock != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is ours).
  // Ping at half the timeout (sd_watchdog_enabled(3)); the control loop's timer runs once a
  // second, so WatchdogSec= below 2 s cannot be honoured.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ms_ = std::max<uint64_t>(usec / 2000, 1);
}

void SystemdNotifier::send(const std::string& msg) {
  if (!enabled_) return;
  const int r = sd_notify(0, msg.c_str());
  if (r < 0) logWarn("sd_notify: " + std::string(msg.substr(0, msg.find('\n'))) + ": error " + std::to_string(-r));
}

void SystemdNotifier::ready(const std::string& st) { send("READY=1\nSTATUS=" + st); }

void SystemdNotifier::reloading() { send("RELOADING=1\nSTATUS=reloading"); }

void SystemdNotifier::status(const std::string& st) { send("STATUS=" + st); }

void SystemdNotifier::stopping() { send("STOPPING=1\nSTATUS=stopping"); }

bool SystemdNotifier::watchdog(uint64_t now_ms, const std::vector<uint64_t>& worker_loops) {
  if (watchdog_ms_ == 0) return false;
  // 10 % slack: the 1 s timer that calls this does not fire exactly on the interval.
  if (last_ping_ms_ != 0 && now_ms - last_ping_ms_ < watchdog_ms_ * 9 / 10) return false;
  const bool moved = last_loops_.size() != worker_loops.size() || [&] {
    for (size_t i = 0; i < worker_loops.size(); i++)
      if (worker_loops[i] == last_loops_[i]) return false;
    return true;
  }();
  // A worker whose counter stood still since the last ping is stuck (a polling worker loops
  // millions of times a second): no ping, and the old counters stay the reference, so the pings
  // resume only once every worker has moved again.
  if (!moved) return false;
  last_loops_ = worker_loops;
  last_ping_ms_ = now_ms;
  send("WATCHDOG=1");
  return true;
}

}  // namespace l4lb::control
