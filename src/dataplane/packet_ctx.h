// One packet on the forwarding path, as the per-packet steps (pipeline.h) see it: the parser's
// facts, the VIP it is for, its flow key and the key's two hashes. processBurst builds one per
// packet in its first stage (the fragment path builds one for a first fragment); every step takes
// it by reference, so a step that needs one more fact of the packet reads it here instead of
// growing its signature.
#pragma once

#include <cstdint>

#include <rte_hash.h>

#include "dataplane/lookup.h"
#include "dataplane/parser.h"
#include "l4lb/snapshot.h"

namespace l4lb::dataplane {

struct PktCtx {
  PacketInfo pi;
  const SnapVip* vip;
  uint32_t vip_index;
  // The flow key's CRC (makeFlowKey), the same on every instance: picks the Maglev slot and is
  // the tunnel's entropy (GUE source port, IPv6 flow label).
  hash_sig_t slot_hash;
  // The flow table's keyed hash of the key (flow_index.h), private to this instance: picks the
  // table's bucket.
  hash_sig_t bucket_hash;
  const void* key;  // its FlowKey4 / FlowKey6 (forward packets)
  bool v6;          // which flow table
  bool reverse;     // NAT reply from a backend: stateless, no key
  // With `reverse`: a backend's packet to a full-NAT source address (vip_index is then its
  // Snapshot::snat_addrs index, vip is null).
  bool fullnat_reply;
};

// Writes the flow key of the packet (`saddr`/`daddr`: its addresses in the frame) into `k`, and
// its two hashes into `c`.
template <typename Key>
inline void makePktFlowKey(Key& k, const uint8_t* saddr, const uint8_t* daddr, PktCtx& c) {
  c.slot_hash = makeFlowKey(k, saddr, daddr, c.pi.sport_be, c.pi.dport_be, c.pi.proto, &c.bucket_hash);
}

}  // namespace l4lb::dataplane
