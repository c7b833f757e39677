// l4lbctl top: rates computed client-side from two `stats` replies taken an interval apart (and
// the health state from a `backends` reply), and the frame drawn from them. Pure functions, no
// socket I/O and no clock: unit-tested with exact numbers and text (tests/unit/ctl/top_test.cc).
//
// A counter that went down between the samples (the daemon restarted, or a reload recreated
// the backend) gives a rate of 0, never a negative or huge one. A VIP, backend or worker that
// only the later sample has is measured from 0 (it appeared during the interval).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/commands.h"

namespace l4lb::ctl {

// Commands l4lbctl runs itself out of daemon commands: listed in --help and --commands, never
// sent to the daemon (which does not know them).
inline constexpr control::api::CommandSpec kClientCommands[] = {
    {"top", "[--once] [--interval S]", 0, 4, "live rates per VIP, backend and worker, drops/s (from stats)"},
};

struct TopRates {
  double packets_per_s = 0, bytes_per_s = 0, flows_new_per_s = 0;
  uint64_t active_flows = 0;  // the later sample's gauge
};

struct TopVip {
  std::string vip;
  TopRates rates;
};

struct TopBackend {
  std::string vip, backend;
  std::string state;   // the data plane's view: healthy, unhealthy, drained... (stats)
  std::string health;  // the checker's: healthy, unhealthy, not checked... ("-" without a backends reply)
  TopRates rates;
};

struct TopWorker {
  uint64_t worker = 0;
  double busy_ratio = 0;  // the daemon's own measure, from the later sample
  double rx_packets_per_s = 0, tx_packets_per_s = 0;
};

struct TopFrame {
  double seconds = 0;
  std::vector<TopVip> vips;
  std::vector<TopBackend> backends;
  std::vector<std::pair<std::string, double>> drops_per_s;  // non-zero only, in the reply's order
  std::vector<TopWorker> workers;
};

// `before`/`after`: `stats` replies `seconds` apart; `backends`: a `backends` reply (or null)
// for the health column. seconds <= 0 gives all rates 0.
TopFrame computeTop(const nlohmann::json& before, const nlohmann::json& after, double seconds,
                    const nlohmann::json& backends = nullptr);
// The frame as text; lines cut to `width` columns (width <= 0: not cut).
std::string renderTop(const TopFrame& f, int width);
// The frame as one JSON object (l4lbctl top --json), rates unrounded.
nlohmann::json topJson(const TopFrame& f);
// A rate as a short cell: "0", "12.5", "12.5k", "3.4M", "1.2G".
std::string shortRate(double v);

}  // namespace l4lb::ctl
