#!/usr/bin/env bash
# Integration tests: the real l4lb binary on net_pcap ports, every output frame decoded by scapy.
#   tests/integration/run.sh [BUILD_DIR [TEST ...]]   (default: the repository's build/, all tests)
# Runs the modules in MODULES (config, malformed input, forwarding, full NAT, edge replies, the XDP
# program under the net_af_xdp PMD, the health checker against real servers, the operator
# scripts, l4lbctl and metrics, the man pages, the Grafana dashboard's queries against a live
# scrape, the Debian package: built, linted, installed, upgraded, removed and purged, and the
# repository's text: no issue numbers or work labels, every pointer to a document resolves; and
# the source tree's shape: file sizes, at most 8 parameters on the data path) with
# Debian's /usr/bin/python3 (which has python3-scapy; a pyenv python3 on PATH does not) through
# unittest, prints one line per test, and ends with exactly one line
# "N passed, N failed, N skipped". Exit status 1 on any failure.
# Each daemon run pins core 1, so the runs are sequential; the whole suite takes under a minute,
# plus the package build of test_package (minutes from cold, seconds with a warm ccache).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # keep the source tree clean

fail() { echo "run.sh: $*" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
[ -d "$build" ] || fail "no build directory $build"
build=$(cd "$build" && pwd)
[ -x "$build/l4lb" ] || fail "$build/l4lb is missing (ninja -C $build)"
$PY -c 'import scapy.all' 2>/dev/null || fail "$PY cannot import scapy (apt-get install python3-scapy)"

# If the runner dies before its own cleanup, stop the daemons it started (by pid, only if they
# are still l4lb or xdp_pmd_probe), remove their EAL runtime directories, temp directories and
# network namespaces.
cleanup_file=$(mktemp /tmp/l4lb_it_cleanup.XXXXXX)
cleanup() {
  local reaped comm
  reaped=$(awk '$1 == "reaped" {print $2}' "$cleanup_file")
  while read -r kind value; do
    case $kind in
      pid)  # started and never reaped by the harness: still ours
        comm=$(cat "/proc/$value/comm" 2>/dev/null)
        if ! grep -qx "$value" <<<"$reaped" && { [ "$comm" = "l4lb" ] || [ "$comm" = "xdp_pmd_probe" ]; }; then
          kill -INT "$value" 2>/dev/null; sleep 1; kill -KILL "$value" 2>/dev/null
        fi ;;
      prefix)
        case $value in l4lb_it_*|l4lb_lab_*) rm -rf "/var/run/dpdk/$value" ;; esac ;;
      lab)  # an e2e lab (scripts/lib/lab.py): its namespaces and every process in them
        $PY "$here/../../scripts/lib/lab.py" down --prefix "$value" >/dev/null 2>&1 ;;
      tmpdir)
        case $value in */l4lb_it_*) rm -rf "$value" ;; esac ;;
      hcproc)  # test_health.py's servers and health_driver, by pid, only if still theirs
        if tr '\0' ' ' 2>/dev/null <"/proc/$value/cmdline" | grep -qE 'health_driver|test_health.py --serve'; then
          kill -KILL "$value" 2>/dev/null
        fi ;;
      birdpid)  # a BIRD a test started in its own namespace (test_bgp.py), only if still BIRD
        [ "$(cat "/proc/$value/comm" 2>/dev/null)" = "bird" ] && kill -KILL "$value" 2>/dev/null ;;
      netns)  # the namespace (and its veth) goes once its processes are gone
        case $value in l4lb-it-*|l4lbhc-*) ip netns del "$value" 2>/dev/null ;; esac ;;
    esac
  done < "$cleanup_file"
  rm -f "$cleanup_file"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# tests/e2e/run.sh reuses this runner for its own directory and modules.
suite_dir=${L4LB_SUITE_DIR:-$here}
cd "$suite_dir"
# Optional further arguments select tests, as for unittest: run.sh BUILD test_forwarding.MtuTest
L4LB_BUILD_DIR=$build L4LB_IT_CLEANUP_FILE=$cleanup_file $PY - "${@:2}" <<'PYEOF'
import sys
import time
import unittest

import os
import os
MODULES = os.environ.get("L4LB_MODULES", "test_docs test_shape test_config test_malformed test_forwarding test_fullnat test_fullnat_workers test_fragments test_edge test_xdp test_xdp_restart test_health test_scripts test_ctl test_fullnat_ops test_top test_systemd test_status_page test_manpages test_bgp test_gate test_dashboard test_package").split()


class Result(unittest.TextTestResult):
    """Records one outcome per test (a failure wins over a skip) and how long it took."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.outcome, self.took, self.why, self._t0 = {}, {}, {}, {}

    def _set(self, test, status, why=""):
        tid = test.id()
        if self.outcome.get(tid) != "FAIL":
            self.outcome[tid] = status
            self.why[tid] = why

    def startTest(self, test):
        self._t0[test.id()] = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        self.took[test.id()] = time.monotonic() - self._t0.get(test.id(), time.monotonic())
        super().stopTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "PASS")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "FAIL")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "SKIP", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "PASS")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "FAIL")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._set(test, "FAIL")


t0 = time.monotonic()
runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result)
# Exactly what `python3 -m unittest -v MODULES` runs, with a result that keeps per-test outcomes.
prog = unittest.main(module=None, argv=["python3 -m unittest", "-v"] + (sys.argv[1:] or MODULES),
                     testRunner=runner, exit=False)
r = prog.result
print("\n=== integration test results")
for tid, status in r.outcome.items():
    extra = f"  ({r.why[tid]})" if r.why[tid] else ""
    print(f"{status} {tid} [{r.took.get(tid, 0):.1f}s]{extra}")
n = {s: sum(1 for v in r.outcome.values() if v == s) for s in ("PASS", "FAIL", "SKIP")}
print(f"total time {time.monotonic() - t0:.1f}s")
print(f"{n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
sys.exit(1 if n["FAIL"] or not r.wasSuccessful() else 0)
PYEOF
