#!/usr/bin/env bash
# Builds l4lb in release mode and runs every benchmark: forwarding (production processBurst vs
# the 5tswap baseline, same packets, same run), forwarding modes, new flows, callgrind
# instructions per packet, dpdk-testpmd 5tswap on net_pcap as a cross-check, Maglev build,
# snapshot publish latency, idle back-off cost, flow-table memory. Prints a summary table with the targets and
# writes perf/results.json. Not part of CI (scripts/test.sh): numbers are not asserted.
#
#   perf/run.sh [--quick]        BUILD_DIR (default build-perf) and RUNS (default 5) from the env
#
# --quick: fewer packets per run (a smoke test of the whole pipeline, about 2 minutes).
# Takes about 6-8 minutes on 2 shared cores. Cores: the measured thread runs on core 1
# (WORKER_CORE), the publish benchmark's control thread on core 0.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-perf}
RUNS=${RUNS:-5}
CORE=${WORKER_CORE:-1}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$RUNS" -lt 5 ]; then echo "run.sh: RUNS must be >= 5 (figures are medians of >= 5 runs)" >&2; exit 2; fi

# Packets per run: enough for ~0.3-1 s of timed work per contender.
P=10e6; P_SMALL=5e6; P_1M=10e6
if [ $QUICK = 1 ]; then P=1e6; P_SMALL=5e5; P_1M=2e6; fi

"$ROOT/scripts/install-deps.sh"
# Benchmark-only tools (not CI's): valgrind (callgrind, and valgrind/callgrind.h for the
# client requests), dpdk-dev (dpdk-testpmd), linux-perf (profiles).
need=()
for p in valgrind dpdk-dev linux-perf iperf3 nftables; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Release build. Not --werror: GCC 12 at -O3 reports a false -Wrestrict inside std::string in
# src/control/ports.cc (buildEalArgs), which the debug and CI builds (-O2) do not see.
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Dtests=true -Dperf=true >/dev/null
fi
# The benchmark, plus the daemon and the XDP object (lab benchmark) and the health driver.
ninja -C "$BUILD" perf/l4lb-bench l4lb src/dataplane/xdp/l4lb_xdp.o tests/health_driver >/dev/null
BENCH=$BUILD/perf/l4lb-bench

WORK=$(mktemp -d /tmp/l4lb-perf.XXXXXX)
TPMD_PREFIX=l4lb_perf_tpmd_$$
cleanup() {
  rm -rf "$WORK" "/var/run/dpdk/$TPMD_PREFIX"
  # Benchmarks remove their own EAL runtime dir (/var/run/dpdk/l4lb_perf_<pid>) on exit, even on
  # error; this catches one killed by a signal.
  for d in /var/run/dpdk/l4lb_perf_*; do
    [ -d "$d" ] || continue
    pid=${d##*_}
    kill -0 "$pid" 2>/dev/null || rm -rf "$d"
  done
}
trap cleanup EXIT
RAW=$WORK/raw.jsonl
: >"$RAW"

step() { echo "== $*" >&2; }
fwd() { "$BENCH" fwd --core "$CORE" --runs "$RUNS" "$@" >>"$RAW"; }

START=$(date +%s)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# The 1M / 10M flow figures run on hugepages when the host has enough free (reserve them with
# scripts/setup-hugepages.sh --no-mount 768): on 4 KiB pages every lookup in a table that size
# also misses the TLB, which a hugepage deployment does not pay. `huge_opt MiB` prints --huge
# when that much is free, else nothing and a note: the figure is then on 4 KiB pages.
huge_opt() {
  local free_mb
  free_mb=$(awk '/^HugePages_Free:/ {f = $2} /^Hugepagesize:/ {s = $2} END {print int(f * s / 1024)}' /proc/meminfo)
  if [ "$free_mb" -ge "$1" ]; then
    echo --huge
  else
    echo "   note: $free_mb MiB of hugepages free, $1 MiB needed: on 4 KiB pages (--no-huge), TLB misses included" >&2
  fi
}

step "forwarding: 10k flows, 64 B TCP/IPv4, uniform (DSR vs 5tswap)"
fwd --label fwd_10k --flows 10000 --packets $P
step "forwarding: 1M flows uniform"
fwd --label fwd_1m --flows 1000000 --packets $P_1M $(huge_opt 512)
# The 10k population on the same kind of pages as fwd_1m: the reference of fwd_1m_vs_10k (on 4 KiB
# pages the baseline itself pays TLB misses that hugepages remove, which would skew the ratio).
fwd --label fwd_10k_samepages --flows 10000 --packets $P $(huge_opt 512)
step "forwarding: 1M flows Zipf(1.0)"
fwd --label fwd_1m_zipf --flows 1000000 --dist zipf --packets $P_SMALL
step "forwarding: 10M flows uniform"
fwd --label fwd_10m --flows 10000000 --packets $P_SMALL --mem 3072 $(huge_opt 1200)
step "forwarding: 10k flows with the NIC's IPv4 checksum verdict (RTE_MBUF_F_RX_IP_CKSUM_GOOD, as a NIC with RX checksum offload sets it)"
fwd --label fwd_10k_nic_cksum --flows 10000 --packets $P --rx-cksum-good
step "forwarding: variants (UDP, IPv6, 1500 B, 10 % new flows)"
fwd --label fwd_10k_udp --flows 10000 --proto udp --packets $P_SMALL
fwd --label fwd_10k_ipv6 --flows 10000 --family 6 --packets $P_SMALL
fwd --label fwd_10k_1500b --flows 10000 --size 1500 --packets $P_SMALL
fwd --label fwd_10k_syn10 --flows 10000 --new-share 0.1 --packets $P_SMALL
step "forwarding modes: DSR, IPIP, GUE, NAT (10k flows)"
fwd --label modes --flows 10000 --modes dsr,ipip,gue,nat,5tswap --packets $P_SMALL
step "full NAT (10k flows): established, with PROXY v2, and new flows, each against two-arm NAT in the same run"
fwd --label fullnat --flows 10000 --modes nat,fullnat,5tswap --packets $P_SMALL
fwd --label fullnat_proxy --flows 10000 --modes nat,fullnat --proxy-v2 --packets $P_SMALL
# The bench's pool is 4 source addresses x 64512 ports: 2e5 new flows per run fit in it.
fwd --label fullnat_new --flows 10000 --new-share 1 --modes nat,fullnat --packets 2e5 --capacity 1048576 --mem 3072
step "Katran's scenario: one hot established flow, IPIP, 100 backends, Maglev 65537 (Katran's XDP: 141 ns here)"
fwd --label katran --flows 1 --backends 100 --modes ipip,5tswap --packets $P
step "new flows: every packet a SYN of a new flow (Maglev pick + insert)"
fwd --label new_flows --flows 10000 --new-share 1 --packets 2e6 --capacity 4194304 --mem 3072
step "forwarding with the worker loop's FlowTable::sweep (see RESULTS.md)"
fwd --label fwd_10k_sweep --flows 10000 --packets 32000 --sweep

step "SYN flood: spoofed SYNs (8 bursts of new 5-tuples per burst of established traffic) with admission, and without (the test-only switch)"
"$BENCH" flood --core "$CORE" --runs "$RUNS" --seconds 4 --admission on --label flood_admission >>"$RAW"
"$BENCH" flood --core "$CORE" --runs "$RUNS" --seconds 4 --admission off --label flood_no_admission >>"$RAW"

step "callgrind: instructions per packet, every variant of the regression gate (perf/gate.py), release build"
# Exact counts (frozen clock, fixed flow-index key): one run per variant. The CI gate runs the
# same variants on the CI build against perf/baseline.json; these are the release build's.
/usr/bin/python3 "$ROOT/perf/gate.py" --build "$BUILD" --report "$RAW" >&2
# Per-function costs of DSR, for the summary.
valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
  --callgrind-out-file="$WORK/cg.dsr" "$BENCH" fwd --core "$CORE" --runs 1 --label cg \
  --flows 10000 --packets 64000 --modes dsr --callgrind --clock frozen >/dev/null 2>"$WORK/cg.dsr.log"
callgrind_annotate "$WORK/cg.dsr.1" 2>/dev/null | sed -n '/^Ir/,$p' | head -20 >"$WORK/cg_top.txt" || true

step "dpdk-testpmd --forward-mode=5tswap on net_pcap,infinite_rx=1 (cross-check)"
"$BENCH" pcap --flows 10000 --count 2048 --out "$WORK/in.pcap"
# Stats every second on stdout; the first seconds load the pcap, so wait for RUNS+2 samples.
timeout -s INT $((RUNS + 12)) dpdk-testpmd -l 0,"$CORE" --no-huge -m 1024 --no-pci --no-shconf \
  --file-prefix "$TPMD_PREFIX" --vdev "net_pcap0,rx_pcap=$WORK/in.pcap,infinite_rx=1" -- \
  --forward-mode=5tswap --nb-cores=1 --stats-period=1 --auto-start >"$WORK/testpmd.log" 2>&1 || true
# Drop zero samples (start-up) and the first non-zero one (a partial second).
grep -a 'Rx-pps:' "$WORK/testpmd.log" | awk '{print $2}' | awk '$1 > 0' | tail -n +2 |
  awk -v n=0 '{printf "{\"bench\": \"testpmd\", \"label\": \"5tswap_pcap\", \"run\": %d, \"mpps\": %f}\n", n++, $1 / 1e6}' >>"$RAW"

step "Maglev table build"
# 11 runs of the small table (2-3 ms each): the median then survives a few preempted runs.
for size in 65537 655373; do
  r=$RUNS
  [ $size = 65537 ] && [ "$r" -lt 11 ] && r=11
  for n in 10 100 1000; do
    "$BENCH" maglev --core "$CORE" --runs "$r" --size $size --backends $n --label "maglev_${size}x${n}" >>"$RAW"
    "$BENCH" maglev --core "$CORE" --runs "$r" --size $size --backends $n --weighted --label "maglev_${size}x${n}_w" >>"$RAW"
  done
done

step "snapshot publish latency with a busy worker"
# --rt: SCHED_FIFO worker and control thread, as on isolated cores (the kernel still leaves
# other tasks 5 % of the core); publish_cfs: the same on this shared machine's normal scheduler.
"$BENCH" publish --worker-core "$CORE" --control-core 0 --runs "$RUNS" --count 300 --rt --label publish_rt >>"$RAW"
"$BENCH" publish --worker-core "$CORE" --control-core 0 --runs "$RUNS" --count 300 --rt --no-sweep --label publish_rt_nosweep >>"$RAW"
"$BENCH" publish --worker-core "$CORE" --control-core 0 --runs "$RUNS" --count 100 --label publish_cfs >>"$RAW"

step "idle back-off: first-packet latency after idle, Mpps under load, idle CPU (off vs on)"
# The real workerMain on net_ring ports; --rt as above (on CFS the ring side is descheduled for
# milliseconds and the worker runs dry under "continuous" load).
"$BENCH" idle --worker-core "$CORE" --main-core 0 --runs "$RUNS" --seconds 2 --samples 200 --rt --label idle_rt >>"$RAW"

# --- the whole worker on real ports, and two workers -------------------------------------------
# workerMain itself on net_ring ports (RX/TX through the PMD), fed by a generator on core 0 that
# only moves pointers, a population of 1M mbufs (cold between visits), next to a loop doing
# what dpdk-testpmd --forward-mode=5tswap does (not the testpmd binary: see RESULTS.md,
# "The whole worker on ports") and an io loop (the ports' and generator's own ceiling). --rt as
# the idle benchmark; --huge when the host has hugepages free (mbufs on 4 KiB pages in this VM
# cost a page walk per packet).
step "the whole worker on ports: workerMain vs a testpmd 5tswap loop vs io, 10k flows, cold mbufs"
"$BENCH" ports --cores "$CORE" --gen-core 0 --runs "$RUNS" --seconds 1 --rt $(huge_opt 900) --label ports >>"$RAW"
step "the multi-core model: 1 worker vs 2 workers (RSS), wire mode (no generator), each its own process"
# Interleaved, one process each (a process has one worker count); aggregate.py pairs run i of
# each for ports_l4lb_2w_vs_1w.
for i in $(seq 1 "$RUNS"); do
  "$BENCH" ports --wire --cores "$CORE" --runs 1 --seconds 1 --rt --modes l4lb,5tswap $(huge_opt 900) --label ports_wire_1w >>"$RAW"
  "$BENCH" ports --wire --cores 0,1 --runs 1 --seconds 1 --rt --modes l4lb,5tswap $(huge_opt 900) --label ports_wire_2w >>"$RAW"
done
# --- end of the ports benchmarks ---------------------------------------------------------------

step "flow-table memory (DPDK heap)"
"$BENCH" flowmem --core "$CORE" --runs "$RUNS" --entries 1000000 --label flowmem_1m_v4 >>"$RAW"
"$BENCH" flowmem --core "$CORE" --runs "$RUNS" --entries 10000000 --label flowmem_10m_v4 >>"$RAW"
"$BENCH" flowmem --core "$CORE" --runs "$RUNS" --entries 10000000 --family 6 --label flowmem_10m_v6 >>"$RAW"

step "health-checker CPU: 1000 TCP backends at a 1 s interval, 10 s per run"
BUILD_DIR="$BUILD" /usr/bin/python3 "$ROOT/perf/health_bench.py" "$RUNS" >>"$RAW"

step "end to end in the lab: iperf3 through l4lb vs dpdk-testpmd (DSR) and nftables DNAT (NAT)"
/usr/bin/python3 "$ROOT/perf/lab_bench.py" "$BUILD" "$RUNS" 4 >>"$RAW"

export PERF_CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
export PERF_CORES="$(nproc)"
export PERF_KERNEL="$(uname -r)"
export PERF_LOAD="$LOAD"
export PERF_DPDK="$(pkg-config --modversion libdpdk) (Debian $(dpkg-query -W -f='${Version}' libdpdk-dev))"
export PERF_CXX="$(c++ --version | head -1)"
export PERF_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
OUT=$ROOT/perf/results.json
[ $QUICK = 1 ] && OUT=$WORK/results.json
/usr/bin/python3 "$ROOT/perf/aggregate.py" "$RAW" "$OUT"
echo
echo "callgrind, DSR 10k flows, top functions (Ir over $((64000)) packets):"
cat "$WORK/cg_top.txt"
echo "total time: $(( $(date +%s) - START )) s (load average at start: $LOAD)"
