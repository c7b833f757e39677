// systemd's service notification protocol (sd_notify(3), libsystemd): READY=1 once the workers
// forward with the first snapshot published, STATUS= lines, RELOADING=1 / READY=1 around a
// reload, and the watchdog (WATCHDOG=1, sd_watchdog_enabled(3)). Where NOTIFY_SOCKET is unset
// (not under systemd, or Type=simple) every call is a no-op. Control thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace l4lb::control {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET / WATCHDOG_USEC (and WATCHDOG_PID) once.
  SystemdNotifier();

  bool enabled() const { return enabled_; }
  // The interval to ping at (half of WatchdogSec=), 0 when the watchdog is off.
  uint64_t watchdogIntervalMs() const { return watchdog_ms_; }

  void ready(const std::string& status);
  void reloading();
  void status(const std::string& status);
  void stopping();

  // Called from the control loop's timer with every worker's loop counter: pings the watchdog
  // only when each counter moved since the last ping (a stuck worker, or a stuck control loop
  // that never gets here, stops the pings and systemd restarts the daemon). At most one ping per
  // watchdogIntervalMs(). Returns true when it pinged.
  bool watchdog(uint64_t now_ms, const std::vector<uint64_t>& worker_loops);

 private:
  void send(const std::string& msg);
  bool enabled_ = false;
  uint64_t watchdog_ms_ = 0;
  uint64_t last_ping_ms_ = 0;
  std::vector<uint64_t> last_loops_;
};

}  // namespace l4lb::control
