// Flow-table memory: DPDK heap bytes a FlowTable takes (rte_malloc_get_socket_stats before and
// after), created for `entries` and then filled with that many distinct flows, so the figure is
// what the table really holds, whatever rte_hash allocates (buckets, extendable buckets, key
// store, free-slot ring).
#include <cstdio>
#include <cstring>
#include <string>

#include <rte_lcore.h>
#include <rte_malloc.h>

#include "benches.h"
#include "dataplane/flow_table.h"

namespace l4lb::perf {

namespace {

uint64_t heapBytes() {
  rte_malloc_socket_stats st{};
  if (rte_malloc_get_socket_stats(int(rte_socket_id()), &st) != 0) die("rte_malloc_get_socket_stats failed");
  return st.heap_allocsz_bytes;
}

}  // namespace

int flowMemMain(const Options& o) {
  using dataplane::FlowKey4;
  using dataplane::FlowKey6;
  using dataplane::FlowTable;
  const uint32_t entries = uint32_t(o.u64("entries", 10'000'000));
  const bool v6 = o.u64("family", 4) == 6;
  const int runs = int(o.u64("runs", 5));
  const unsigned core = unsigned(o.u64("core", 1));
  const uint32_t mem = uint32_t(o.u64("mem", 4096));
  const std::string label = o.str("label", "flowmem");
  o.rejectUnknown();
  startEal(std::to_string(core), mem);
  const uint32_t key_len = v6 ? sizeof(FlowKey6) : sizeof(FlowKey4);
  for (int run = 0; run < runs; run++) {
    const uint64_t before = heapBytes();
    std::string err;
    auto ft = FlowTable::create("perf_mem_" + std::to_string(run), entries, key_len, int(rte_socket_id()), err);
    if (!ft) die(err);
    const uint64_t created = heapBytes();
    dataplane::FlowValue v{1, dataplane::FlowState::TcpEstablished, 0};
    for (uint32_t i = 0; i < entries; i++) {
      FlowKey4 k4;
      FlowKey6 k6;
      const void* key;
      if (v6) {
        k6.saddr[0] = 0x20;
        k6.saddr[1] = 0x01;
        std::memcpy(k6.saddr + 12, &i, 4);
        k6.proto = 6;
        key = &k6;
      } else {
        k4.saddr = i;
        k4.proto = 6;
        key = &k4;
      }
      if (!ft->upsert(key, FlowTable::indexHash(key, key_len), v)) die("insert " + std::to_string(i) + " failed");
    }
    if (ft->size() != entries) die("table holds " + std::to_string(ft->size()));
    const uint64_t filled = heapBytes();
    Record{"flowmem", label, run}
        .tag("family", v6 ? "6" : "4")
        .add("entries", entries)
        .add("bytes_created", double(created - before))
        .add("bytes_filled", double(filled - before))
        .add("bytes_per_entry", double(filled - before) / entries)
        .add("mb", double(filled - before) / 1048576.0)
        .print();
    ft.reset();
    if (heapBytes() != before) std::fprintf(stderr, "flowmem: heap did not return to its size before the table\n");
  }
  stopEal();
  return 0;
}

}  // namespace l4lb::perf
