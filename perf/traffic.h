// In-memory traffic for the forwarding benchmarks: a flow population, a popularity law over it,
// frames written into recycled mbufs, and the balancer topology those frames are addressed to.
//
// Every address is from the benchmarking ranges (RFC 2544 198.18.0.0/15, RFC 3849 2001:db8::/32):
//   clients 198.18.0.0/16 and 2001:db8:c::/96 arrive on port 0 "wan" via gateway .254 / ::fe;
//   VIPs 198.19.255.1 and 2001:db8:1::1; backends 198.19.1.10.. and 2001:db8:2::10.. on port 1
//   "lan" (connected, static MACs).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "l4lb/snapshot.h"

namespace l4lb::perf {

enum class Popularity : uint8_t { Uniform, Zipf };

struct TrafficSpec {
  uint32_t flows = 10'000;      // established population, 1..10M
  uint16_t frame_size = 64;     // bytes in the mbuf (no FCS); raised to the headers' size if smaller
  bool tcp = true;
  bool ipv6 = false;
  Popularity popularity = Popularity::Uniform;
  double zipf_s = 1.0;
  double new_flow_share = 0.0;  // share of packets that open a never-seen flow (TCP SYN / new UDP 5-tuple)
  uint64_t seed = 1;
  // mbuf ol_flags every frame arrives with, as a NIC's receive offloads set them (e.g.
  // RTE_MBUF_F_RX_IP_CKSUM_GOOD); written with the rest of the mbuf's fields (FrameWriter::write).
  uint64_t rx_ol_flags = 0;
  bool proxy_v2 = false;  // a fullnat VIP sends the PROXY v2 header (TCP)
};

// Frame size actually used for a spec (the headers' size when frame_size is smaller).
uint16_t effectiveFrameSize(const TrafficSpec& t);

// The bench topology with one VIP matching `t` (family, protocol), port 80, `backends`
// backends of weight 1 (or 1..16 when `weighted`), forwarding `mode`.
control::Config benchConfig(const TrafficSpec& t, FwdMode mode, uint32_t backends, uint32_t maglev_size = 65537,
                            bool weighted = false);
std::unique_ptr<Snapshot> buildSnapshot(control::SnapshotBuilder& sb, const control::Config& c);

// Writes frames for flow ids. Flow id f has client address base + f / 50000 (IPv4) or base + f
// (IPv6) and source port 1024 + f % 50000, so ids never collide up to 6.5e9 flows.
class FrameWriter {
 public:
  explicit FrameWriter(const TrafficSpec& t);
  // Resets `m` (as a freshly received mbuf) and writes the frame of flow `flow` with TCP flags
  // `tcp_flags` (ignored for UDP). Only the headers are written: the payload area is whatever the
  // mbuf held, zeros when it came from MbufStock. Checksums (IPv4 header, L4) are correct.
  void write(rte_mbuf* m, uint32_t flow, uint8_t tcp_flags) const;
  uint16_t frameSize() const { return size_; }
  uint16_t headerSize() const { return hdr_len_; }
  // The whole frame as bytes (pcap export).
  std::vector<uint8_t> frame(uint32_t flow, uint8_t tcp_flags) const;

 private:
  void fill(uint8_t* p, uint32_t flow, uint8_t tcp_flags) const;
  TrafficSpec t_;
  uint16_t size_, hdr_len_, l4_off_;
  std::vector<uint8_t> tmpl_;
};

// The order in which established flows send: `length` flow ids drawn from the popularity law.
std::vector<uint32_t> makeSequence(const TrafficSpec& t, size_t length);

// Recycles mbufs outside the timed region: what processBurst forwards comes back to a LIFO stack
// (as a mempool's per-lcore cache would hand it to the NIC again); what it drops it frees to the
// mempool, and the stack refills from there, zeroing the data room of every mbuf it takes.
class MbufStock {
 public:
  explicit MbufStock(const std::string& name, uint32_t pool_size = 8191);
  ~MbufStock();
  void take(rte_mbuf** out, uint16_t n);
  void give(rte_mbuf* const* m, uint16_t n);
  uint64_t fromPool() const { return from_pool_; }

 private:
  rte_mempool* pool_;
  std::vector<rte_mbuf*> stack_;
  uint64_t from_pool_ = 0;
};

// Packets for one burst: established flows from the sequence, a share of new ones.
class BurstSource {
 public:
  BurstSource(const TrafficSpec& t, const std::vector<uint32_t>& seq);
  // Writes n frames into `pkts` (already taken from a stock).
  void fill(rte_mbuf** pkts, uint16_t n);
  uint64_t newFlows() const { return next_new_ - t_.flows; }

 private:
  TrafficSpec t_;
  FrameWriter writer_;
  const std::vector<uint32_t>& seq_;
  size_t pos_ = 0;
  uint32_t next_new_;
  uint64_t rng_;
  uint64_t new_threshold_;  // new flow when rng < threshold (of 2^32)
};

}  // namespace l4lb::perf
