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

uint32_t FlowTable::sweep(uint32_t now_ms, const FlowTimeouts& t, uint32_t budget) {
  uint32_t removed = 0;
  for (uint32_t visited = 0; visited < budget; visited++) {
    const void* key;
    void* data;
    int32_t pos = rte_hash_iterate(h_, &key, &data, &sweep_next_);
    if (pos < 0) {  // end of the table: start over next time
      sweep_next_ = 0;
      break;
    }
    FlowValue v = FlowValue::unpack(reinterpret_cast<uintptr_t>(data));
    if (isExpired(v, now_ms, t)) {
      // Deleting the entry just returned by the iterator is safe for a single-writer rte_hash:
      // the iterator resumes from sweep_next_, a key-store index.
      rte_hash_del_key_with_hash(h_, key, hashKey(key, key_len_));
      removed++;
    }
  }
  return removed;
}

}  // namespace l4lb::dataplane
