// The schema of [sync]: flow sync between balancers (control/sync/). Every key is read with
// TableReader::get, whether or not sync is enabled, so a typo is an error either way; the key
// file is read only when enabled (a disabled section must not fail on a machine without it).
#include <algorithm>

#include "control/config_schema.h"
#include "control/sync/sync_key.h"

namespace l4lb::control {

using reader::element;
using reader::quote;

namespace {

// Each datagram goes to every peer: the sender's cost grows with the list.
constexpr size_t kMaxSyncPeers = 32;
constexpr uint32_t kMinAnnounceMs = 100;
constexpr uint32_t kMaxAnnounceMs = 3'600'000;

bool isUnspecified(const IpAddr& a) {
  return std::all_of(a.bytes.begin(), a.bytes.end(), [](uint8_t b) { return b == 0; });
}

bool isMulticast(const IpAddr& a) { return a.isV4() ? (a.bytes[0] & 0xf0) == 0xe0 : a.bytes[0] == 0xff; }

}  // namespace

std::string SyncEndpoint::str() const {
  return addr.isV4() ? addr.str() + ":" + std::to_string(port) : "[" + addr.str() + "]:" + std::to_string(port);
}

std::optional<SyncEndpoint> ConfigSchema::syncEndpoint(const Field& f) {
  auto s = r_.string(f);
  if (!s) return std::nullopt;
  auto l = parseListenAddr(*s);
  if (!l) {
    r_.report(f, "must be \"ADDR:PORT\" or \"[ADDR6]:PORT\" with a port 1..65535 (got " + quote(*s) + ")");
    return std::nullopt;
  }
  if (isMulticast(l->first)) {
    r_.report(f, "must be a unicast address (got " + quote(*s) + ")");
    return std::nullopt;
  }
  return SyncEndpoint{l->first, l->second};
}

void ConfigSchema::loadSync(const Field& f) {
  TableReader t(r_, f);
  if (!t) return;
  SyncConfig& sc = config_.sync;
  sc.enabled = true;  // writing the table asks for sync; enabled = false turns it off
  const Field enabled = t.get("enabled");
  const Field listen = t.get("listen");
  const Field peers = t.get("peers");
  const Field keyFile = t.get("key_file");
  const Field announce = t.get("announce_interval");
  if (enabled)
    if (auto x = r_.boolean(enabled)) sc.enabled = *x;

  bool listenOk = false;
  if (listen) {
    if (auto e = syncEndpoint(listen)) {
      sc.listen = *e;
      listenOk = true;
    }
  } else if (sc.enabled) {
    t.report(listen, "is required when sync is enabled (the UDP ADDR:PORT to bind)");
  }

  if (peers) {
    if (auto* arr = peers->as_array()) {
      if (arr->empty() && sc.enabled) r_.report(peers, "must list at least one peer when sync is enabled");
      if (arr->size() > kMaxSyncPeers)
        r_.report(peers, "must list at most " + std::to_string(kMaxSyncPeers) + " peers");
      for (size_t i = 0; i < arr->size() && i < kMaxSyncPeers; i++) {
        const Field e{arr->get(i), element(peers.path, i)};
        auto p = syncEndpoint(e);
        if (!p) continue;
        if (isUnspecified(p->addr)) {
          r_.report(e, "must not be the unspecified address");
        } else if (listenOk && p->addr.family != sc.listen.addr.family) {
          r_.report(e, "must be of the same family as sync.listen (" + sc.listen.str() + ")");
        } else if (listenOk && *p == sc.listen) {
          r_.report(e, p->str() + " is sync.listen itself");
        } else if (auto it = std::find(sc.peers.begin(), sc.peers.end(), *p); it != sc.peers.end()) {
          r_.report(e, p->str() + " is listed twice");
        } else {
          sc.peers.push_back(*p);
        }
      }
    } else {
      r_.report(peers, "must be an array of \"ADDR:PORT\" strings");
    }
  } else if (sc.enabled) {
    t.report(peers, "is required when sync is enabled (the peers' ADDR:PORT)");
  }

  if (keyFile) {
    if (auto x = r_.string(keyFile)) {
      if (x->empty() || (*x)[0] != '/') {
        r_.report(keyFile, "must be an absolute path (got " + quote(*x) + ")");
      } else {
        sc.key_file = *x;
        std::string err;
        if (sc.enabled) {
          if (auto key = readSyncKey(*x, err)) sc.key = *key;
          else r_.report(keyFile, err);
        }
      }
    }
  } else if (sc.enabled) {
    t.report(keyFile, "is required when sync is enabled (a file with the cluster's 32-byte key in hex)");
  }

  if (announce) {
    if (auto ms = r_.secondsAsMs(announce)) {
      // A peer ages a synced flow out like its own: re-announcing less often than the shortest
      // idle timeout of an established flow would let peers forget live flows.
      const uint32_t shortest = std::min(config_.flow_table.udp_timeout_ms, config_.flow_table.tcp_established_timeout_ms);
      if (*ms < kMinAnnounceMs || *ms > kMaxAnnounceMs)
        r_.report(announce, "must be between 0.1 and 3600 seconds");
      else if (*ms >= shortest)
        r_.report(announce, "must be shorter than flow_table.udp_timeout and flow_table.tcp_established_timeout (" +
                                std::to_string(shortest) + " ms), or peers age live flows out");
      else
        sc.announce_interval_ms = *ms;
    }
  }
}

}  // namespace l4lb::control
