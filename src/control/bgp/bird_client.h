// A client of BIRD 2's control socket (what birdc speaks): one command at a time, each bounded
// by a deadline so the control thread never waits on BIRD for longer than `timeout_ms`.
//
// The protocol (BIRD's doc/reply_codes, birdc's server_got_reply): a Unix stream socket; the
// client sends one command line; BIRD answers lines "NNNN-text" (more follows), " text"
// (continuation of the previous code) and ends the reply with "NNNN text" (a space after the
// code). 0xxx: done, 1xxx: table row, 2xxx: table heading, 8xxx: run-time error, 9xxx: parse
// error; lines starting with '+' are spontaneous output (ignored). On connect BIRD greets with
// "0001 BIRD x.y.z ready.".
//
// Thread: the control thread only. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace l4lb::control::bgp {

struct BirdReply {
  bool ok = false;   // the reply arrived whole and its final code is not an error (< 8000)
  int code = -1;     // final line's code; -1: no reply (transport error, timeout)
  // Every line as (code, text); a continuation line carries the code of the line before it.
  std::vector<std::pair<int, std::string>> lines;
  std::string error;  // !ok: "connect /run/bird/bird.ctl: No such file..." or BIRD's error text
  bool timed_out = false;
  // The text of the final line (BIRD's verdict: "Reconfigured", "syntax error ...").
  std::string last() const { return lines.empty() ? std::string() : lines.back().second; }
};

// One BGP protocol as `show protocols` lists it.
struct BirdProtocol {
  std::string name, proto, table, state, since, info;
  bool sessionUp() const { return info.rfind("Established", 0) == 0; }
};

class BirdClient {
 public:
  BirdClient(std::string socket_path, uint32_t timeout_ms) : path_(std::move(socket_path)), timeout_ms_(timeout_ms) {}
  ~BirdClient() { close(); }
  BirdClient(const BirdClient&) = delete;
  BirdClient& operator=(const BirdClient&) = delete;

  // Sends `cmd` (connecting first when not connected) and reads its whole reply, within
  // timeout_ms in all. A transport error or a timeout closes the connection (its state is
  // unknown); the next command reconnects.
  BirdReply command(const std::string& cmd);
  void close();
  bool connected() const { return fd_ >= 0; }
  const std::string& socketPath() const { return path_; }

 private:
  bool connectTo(uint64_t deadline_ms, BirdReply& r);
  bool readReply(uint64_t deadline_ms, BirdReply& r);

  std::string path_;
  uint32_t timeout_ms_;
  int fd_ = -1;
  std::string buf_;  // bytes read past the last complete line
};

// `configure` succeeded: 0003 Reconfigured, 0004 Reconfiguration in progress, 0005 ... queueing,
// 0019 Nothing to do. Anything else (8002 "file:line:col syntax error", 0006 "ignored, shutting
// down") is a failure.
bool configureAccepted(const BirdReply& r);

// The rows of `show protocols` (code 1002) whose protocol is BGP. The columns are Name, Proto,
// Table, State, Since (one or two words: time, or date and time) and Info (the rest).
std::vector<BirdProtocol> parseBgpProtocols(const BirdReply& r);

}  // namespace l4lb::control::bgp
