#!/bin/sh
# ThreadSanitizer run of the snapshot publisher tests (QSBR swap under real workers). Only this
# test: DPDK is not built with TSan, and publisher_test.cc makes the synchronisation that happens
# inside DPDK's libraries visible to TSan (see its header); other tests have no such annotations.
#   tests/tsan.sh [BUILD_DIR]     (default build-tsan)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-tsan}
[ -f "$build/build.ninja" ] ||
  meson setup "$build" --werror -Db_sanitize=thread -Db_lundef=false -Dperf=false -Dcpp_args=-g1 >/dev/null
ninja -C "$build" tests/publisher_test
# halt_on_error: the first report fails the run (exit 66), no suppressions needed.
TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" "$build/tests/publisher_test"
