#!/usr/bin/env bash
# End-to-end tests: the lab of network namespaces with real servers and clients, l4lb on
# net_af_xdp ports (and net_tap as the kernel path), as a user would run it.
#   tests/e2e/run.sh [BUILD_DIR [TEST ...]]
# Same runner and summary line as the integration tests ("N passed, N failed, N skipped").
here=$(cd "$(dirname "$0")" && pwd)
export L4LB_SUITE_DIR=$here
export L4LB_MODULES=${L4LB_MODULES:-"test_control test_lab test_ops test_flood test_scaleout test_fullnat"}
exec "$here/../integration/run.sh" "$@"
