#include "dataplane/flow_index.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace l4lb::dataplane {

namespace {

FlowIndexKey randomKey() {
  FlowIndexKey k;
  auto* p = reinterpret_cast<uint8_t*>(k.k);
  size_t got = 0;
  while (got < sizeof(k.k)) {
    const ssize_t n = getrandom(p + got, sizeof(k.k) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // No kernel randomness (pre-3.17 kernel, seccomp): refuse to run with a guessable key.
      std::perror("l4lb: getrandom for the flow-table key");
      std::abort();
    }
    got += size_t(n);
  }
  return k;
}

}  // namespace

FlowIndexKey g_flow_index_key = randomKey();

void setFlowIndexKey(const FlowIndexKey& k) { g_flow_index_key = k; }

}  // namespace l4lb::dataplane
