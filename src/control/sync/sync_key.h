// The flow-sync shared key ([sync].key_file): 32 bytes written as 64 hex characters (an optional
// trailing newline is allowed, nothing else). Every balancer of a cluster holds the same file;
// whoever can read it can forge flow records (redirect any flow to any backend), so a file that
// group or other may read is refused, as ssh refuses a private key with such a mode.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace l4lb::control {

inline constexpr size_t kSyncKeyBytes = 32;
using SyncKey = std::array<uint8_t, kSyncKeyBytes>;

// Reads and checks the key file; nullopt with `err` saying what is wrong ("mode 0644 lets
// group/other read it; chmod 600 it", "must hold 64 hex characters (got 63)", ...).
std::optional<SyncKey> readSyncKey(const std::string& path, std::string& err);

// 64 hex characters (either case), optionally followed by one "\n" or "\r\n"; nullopt otherwise.
std::optional<SyncKey> parseSyncKey(std::string_view text, std::string& err);

}  // namespace l4lb::control
