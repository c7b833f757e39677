#include "traffic.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bench_common.h"

namespace l4lb::perf {

namespace {

constexpr uint16_t kEthLen = 14;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;
constexpr uint32_t kPortsPerClient = 50'000;

const MacAddr kWanMac = *MacAddr::parse("02:00:00:00:00:10");
const MacAddr kLanMac = *MacAddr::parse("02:00:00:00:00:20");
const MacAddr kGwMac = *MacAddr::parse("02:00:00:00:00:fe");
const IpAddr kVip4 = *IpAddr::parse("198.19.255.1");
const IpAddr kVip6 = *IpAddr::parse("2001:db8:1::1");

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, uint16_t(v >> 16));
  put16(p + 2, uint16_t(v));
}

// RFC 1071 sum of big-endian 16-bit words (len even), not folded.
uint32_t sum16(const uint8_t* p, size_t len, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) acc += uint32_t(p[i]) << 8 | p[i + 1];
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return uint16_t(~acc);
}

control::PortConfig port(const std::string& name, const std::string& v4, const std::string& v6) {
  control::PortConfig p;
  p.name = name;
  p.device = "net_null_" + name;
  p.ipv4 = *Prefix::parse(v4);
  p.ipv6 = *Prefix::parse(v6);
  p.mtu = 9000;  // 1500-byte frames plus a tunnel header must not turn into ICMP too-big
  return p;
}

}  // namespace

uint16_t effectiveFrameSize(const TrafficSpec& t) {
  const uint16_t hdr = uint16_t(kEthLen + (t.ipv6 ? 40 : 20) + (t.tcp ? 20 : 8));
  return std::max<uint16_t>(t.frame_size, hdr);
}

control::Config benchConfig(const TrafficSpec& t, FwdMode mode, uint32_t backends, uint32_t maglev_size,
                            bool weighted) {
  control::Config c;
  c.ports.push_back(port("wan", "198.18.255.1/24", "2001:db8:ff::1/64"));
  c.ports[0].gateway4 = *IpAddr::parse("198.18.255.254");
  c.ports[0].gateway6 = *IpAddr::parse("2001:db8:ff::fe");
  c.ports.push_back(port("lan", "198.19.0.1/16", "2001:db8:2::1/64"));
  c.neighbours.push_back({*IpAddr::parse("198.18.255.254"), kGwMac});
  c.neighbours.push_back({*IpAddr::parse("2001:db8:ff::fe"), kGwMac});
  control::VipConfig v;
  v.address = t.ipv6 ? kVip6 : kVip4;
  v.port = 80;
  v.protocol = t.tcp ? Proto::Tcp : Proto::Udp;
  v.scheduler = Scheduler::Maglev;
  v.forwarding = mode;
  v.maglev_table_size = maglev_size;
  std::mt19937 rng(7);
  for (uint32_t i = 0; i < backends; i++) {
    control::BackendConfig b;
    const uint32_t host = 10 + i;  // up to 65000 backends in 198.19.0.0/16
    if (t.ipv6) {
      uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2};
      put32(a + 12, host);
      b.address = IpAddr::v6(a);
    } else {
      b.address = IpAddr::v4(htobe32(0xc6130000u | host));
    }
    MacAddr m = *MacAddr::parse("02:00:00:01:00:00");
    m.bytes[4] = uint8_t(host >> 8);
    m.bytes[5] = uint8_t(host);
    b.mac = m;
    b.weight = weighted ? 1 + rng() % 16 : 1;
    v.backends.push_back(b);
  }
  if (mode == FwdMode::FullNat) {
    // Four source addresses on lan: 4 x 64512 pairs, room for every flow a gate run opens.
    for (uint32_t i = 1; i <= 4; i++) {
      if (t.ipv6) {
        uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2};
        put32(a + 12, 0xff10u + i);
        v.snat_addresses.push_back(IpAddr::v6(a));
      } else {
        v.snat_addresses.push_back(IpAddr::v4(htobe32(0xc613ff10u + i)));
      }
    }
    v.proxy_v2 = t.proxy_v2 && t.tcp;
  }
  c.vips.push_back(v);
  return c;
}

std::unique_ptr<Snapshot> buildSnapshot(control::SnapshotBuilder& sb, const control::Config& c) {
  std::vector<control::PortRuntime> rt = {{0, kWanMac}, {1, kLanMac}};
  control::BuildResult r = sb.build(c, rt);
  if (!r) die("snapshot build failed: " + r.joined());
  return std::move(r.snapshot);
}

FrameWriter::FrameWriter(const TrafficSpec& t) : t_(t) {
  size_ = effectiveFrameSize(t);
  l4_off_ = uint16_t(kEthLen + (t.ipv6 ? 40 : 20));
  hdr_len_ = uint16_t(l4_off_ + (t.tcp ? 20 : 8));
  tmpl_.assign(hdr_len_, 0);
  uint8_t* p = tmpl_.data();
  std::memcpy(p, kWanMac.bytes.data(), 6);
  const uint8_t client_mac[6] = {0x02, 0, 0, 0, 0xc0, 0x01};
  std::memcpy(p + 6, client_mac, 6);
  put16(p + 12, t.ipv6 ? 0x86dd : 0x0800);
  uint8_t* ip = p + kEthLen;
  const uint8_t proto = t.tcp ? kProtoTcp : kProtoUdp;
  if (t.ipv6) {
    put32(ip, 0x60000000u);
    put16(ip + 4, uint16_t(size_ - l4_off_));
    ip[6] = proto;
    ip[7] = 64;
    const uint8_t client[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0c};
    std::memcpy(ip + 8, client, 16);
    std::memcpy(ip + 24, kVip6.bytes.data(), 16);
  } else {
    ip[0] = 0x45;
    put16(ip + 2, uint16_t(size_ - kEthLen));
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = proto;
    put32(ip + 12, 0xc6120000u);
    std::memcpy(ip + 16, kVip4.bytes.data(), 4);
  }
  uint8_t* l4 = p + l4_off_;
  put16(l4 + 2, 80);
  if (t.tcp) {
    put32(l4 + 4, 1);
    l4[12] = 5 << 4;
    put16(l4 + 14, 65535);
  } else {
    put16(l4 + 4, uint16_t(size_ - l4_off_));
  }
}

void FrameWriter::fill(uint8_t* p, uint32_t flow, uint8_t tcp_flags) const {
  std::memcpy(p, tmpl_.data(), hdr_len_);
  uint8_t* ip = p + kEthLen;
  uint8_t* l4 = p + l4_off_;
  put16(l4, uint16_t(1024 + flow % kPortsPerClient));
  if (t_.tcp) l4[13] = tcp_flags;
  const uint16_t l4_len = uint16_t(size_ - l4_off_);
  uint32_t pseudo;
  if (t_.ipv6) {
    put32(ip + 20, flow);
    pseudo = sum16(ip + 8, 32, l4_len + (t_.tcp ? kProtoTcp : kProtoUdp));
  } else {
    put32(ip + 12, 0xc6120000u + flow / kPortsPerClient);
    put16(ip + 10, fold(sum16(ip, 20)));
    pseudo = sum16(ip + 12, 8, l4_len + (t_.tcp ? kProtoTcp : kProtoUdp));
  }
  // The payload is all zeros: the L4 checksum covers only the pseudo-header and the L4 header.
  uint16_t c = fold(sum16(l4, hdr_len_ - l4_off_, pseudo));
  if (!t_.tcp && c == 0) c = 0xffff;  // UDP: 0 means "no checksum" (RFC 768)
  put16(l4 + (t_.tcp ? 16 : 6), c);
}

void FrameWriter::write(rte_mbuf* m, uint32_t flow, uint8_t tcp_flags) const {
  rte_pktmbuf_reset(m);
  m->ol_flags = t_.rx_ol_flags;
  m->data_len = size_;
  m->pkt_len = size_;
  fill(rte_pktmbuf_mtod(m, uint8_t*), flow, tcp_flags);
}

std::vector<uint8_t> FrameWriter::frame(uint32_t flow, uint8_t tcp_flags) const {
  std::vector<uint8_t> f(size_, 0);
  fill(f.data(), flow, tcp_flags);
  return f;
}

std::vector<uint32_t> makeSequence(const TrafficSpec& t, size_t length) {
  std::vector<uint32_t> seq(length);
  std::mt19937_64 rng(t.seed);
  if (t.popularity == Popularity::Uniform) {
    std::uniform_int_distribution<uint32_t> d(0, t.flows - 1);
    for (auto& s : seq) s = d(rng);
    return seq;
  }
  // Zipf: P(rank k) ~ 1 / k^s, sampled by inverting the CDF. Ranks map to flow ids through a
  // fixed shuffle so popular flows are not also neighbours in the id space.
  std::vector<double> cdf(t.flows);
  double acc = 0;
  for (uint32_t k = 0; k < t.flows; k++) cdf[k] = acc += 1.0 / std::pow(double(k + 1), t.zipf_s);
  std::vector<uint32_t> id(t.flows);
  for (uint32_t k = 0; k < t.flows; k++) id[k] = k;
  std::shuffle(id.begin(), id.end(), rng);
  std::uniform_real_distribution<double> u(0, acc);
  for (auto& s : seq) {
    const size_t k = size_t(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    s = id[std::min<size_t>(k, t.flows - 1)];
  }
  return seq;
}

MbufStock::MbufStock(const std::string& name, uint32_t pool_size) {
  pool_ = rte_pktmbuf_pool_create(name.c_str(), pool_size, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool_ == nullptr) die("mbuf pool " + name + ": cannot create");
}

MbufStock::~MbufStock() {
  for (rte_mbuf* m : stack_) rte_pktmbuf_free(m);
  rte_mempool_free(pool_);
}

void MbufStock::take(rte_mbuf** out, uint16_t n) {
  for (uint16_t i = 0; i < n; i++) {
    if (!stack_.empty()) {
      out[i] = stack_.back();
      stack_.pop_back();
      continue;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) die("mbuf pool exhausted");
    std::memset(m->buf_addr, 0, m->buf_len);
    from_pool_++;
    out[i] = m;
  }
}

void MbufStock::give(rte_mbuf* const* m, uint16_t n) { stack_.insert(stack_.end(), m, m + n); }

BurstSource::BurstSource(const TrafficSpec& t, const std::vector<uint32_t>& seq)
    : t_(t), writer_(t), seq_(seq), next_new_(t.flows), rng_(t.seed * 0x9e3779b97f4a7c15ull + 1) {
  new_threshold_ = uint64_t(std::clamp(t.new_flow_share, 0.0, 1.0) * 4294967296.0);
}

void BurstSource::fill(rte_mbuf** pkts, uint16_t n) {
  constexpr uint8_t kSyn = 0x02, kAck = 0x10;
  for (uint16_t i = 0; i < n; i++) {
    rng_ ^= rng_ << 13;  // xorshift64: cheap, and the share only needs to be right on average
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    if ((rng_ >> 32) < new_threshold_ || seq_.empty()) {
      writer_.write(pkts[i], next_new_++, kSyn);
    } else {
      writer_.write(pkts[i], seq_[pos_], kAck);
      if (++pos_ == seq_.size()) pos_ = 0;
    }
  }
}

}  // namespace l4lb::perf
