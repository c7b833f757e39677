#!/usr/bin/env bash
# libFuzzer targets (tests/fuzz/fuzz_*.cc): builds build-fuzz with clang 14 (-Dfuzz=true) if
# needed, then runs the phases asked for, each target in turn, one job, niced:
#   tests/fuzz/run.sh --replay                every target over its committed corpus once (-runs=0)
#   tests/fuzz/run.sh --seconds N             each target fuzzes N seconds from its corpus
#   tests/fuzz/run.sh --minutes N             a longer campaign: N minutes per target
#   tests/fuzz/run.sh --replay --seconds 30 parser burst    (phases combine; targets may be named)
# Options: --build DIR (default build-fuzz), --keep DIR (where fuzzing writes the inputs it finds
# and its crash files; default a temporary directory, removed unless something was found).
# Prints one line per target and phase (executions, packets for fuzz_burst, cov/ft from
# libFuzzer's final stats line, findings), then "N passed, N failed"; exits non-zero on any crash.
# --replay also runs fuzz_burst's negative controls: a leaked mbuf, a misrouted frame, an
# oversized frame, a wrong IPv4 checksum and a full-NAT source address toward the clients injected
# into its output, and an embryonic quota larger than the one checked, must each be reported as
# a violated invariant.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-fuzz
keep=""
replay=0
seconds=0
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --replay) replay=1 ;;
    --seconds) seconds=$2; shift ;;
    --minutes) seconds=$(($2 * 60)); shift ;;
    --build) build=$(realpath -m "$2"); shift ;;
    --keep) keep=$(realpath -m "$2"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    parser|burst|config|api) targets+=("$1") ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(parser burst config api)
[ $replay = 1 ] || [ "$seconds" -gt 0 ] || { echo "run.sh: nothing to do (--replay, --seconds N or --minutes N)" >&2; exit 2; }

# The build: the whole library instrumented (fuzzer-no-link + ASan + UBSan), only the targets linked.
if [ ! -f "$build/build.ninja" ]; then
  cc=clang-14 cxx=clang++-14
  if command -v ccache >/dev/null; then cc="ccache $cc" cxx="ccache $cxx"; fi
  CC=$cc CXX=$cxx meson setup "$build" --werror -Dbuildtype=debugoptimized -Dfuzz=true -Dtests=false \
    -Dperf=false >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; echo "0 passed, 1 failed"; exit 1; }
  rm -f "$build.setup.log"
fi
nice ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") ||
  { echo "run.sh: fuzz build failed"; echo "0 passed, 1 failed"; exit 1; }

work=${keep:-$(mktemp -d /tmp/l4lb-fuzz.XXXXXX)}
mkdir -p "$work"
export TMPDIR=$work  # fuzz_api's diff files
# Reports are symbolized; leaks are findings; UBSan stops at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
pass=0 fail=0 findings_total=0

# run TARGET PHASE [libFuzzer args...]: one run, its summary line, pass/fail counted.
run() {
  local t=$1 phase=$2; shift 2
  local bin=$build/tests/fuzz/fuzz_$t log=$work/$t-$phase.log art=$work/artifacts/$t/
  mkdir -p "$art"
  local dict=()
  [ -f "$here/fuzz_$t.dict" ] && dict=(-dict="$here/fuzz_$t.dict")
  local start=$SECONDS
  nice -n 10 "$bin" "${dict[@]}" -artifact_prefix="$art" -print_final_stats=1 -timeout=20 "$@" >"$log" 2>&1
  local rc=$?
  local execs cov ft pkts found
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  read -r cov ft < <(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/')
  pkts=$(sed -n 's/^fuzz_burst: \([0-9]*\) packets$/\1/p' "$log" | tail -1)
  found=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  local verdict=PASS
  if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
    verdict=FAIL; fail=$((fail + 1)); findings_total=$((findings_total + found))
  else
    pass=$((pass + 1))
  fi
  printf '%s %-7s %-6s %6ss  execs %s%s  cov %s  ft %s  findings %s\n' "$verdict" "$phase" "$t" \
    $((SECONDS - start)) "${execs:-?}" "${pkts:+  packets $pkts}" "${cov:-?}" "${ft:-?}" "$found"
  if [ $verdict = FAIL ]; then
    grep -E 'ERROR|SUMMARY|invariant|==[0-9]+==|runtime error|Test unit written' "$log" | head -20 | sed 's/^/    /'
    echo "    log: $log"
  fi
}

# control INJECTION: fuzz_burst with a fault injected (L4LB_FUZZ_INJECT) on one seed must
# report the invariant it breaks: the checks can fail.
control() {
  local inj=$1 seed=${2:-tcp_conn_snap0} log=$work/burst-control-$1.log art=$work/control/$1/
  mkdir -p "$art"
  L4LB_FUZZ_INJECT=$inj "$build/tests/fuzz/fuzz_burst" -artifact_prefix="$art" \
    "$here/corpus/burst/$seed" >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q 'invariant violated' "$log"; then
    pass=$((pass + 1))
    printf 'PASS control burst  %s: %s\n' "$inj" "$(grep -o 'invariant violated.*' "$log" | head -1)"
  else
    fail=$((fail + 1))
    printf 'FAIL control burst  %s: exit %s, no invariant reported (log: %s)\n' "$inj" "$rc" "$log"
  fi
}

for t in "${targets[@]}"; do
  [ $replay = 1 ] && run "$t" replay -runs=0 "$here/corpus/$t"
  if [ $replay = 1 ] && [ "$t" = burst ]; then
    for inj in leak misroute bigframe badcksum; do control $inj; done
    control embryonic syn_flood  # a quota larger than the one checked: the SYN flood breaks it
    control snatleak fullnat_udp  # a full-NAT source address toward the clients
  fi
done
if [ "$seconds" -gt 0 ]; then
  for t in "${targets[@]}"; do
    # New inputs go to the first directory; the committed corpus is read, not written.
    mkdir -p "$work/corpus/$t"
    run "$t" fuzz -max_total_time="$seconds" "$work/corpus/$t" "$here/corpus/$t"
  done
fi

if [ $fail -eq 0 ] && [ -z "$keep" ]; then
  rm -rf "$work"
else
  echo "run.sh: logs, found inputs and crash files in $work"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
