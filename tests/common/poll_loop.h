// The loop of the fake servers in the control-plane tests (health-probe targets, BIRD's control
// socket): a thread that calls `on_readable` each time a descriptor becomes readable, until
// stop(). poll() wakes every 20 ms to see stop(), so stop() returns within about that plus the
// callback's own time; a callback that waits itself should use readable() and stopping().
#pragma once

#include <poll.h>

#include <atomic>
#include <functional>
#include <thread>

namespace l4lb::test {

// poll(fd, POLLIN) within `timeout_ms`.
inline bool readable(int fd, int timeout_ms = 20) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

class PollLoop {
 public:
  PollLoop() = default;
  PollLoop(const PollLoop&) = delete;
  PollLoop& operator=(const PollLoop&) = delete;
  ~PollLoop() { stop(); }

  void start(int fd, std::function<void()> on_readable) {
    on_readable_ = std::move(on_readable);
    stop_ = false;
    thread_ = std::thread([this, fd] {
      while (!stop_)
        if (readable(fd)) on_readable_();
    });
  }
  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
  }
  bool running() const { return thread_.joinable(); }
  bool stopping() const { return stop_; }

 private:
  std::function<void()> on_readable_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace l4lb::test
