#include "dataplane/flow_table.h"

#include <rte_errno.h>
#include <rte_hash_crc.h>

namespace l4lb::dataplane {

std::unique_ptr<FlowTable> FlowTable::create(const std::string& name, uint32_t capacity, uint32_t key_len,
                                             int socket, std::string& err) {
  rte_hash_parameters p{};
  p.name = name.c_str();
  p.entries = capacity;
  p.key_len = key_len;
  p.hash_func = rte_hash_crc;
  p.hash_func_init_val = kHashSeed;  // hashKey() gives the same values
  p.socket_id = socket;
  // EXT_TABLE: extendable buckets, so exactly `capacity` keys fit whatever their hashes.
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  rte_hash* h = rte_hash_create(&p);
  if (h == nullptr) {
    err = "flow table " + name + ": rte_hash_create(" + std::to_string(capacity) + " entries): " +
          rte_strerror(rte_errno);
    return nullptr;
  }
  return std::unique_ptr<FlowTable>(new FlowTable(h, capacity, key_len));
}

FlowTable::~FlowTable() { rte_hash_free(h_); }

uint32_t FlowTable::sweep(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget, BackendCounters* ended) {
  // Walks key-store positions, occupied or not, so the work per call is bounded by `budget`
  // whatever the fill. (rte_hash_iterate skips empty slots without a bound: on a nearly empty
  // table of 1M entries every call would scan the whole bucket array, ~1.6 ms per worker loop.)
  // Without RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD the key store has exactly `capacity`
  // positions, extendable-bucket keys included.
  uint32_t removed = 0;
  for (uint32_t visited = 0; visited < budget; visited++) {
    const int32_t pos = int32_t(sweep_next_);
    if (++sweep_next_ >= capacity_) sweep_next_ = 0;
    void* key;
    if (rte_hash_get_key_with_position(h_, pos, &key) != 0) continue;  // -ENOENT: free slot
    const hash_sig_t sig = hashKey(key, key_len_);
    void* data;
    if (rte_hash_lookup_with_hash_data(h_, key, sig, &data) < 0) continue;
    const FlowValue v = FlowValue::unpack(reinterpret_cast<uintptr_t>(data));
    if (isExpired(v, now_ms, t)) {
      rte_hash_del_key_with_hash(h_, key, sig);  // single writer: this worker
      removed++;
      if (ended != nullptr && v.backend_id < kMaxCountedBackends && v.backend_id != kNoBackend)
        ended[v.backend_id].flows_ended++;
    }
  }
  return removed;
}

}  // namespace l4lb::dataplane
