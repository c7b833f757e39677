#include "control/sync/sync_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <rte_ring_elem.h>

#include "control/log.h"

namespace l4lb::control::sync {

namespace {

uint64_t clockMs(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
}

socklen_t toSockaddr(const SyncEndpoint& e, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof(ss));
  if (e.addr.isV4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(e.port);
    std::memcpy(&s->sin_addr, e.addr.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(e.port);
  std::memcpy(&s->sin6_addr, e.addr.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

bool fromSockaddr(const sockaddr_storage& ss, IpAddr& a, uint16_t& port) {
  if (ss.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    a = IpAddr::v4(s->sin_addr.s_addr);
    port = ntohs(s->sin_port);
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    a = IpAddr::v6(s->sin6_addr.s6_addr);
    port = ntohs(s->sin6_port);
    return true;
  }
  return false;
}

using Counter = std::atomic<uint64_t>;
void bump(Counter& c, uint64_t n = 1) { SyncCounters::bump(c, n); }
uint64_t get(const Counter& c) { return c.load(std::memory_order_relaxed); }

}  // namespace

SyncService::SyncService(SyncServiceOptions o) : o_(std::move(o)), peers_(o_.peers), ctr_(o_.peers.size()) {}

SyncService::~SyncService() { stop(); }

bool SyncService::start(std::string& err) {
  if (sodium_init() < 0) {
    err = "sync: libsodium failed to initialise";
    return false;
  }
  randombytes_buf(&boot_id_, sizeof(boot_id_));
  sequence_ = 0;
  const std::string where = "sync.listen " + o_.listen.str();
  sockaddr_storage ss;
  const socklen_t len = toSockaddr(o_.listen, ss);
  fd_ = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    err = where + ": socket: " + std::strerror(errno);
    return false;
  }
  const int one = 1;
  if (ss.ss_family == AF_INET6) ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Room for bursts of datagrams between two rounds (best effort: capped by rmem_max).
  const int rcvbuf = 4 << 20;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    err = where + ": bind: " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  stop_.store(false);
  last_rate_mono_ = clockMs(CLOCK_MONOTONIC);
  thread_ = std::thread([this] { run(); });
  return true;
}

void SyncService::stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void SyncService::run() {
  pollfd p{fd_, POLLIN, 0};
  bool backlog = false;
  while (!stop_.load(std::memory_order_acquire)) {
    p.revents = 0;
    ::poll(&p, 1, backlog ? 0 : kSyncPollMs);
    const uint64_t mono = clockMs(CLOCK_MONOTONIC), wall = clockMs(CLOCK_REALTIME);
    if (p.revents & POLLIN) receive(mono, wall);
    backlog = drainAndSend(mono, wall);
    if (mono - last_send_mono_ >= kSyncHeartbeatMs) send({}, mono, wall);
    if (mono - last_rate_mono_ >= 1000) updateRates(mono);
  }
}

void SyncService::receive(uint64_t now_mono, uint64_t now_wall) {
  alignas(8) uint8_t buf[kMaxSyncDatagramBytes + 1];
  for (unsigned i = 0; i < kSyncRecvPerRound; i++) {
    sockaddr_storage from{};
    socklen_t flen = sizeof(from);
    // MSG_TRUNC: the datagram's real length, so an oversize one is refused by its length.
    const ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 0) break;  // EAGAIN: nothing more; anything else: next round
    IpAddr a;
    uint16_t port = 0;
    if (!fromSockaddr(from, a, port)) continue;
    const size_t len = size_t(n) > sizeof(buf) ? sizeof(buf) : size_t(n);
    handle({buf, len}, a, port, now_mono, now_wall);
  }
}

void SyncService::handle(std::span<const uint8_t> d, const IpAddr& from, uint16_t port, uint64_t now_mono,
                         uint64_t now_wall) {
  const auto pi = peers_.find(from, port);
  if (!pi) {
    bump(ctr_.rejected[size_t(SyncReject::UnknownPeer)]);
    return;
  }
  SyncCounters::Peer& pc = ctr_.peer[*pi];
  decodeSyncDatagram(d, o_.key, decoded_);
  std::optional<SyncReject> r = decoded_.reject;
  if (!r) r = peers_.admit(*pi, decoded_.header, now_wall);
  if (r) {
    bump(ctr_.rejected[size_t(*r)]);
    bump(pc.rejected[size_t(*r)]);
    return;
  }
  const size_t n = decoded_.count;
  bump(ctr_.datagrams_in);
  bump(ctr_.records_in, n);
  bump(pc.datagrams_in);
  bump(pc.records_in, n);
  pc.last_heard_mono_ms.store(now_mono == 0 ? 1 : now_mono, std::memory_order_relaxed);
  const uint64_t lag_ms = now_wall > decoded_.header.send_ms ? now_wall - decoded_.header.send_ms : 0;
  bump(ctr_.lag_count);
  bump(ctr_.lag_sum_us, lag_ms * 1000);
  ctr_.lag_last_ms.store(lag_ms, std::memory_order_relaxed);
  if (lag_ms > get(ctr_.lag_max_ms)) ctr_.lag_max_ms.store(lag_ms, std::memory_order_relaxed);
  for (size_t b = 0; b < kSyncLagBounds.size(); b++)
    if (double(lag_ms) / 1000.0 <= kSyncLagBounds[b]) bump(ctr_.lag_buckets[b]);

  const size_t workers = o_.in_rings.size();
  for (size_t i = 0; i < n; i++) {
    SyncFlow& rec = decoded_.records[i];  // non-const: rte_ring_*_enqueue_elem takes void*
    uint64_t mask = o_.owner.owners(rec);
    for (size_t w = 0; w < workers && mask != 0; w++, mask >>= 1) {
      if ((mask & 1) == 0) continue;
      if (rte_ring_sp_enqueue_elem(o_.in_rings[w], &rec, sizeof(SyncFlow)) == 0) bump(ctr_.delivered);
      else bump(ctr_.ring_full);
    }
  }
}

bool SyncService::drainAndSend(uint64_t now_mono, uint64_t now_wall) {
  SyncFlow batch[kMaxSyncRecords];
  size_t have = 0;
  bool backlog = false;
  for (rte_ring* r : o_.out_rings) {
    unsigned taken = 0;
    while (taken < kSyncDrainPerRing) {
      const unsigned want = unsigned(std::min<size_t>(kMaxSyncRecords - have, kSyncDrainPerRing - taken));
      const unsigned got = rte_ring_sc_dequeue_burst_elem(r, batch + have, sizeof(SyncFlow), want, nullptr);
      if (got == 0) break;
      taken += got;
      have += got;
      if (have == kMaxSyncRecords) {
        send({batch, have}, now_mono, now_wall);
        have = 0;
      }
    }
    bump(ctr_.records_out, taken);
    backlog |= taken == kSyncDrainPerRing && rte_ring_count(r) > 0;
  }
  // A partial datagram goes now rather than waiting to fill: sync lag matters more than the
  // datagram count at low rates, and at high rates datagrams are full anyway.
  if (have > 0) send({batch, have}, now_mono, now_wall);
  return backlog;
}

void SyncService::send(std::span<const SyncFlow> records, uint64_t now_mono, uint64_t now_wall) {
  alignas(8) uint8_t buf[kMaxSyncDatagramBytes];
  SyncHeader h;
  h.boot_id = boot_id_;
  h.sequence = ++sequence_;
  h.send_ms = now_wall;
  const size_t len = encodeSyncDatagram(h, records, o_.key, buf);
  last_send_mono_ = now_mono;
  if (len == 0) return;  // cannot happen: callers pass at most kMaxSyncRecords
  bump(ctr_.datagrams_out);
  for (size_t i = 0; i < peers_.size(); i++) {
    sockaddr_storage ss;
    const socklen_t sl = toSockaddr(peers_.endpoint(i), ss);
    SyncCounters::Peer& pc = ctr_.peer[i];
    if (::sendto(fd_, buf, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&ss), sl) == ssize_t(len)) {
      bump(pc.datagrams_out);
      bump(pc.records_out, records.size());
    } else {
      bump(pc.send_errors);
      bump(ctr_.send_errors);
    }
  }
}

void SyncService::updateRates(uint64_t now_mono) {
  const double secs = double(now_mono - last_rate_mono_) / 1000.0;
  last_rate_mono_ = now_mono;
  for (size_t i = 0; i < ctr_.npeers; i++) {
    SyncCounters::Peer& p = ctr_.peer[i];
    const uint64_t in = get(p.records_in), out = get(p.records_out);
    p.records_in_per_s.store(double(in - p.prev_in) / secs, std::memory_order_relaxed);
    p.records_out_per_s.store(double(out - p.prev_out) / secs, std::memory_order_relaxed);
    p.prev_in = in;
    p.prev_out = out;
  }
}

SyncStatus SyncService::status() const {
  SyncStatus s;
  s.listen = o_.listen.str();
  const uint64_t now = clockMs(CLOCK_MONOTONIC);
  for (size_t i = 0; i < ctr_.npeers; i++) {
    const SyncCounters::Peer& p = ctr_.peer[i];
    SyncPeerStatus ps;
    ps.address = peers_.endpoint(i).str();
    const uint64_t heard = get(p.last_heard_mono_ms);
    ps.last_heard_ms_ago = heard == 0 ? -1 : int64_t(now >= heard ? now - heard : 0);
    ps.records_in_per_s = p.records_in_per_s.load(std::memory_order_relaxed);
    ps.records_out_per_s = p.records_out_per_s.load(std::memory_order_relaxed);
    static_cast<SyncTraffic&>(ps) = p.read();
    s.peers.push_back(std::move(ps));
  }
  static_cast<SyncTraffic&>(s) = ctr_.read();
  s.delivered = get(ctr_.delivered);
  s.ring_full = get(ctr_.ring_full);
  for (size_t b = 0; b < s.lag_buckets.size(); b++) s.lag_buckets[b] = get(ctr_.lag_buckets[b]);
  s.lag_count = get(ctr_.lag_count);
  s.lag_sum_s = double(get(ctr_.lag_sum_us)) / 1e6;
  s.lag_last_ms = get(ctr_.lag_last_ms);
  s.lag_max_ms = get(ctr_.lag_max_ms);
  return s;
}

}  // namespace l4lb::control::sync
