#!/usr/bin/env bash
# The whole l4lb test suite on a fresh Debian 12 machine (run as root):
#   1. installs the Debian packages it needs (scripts/install-deps.sh),
#   2. builds with warnings as errors and runs the unit tests,
#   3. the callgrind regression gate: instructions per packet of every forwarding variant, exact,
#      against perf/baseline.json (fails > 3 % above it; perf/gate.py),
#   4. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit tests,
#   5. runs the snapshot publisher's stress test under ThreadSanitizer,
#   6. builds the libFuzzer targets with clang 14, replays their corpora and fuzzes each 30 s,
#   7. runs the integration tests: the real l4lb binary on net_pcap ports, output decoded by scapy,
#   8. runs the end-to-end tests: the lab of network namespaces with real servers and clients,
#      l4lb on net_af_xdp ports with the XDP and tap exception paths.
# Ends with one summary line "N passed, N failed, N skipped"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
results=$(mktemp -d /tmp/l4lb-test.XXXXXX)
trap 'rm -rf "$results"' EXIT

step() { printf '\n=== %s\n' "$*"; }
die() { echo "test.sh: $*" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

step "dependencies"
scripts/install-deps.sh || die "installing dependencies failed"

build() {  # build DIR [meson options...]
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --werror "$@" >"$results/setup-$(basename "$dir").log" 2>&1 ||
      { cat "$results/setup-$(basename "$dir").log"; return 1; }
  fi
  ninja -C "$dir" || return 1
}

unit() {  # unit DIR LABEL: each gtest binary writes an XML report we count from
  local dir=$1 label=$2
  mkdir -p "$results/$label"
  GTEST_OUTPUT="xml:$results/$label/" meson test -C "$dir" --suite unit --print-errorlogs --num-processes 2
}

step "build (warnings are errors)"
# -g1 (line tables, no variable info): the same code as -g (the gate counts instructions of it),
# file:line in every backtrace, and about a third less compile time than full debug info.
build build-ci -Dbuildtype=debugoptimized -Dcpp_args=-g1 -Dc_args=-g1 || die "build failed"
step "unit tests"
unit build-ci unit

step "callgrind regression gate: instructions per packet against perf/baseline.json"
/usr/bin/python3 perf/gate.py --build build-ci | tee "$results/gate.log"

# Only what the unit tests run (their programs and what they load): the daemon, l4lbctl and the
# tools are checked by the sanitizers through the library they share with the tests, and building
# them a second time would be the longest step of the run.
unit_targets() {  # unit_targets DIR: the ninja targets of the unit suite's programs and their inputs
  meson introspect "$1" --tests --targets | /usr/bin/python3 -c '
import json, os, sys
d = sys.argv[1]
intro = json.load(sys.stdin)
tests, ids = intro["tests"], {t["id"]: t for t in intro["targets"]}
out = set()
for t in tests:
    if not any(s.endswith(":unit") for s in t["suite"]):
        continue
    for dep in t["depends"]:
        for f in ids.get(dep, {}).get("filename", []):
            out.add(os.path.relpath(f, os.path.abspath(d)))
print(" ".join(sorted(out)))' "$1"
}

step "build with AddressSanitizer + UndefinedBehaviorSanitizer (the unit tests' programs)"
if [ ! -f build-ci-asan/build.ninja ]; then
  # -O0 (buildtype debug): the sanitizers check the same code paths at any level, and GCC's
  # ASan + UBSan instrumentation at -O2 compiles four to nine times slower per file.
  meson setup build-ci-asan --werror -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dperf=false \
    >"$results/setup-build-ci-asan.log" 2>&1 || { cat "$results/setup-build-ci-asan.log"; die "sanitizer setup failed"; }
fi
asan_targets=$(unit_targets build-ci-asan)
[ -n "$asan_targets" ] || die "no unit test programs found in build-ci-asan"
# shellcheck disable=SC2086 # a list of targets
ninja -C build-ci-asan $asan_targets || die "sanitizer build failed"
step "unit tests under ASan/UBSan"
mkdir -p "$results/unit-asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  GTEST_OUTPUT="xml:$results/unit-asan/" meson test -C build-ci-asan --no-rebuild --suite unit --print-errorlogs --num-processes 2

step "publisher stress test under ThreadSanitizer"
mkdir -p "$results/unit-tsan"
GTEST_OUTPUT="xml:$results/unit-tsan/" tests/tsan.sh build-ci-tsan || echo "exit $?" >"$results/tsan-exit"

step "fuzzing: corpus replay, then 30 s per target (libFuzzer, clang 14, ASan + UBSan)"
tests/fuzz/run.sh --build build-ci-fuzz --replay --seconds 30 | tee "$results/fuzz.log"

step "integration tests (l4lb on net_pcap, decoded by scapy)"
tests/integration/run.sh "$root/build-ci" | tee "$results/integration.log"

step "end-to-end tests (the lab: namespaces, real servers and clients, l4lb on AF_XDP)"
tests/e2e/run.sh "$root/build-ci" | tee "$results/e2e.log"

/usr/bin/python3 - "$results" <<'PY'
import glob, os, re, sys, xml.etree.ElementTree as ET
res = sys.argv[1]
p = f = s = 0
for label, builddir in (("unit", "build-ci"), ("unit-asan", "build-ci-asan"), ("unit-tsan", "build-ci-tsan")):
    files = glob.glob(os.path.join(res, label, "*.xml"))
    lp = lf = ls = 0
    for x in files:
        r = ET.parse(x).getroot()
        t, fl, er = (int(r.get(k, 0)) for k in ("tests", "failures", "errors"))
        sk = sum(1 for c in r.iter("testcase") if c.get("result") == "skipped")
        lf += fl + er; ls += sk; lp += t - fl - er - sk
    # A test program that crashed (sanitizer abort, segfault) writes no XML: meson's count does.
    log = os.path.join(builddir, "meson-logs", "testlog.txt")
    m = re.findall(r"^Fail:\s+(\d+)", open(log).read(), re.M) if os.path.exists(log) else []
    failed_programs = int(m[-1]) if m else 0
    if failed_programs and lf == 0:
        lf = failed_programs
    if not files:  # nothing ran (build failed, or the program died before writing its report)
        lf = max(lf, 1)
    if label == "unit-tsan" and os.path.exists(os.path.join(res, "tsan-exit")):
        lf = max(lf, 1)  # a race report exits non-zero even after the tests passed
    print(f"{label}: {lp} passed, {lf} failed, {ls} skipped ({len(files)} test programs)")
    p += lp; f += lf; s += ls
for suite in ("gate", "fuzz", "integration", "e2e"):
    path = os.path.join(res, suite + ".log")
    text = open(path).read() if os.path.exists(path) else ""
    m = re.findall(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$", text, re.M)
    if m:
        ip, ifl, isk = (int(x or 0) for x in m[-1])
        print(f"{suite}: {ip} passed, {ifl} failed, {isk} skipped")
        p += ip; f += ifl; s += isk
    else:
        print(f"{suite}: no summary line (the runner failed)")
        f += 1
print(f"{p} passed, {f} failed, {s} skipped")
sys.exit(1 if f else 0)
PY
