#!/usr/bin/python3
"""The callgrind regression gate: instructions per packet of the forwarding path, against
perf/baseline.json.

usage: gate.py [--build DIR] [--update] [--only NAME,...] [--baseline FILE]

For every variant below, runs `l4lb-bench fwd` once under valgrind's callgrind with a frozen
clock (and so a fixed flow-index key): callgrind collects only inside the timed region
(processBurst and what workerMain does after each burst), so the count is the worker's
instructions for 64,000 packets, exact and independent of machine load. A variant fails when
it costs more than 3 % above the committed baseline. An improvement of more than 3 % is
reported, not failed: record it with --update in the same commit.

The counts belong to one build configuration: scripts/test.sh runs the gate on its CI build
(build-ci, debugoptimized, -O2), so baseline.json holds that build's figures. perf/run.sh
reports the release build's (-O3) figures separately. A deliberate increase updates the
baseline (--update) in the same commit, with the reason in the commit message.

Ends with the line "N passed, N failed" (one test per variant); exits 1 on any failure.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKETS = 64000
TOLERANCE = 0.03

# name -> (what it stands for, l4lb-bench fwd arguments beyond the common ones)
VARIANTS = {
    "dsr": ("DSR, IPv4 TCP 64 B, 10k flows", ["--modes", "dsr"]),
    "ipip": ("IPIP, IPv4 TCP, 10k flows", ["--modes", "ipip"]),
    "gue": ("GUE, IPv4 TCP, 10k flows", ["--modes", "gue"]),
    "nat": ("NAT, IPv4 TCP, 10k flows", ["--modes", "nat"]),
    "dsr_ipv6": ("DSR, IPv6 TCP, 10k flows", ["--modes", "dsr", "--family", "6"]),
    "dsr_udp": ("DSR, IPv4 UDP, 10k flows", ["--modes", "dsr", "--proto", "udp"]),
    "dsr_1500b": ("DSR, IPv4 TCP 1500 B, 10k flows", ["--modes", "dsr", "--size", "1500"]),
    "new_flows": ("DSR, every packet a SYN of a new flow", ["--modes", "dsr", "--new-share", "1"]),
    "dsr_1m": ("DSR, 1M flows", ["--modes", "dsr", "--flows", "1000000"]),
    "katran": ("Katran's scenario: 1 hot flow, IPIP, 100 backends", ["--modes", "ipip", "--flows", "1", "--backends", "100"]),
    "dsr_sync": ("DSR with flow sync's worker rings", ["--modes", "dsr", "--sync", "on"]),
    "5tswap": ("the 5tswap baseline (bench code, not l4lb's)", ["--modes", "5tswap"]),
    "nat_new": ("NAT, every packet a SYN of a new flow", ["--modes", "nat", "--new-share", "1"]),
    "fullnat": ("full NAT, IPv4 TCP, 10k flows", ["--modes", "fullnat"]),
    "fullnat_proxy": ("full NAT with PROXY v2, IPv4 TCP, 10k flows", ["--modes", "fullnat", "--proxy-v2"]),
    "fullnat_new": ("full NAT, every packet a SYN of a new flow (a source pair each)",
                    ["--modes", "fullnat", "--new-share", "1"]),
}


def common_args():
    return ["fwd", "--core", "1", "--runs", "1", "--label", "gate", "--packets", str(PACKETS),
            "--callgrind", "--clock", "frozen"]


def measure(bench, args):
    """Instructions per packet of one variant, or raises RuntimeError with the log's tail."""
    with tempfile.TemporaryDirectory(prefix="l4lb-gate.") as tmp:  # callgrind's dump files
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg", "--instr-atstart=no",
               "--collect-atstart=no", bench] + common_args() + args
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    m = re.search(r"^==\d+== Collected : (\d+)$", p.stderr, re.M)
    if p.returncode != 0 or not m:
        tail = "\n".join((p.stderr + p.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"exit {p.returncode}, no callgrind total:\n{tail}")
    return int(m.group(1)) / PACKETS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-ci"))
    ap.add_argument("--baseline", default=os.path.join(ROOT, "perf", "baseline.json"))
    ap.add_argument("--update", action="store_true", help="write the measured figures as the new baseline")
    ap.add_argument("--only", default="", help="comma-separated variant names")
    ap.add_argument("--report", metavar="FILE", help="measure only (no baseline): append one JSON line per "
                    "variant to FILE, for perf/aggregate.py (perf/run.sh, release build)")
    a = ap.parse_args()
    if a.update and a.report:
        ap.error("--update and --report exclude each other")

    bench = os.path.join(a.build, "perf", "l4lb-bench")
    if not os.access(bench, os.X_OK):
        print(f"gate: {bench} missing (build with -Dperf=true)")
        print("0 passed, 1 failed")
        return 1
    if shutil.which("valgrind") is None:
        print("gate: valgrind missing (scripts/install-deps.sh installs it)")
        print("0 passed, 1 failed")
        return 1
    names = [n for n in a.only.split(",") if n] or list(VARIANTS)
    for n in names:
        if n not in VARIANTS:
            sys.exit(f"gate: unknown variant {n}; known: {', '.join(VARIANTS)}")

    base = {}
    if os.path.exists(a.baseline):
        with open(a.baseline) as f:
            base = json.load(f)
    recorded = base.get("variants", {})

    passed = failed = 0
    measured = {}
    t0 = time.time()
    print(f"{'variant':<10} {'baseline':>9} {'now':>9} {'change':>8}  verdict")
    for n in names:
        what, args = VARIANTS[n]
        b = recorded.get(n)
        if not a.update and not a.report and (b is None or b.get("args") != args):
            why = (f"not in {os.path.basename(a.baseline)} (run gate.py --update)" if b is None
                   else f"baseline recorded with other arguments {b.get('args')}")
            print(f"{n:<10} {'':>9} {'':>9} {'':>8}  FAIL: {why}")
            failed += 1
            continue
        try:
            ir = measure(bench, args)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"{n:<10} {'':>9} {'':>9} {'':>8}  FAIL: {e}")
            failed += 1
            continue
        measured[n] = ir
        if a.report:
            with open(a.report, "a") as f:
                f.write(json.dumps({"bench": "callgrind", "label": "callgrind", "mode": n, "run": 0,
                                    "ir_per_pkt": round(ir, 2)}) + "\n")
            print(f"{n:<10} {'':>9} {ir:9.2f} {'':>8}  reported")
            passed += 1
            continue
        if a.update:
            print(f"{n:<10} {'':>9} {ir:9.2f} {'':>8}  recorded")
            passed += 1
            continue
        change = ir / b["ir_per_pkt"] - 1
        if change > TOLERANCE:
            verdict = f"FAIL: more than {TOLERANCE:.0%} above the baseline ({what})"
            failed += 1
        else:
            verdict = "ok" if change >= -TOLERANCE else f"ok, {-change:.1%} below the baseline: record it (--update)"
            passed += 1
        print(f"{n:<10} {b['ir_per_pkt']:9.2f} {ir:9.2f} {change:+8.2%}  {verdict}")

    if a.update and not failed:
        out = {
            "about": "Instructions per packet (callgrind, frozen clock, fixed flow-index key, "
                     f"{PACKETS} packets) of l4lb-bench fwd per variant, on the CI build (build-ci: "
                     "meson debugoptimized, GCC 12 -O2). perf/gate.py fails a variant more than 3 % above "
                     "its figure here; scripts/test.sh runs it. Update with perf/gate.py --update in the "
                     "commit that changes the cost, and say why in its message.",
            "build": os.path.basename(os.path.normpath(a.build)),
            "packets": PACKETS,
            "tolerance": TOLERANCE,
            "variants": dict(recorded),
        }
        for n, ir in measured.items():
            out["variants"][n] = {"what": VARIANTS[n][0], "args": VARIANTS[n][1], "ir_per_pkt": round(ir, 2)}
        with open(a.baseline, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        print(f"gate: wrote {a.baseline}")
    print(f"gate: {len(names)} variants in {time.time() - t0:.0f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
