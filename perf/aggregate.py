#!/usr/bin/python3
"""Aggregates l4lb-bench's JSON lines into perf/results.json and prints the summary table.

usage: aggregate.py RAW.jsonl RESULTS.json  (machine facts come from the environment run.sh sets)

Every figure is the median, min and max over the runs of one benchmark invocation (at least 5);
a _vs_ figure is a ratio taken inside each run (both sides measured back to back on the same
packets), then aggregated like the others.
"""
import json
import os
import statistics
import sys

# name -> (bench, label, mode or None, field, unit)
FIGURES = {
    "fwd_10k_mpps": ("fwd", "fwd_10k", "dsr", "mpps", "Mpps"),
    "fwd_10k_ns_per_pkt": ("fwd", "fwd_10k", "dsr", "ns_per_pkt", "ns"),
    "fwd_10k_cycles_per_pkt": ("fwd", "fwd_10k", "dsr", "cycles_per_pkt", "TSC cycles"),
    "baseline_5tswap_mpps": ("fwd", "fwd_10k", "5tswap", "mpps", "Mpps"),
    "baseline_5tswap_ns_per_pkt": ("fwd", "fwd_10k", "5tswap", "ns_per_pkt", "ns"),
    "fwd_10k_vs_baseline": ("fwd", "fwd_10k", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_samepages_mpps": ("fwd", "fwd_10k_samepages", "dsr", "mpps", "Mpps"),
    "fwd_10k_samepages_vs_baseline": ("fwd", "fwd_10k_samepages", "dsr", "vs_5tswap", "ratio"),
    "fwd_1m_mpps": ("fwd", "fwd_1m", "dsr", "mpps", "Mpps"),
    "fwd_1m_ns_per_pkt": ("fwd", "fwd_1m", "dsr", "ns_per_pkt", "ns"),
    "fwd_1m_vs_baseline": ("fwd", "fwd_1m", "dsr", "vs_5tswap", "ratio"),
    "fwd_1m_zipf_mpps": ("fwd", "fwd_1m_zipf", "dsr", "mpps", "Mpps"),
    "fwd_1m_zipf_vs_baseline": ("fwd", "fwd_1m_zipf", "dsr", "vs_5tswap", "ratio"),
    "fwd_10m_mpps": ("fwd", "fwd_10m", "dsr", "mpps", "Mpps"),
    "fwd_10m_vs_baseline": ("fwd", "fwd_10m", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_nic_cksum_mpps": ("fwd", "fwd_10k_nic_cksum", "dsr", "mpps", "Mpps"),
    "fwd_10k_nic_cksum_vs_baseline": ("fwd", "fwd_10k_nic_cksum", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_udp_mpps": ("fwd", "fwd_10k_udp", "dsr", "mpps", "Mpps"),
    "fwd_10k_udp_vs_baseline": ("fwd", "fwd_10k_udp", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_ipv6_mpps": ("fwd", "fwd_10k_ipv6", "dsr", "mpps", "Mpps"),
    "fwd_10k_ipv6_vs_baseline": ("fwd", "fwd_10k_ipv6", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_1500b_mpps": ("fwd", "fwd_10k_1500b", "dsr", "mpps", "Mpps"),
    "fwd_10k_1500b_vs_baseline": ("fwd", "fwd_10k_1500b", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_syn10_mpps": ("fwd", "fwd_10k_syn10", "dsr", "mpps", "Mpps"),
    "fwd_10k_syn10_vs_baseline": ("fwd", "fwd_10k_syn10", "dsr", "vs_5tswap", "ratio"),
    "fwd_10k_with_sweep_mpps": ("fwd", "fwd_10k_sweep", "dsr", "mpps", "Mpps"),
    "fwd_10k_with_sweep_vs_baseline": ("fwd", "fwd_10k_sweep", "dsr", "vs_5tswap", "ratio"),
    "new_flows_mps": ("fwd", "new_flows", "dsr", "mpps", "M flows/s"),
    "new_flows_vs_baseline": ("fwd", "new_flows", "dsr", "vs_5tswap", "ratio"),
    "ipip_mpps": ("fwd", "modes", "ipip", "mpps", "Mpps"),
    "gue_mpps": ("fwd", "modes", "gue", "mpps", "Mpps"),
    "nat_mpps": ("fwd", "modes", "nat", "mpps", "Mpps"),
    "ipip_vs_dsr": ("fwd", "modes", "ipip", "vs_first", "ratio"),
    "gue_vs_dsr": ("fwd", "modes", "gue", "vs_first", "ratio"),
    "nat_vs_dsr": ("fwd", "modes", "nat", "vs_first", "ratio"),
    "ipip_vs_baseline": ("fwd", "modes", "ipip", "vs_5tswap", "ratio"),
    "gue_vs_baseline": ("fwd", "modes", "gue", "vs_5tswap", "ratio"),
    "nat_vs_baseline": ("fwd", "modes", "nat", "vs_5tswap", "ratio"),
    "fullnat_mpps": ("fwd", "fullnat", "fullnat", "mpps", "Mpps"),
    "fullnat_vs_nat": ("fwd", "fullnat", "fullnat", "vs_first", "ratio"),
    "fullnat_vs_baseline": ("fwd", "fullnat", "fullnat", "vs_5tswap", "ratio"),
    "fullnat_proxy_mpps": ("fwd", "fullnat_proxy", "fullnat", "mpps", "Mpps"),
    "fullnat_proxy_vs_nat": ("fwd", "fullnat_proxy", "fullnat", "vs_first", "ratio"),
    "fullnat_new_mps": ("fwd", "fullnat_new", "fullnat", "mpps", "M flows/s"),
    "nat_new_mps": ("fwd", "fullnat_new", "nat", "mpps", "M flows/s"),
    "fullnat_new_vs_nat_new": ("fwd", "fullnat_new", "fullnat", "vs_first", "ratio"),
    "katran_ns_per_pkt": ("fwd", "katran", "ipip", "ns_per_pkt", "ns"),
    "katran_mpps": ("fwd", "katran", "ipip", "mpps", "Mpps"),
    "katran_baseline_5tswap_ns_per_pkt": ("fwd", "katran", "5tswap", "ns_per_pkt", "ns"),
    "katran_vs_baseline": ("fwd", "katran", "ipip", "vs_5tswap", "ratio"),
    "flood_established_hit_rate": ("flood", "flood_admission", None, "established_hit_rate", "ratio"),
    "flood_legit_tracked_rate": ("flood", "flood_admission", None, "legit_tracked_rate", "ratio"),
    "flood_mpps": ("flood", "flood_admission", None, "mpps", "Mpps"),
    "flood_spoofed_syn_mps": ("flood", "flood_admission", None, "spoofed_syn_per_s", "SYN/s"),
    "flood_embryonic_peak": ("flood", "flood_admission", None, "embryonic_peak", "entries"),
    "flood_embryonic_limit": ("flood", "flood_admission", None, "embryonic_limit", "entries"),
    "flood_no_admission_established_hit_rate": ("flood", "flood_no_admission", None, "established_hit_rate", "ratio"),
    "flood_no_admission_legit_tracked_rate": ("flood", "flood_no_admission", None, "legit_tracked_rate", "ratio"),
    "flood_no_admission_mpps": ("flood", "flood_no_admission", None, "mpps", "Mpps"),
    "testpmd_5tswap_pcap_mpps": ("testpmd", "5tswap_pcap", None, "mpps", "Mpps"),
    "publish_p50_ms": ("publish", "publish_rt", None, "publish_p50_ms", "ms"),
    "publish_p99_ms": ("publish", "publish_rt", None, "publish_p99_ms", "ms"),
    "publish_nosweep_p50_ms": ("publish", "publish_rt_nosweep", None, "publish_p50_ms", "ms"),
    "publish_nosweep_p99_ms": ("publish", "publish_rt_nosweep", None, "publish_p99_ms", "ms"),
    "publish_shared_p99_ms": ("publish", "publish_cfs", None, "publish_p99_ms", "ms"),
    "snapshot_build_p50_ms": ("publish", "publish_rt", None, "build_p50_ms", "ms"),
    "snapshot_build_p99_ms": ("publish", "publish_rt", None, "build_p99_ms", "ms"),
    "idle_backoff_off_mpps": ("idle", "idle_rt", "off", "mpps", "Mpps"),
    "idle_backoff_on_mpps": ("idle", "idle_rt", "on", "mpps", "Mpps"),
    "idle_backoff_off_cycles_per_pkt": ("idle", "idle_rt", "off", "busy_cycles_per_pkt", "TSC cycles"),
    "idle_backoff_on_cycles_per_pkt": ("idle", "idle_rt", "on", "busy_cycles_per_pkt", "TSC cycles"),
    "idle_backoff_off_first_pkt_p50_us": ("idle", "idle_rt", "off", "first_pkt_us_p50", "us"),
    "idle_backoff_on_first_pkt_p50_us": ("idle", "idle_rt", "on", "first_pkt_us_p50", "us"),
    "idle_backoff_on_first_pkt_max_us": ("idle", "idle_rt", "on", "first_pkt_us_max", "us"),
    "idle_backoff_on_idle_cpu_share": ("idle", "idle_rt", "on", "idle_cpu_share", "ratio"),
    "flow_entry_bytes": ("flowmem", "flowmem_1m_v4", None, "bytes_per_entry", "bytes"),
    "flow_entry_bytes_10m": ("flowmem", "flowmem_10m_v4", None, "bytes_per_entry", "bytes"),
    "flow_table_10m_mb": ("flowmem", "flowmem_10m_v4", None, "mb", "MiB"),
    "flow_entry6_bytes_10m": ("flowmem", "flowmem_10m_v6", None, "bytes_per_entry", "bytes"),
    "flow_table6_10m_mb": ("flowmem", "flowmem_10m_v6", None, "mb", "MiB"),
    "health_checker_cpu_pct_1000x1s": ("health", "health_1000x1s", None, "cpu_pct", "% of one core"),
    "e2e_l4lb_dsr_gbps": ("lab", "e2e_dsr", None, "l4lb_gbps", "Gbit/s"),
    "e2e_testpmd_gbps": ("lab", "e2e_dsr", None, "testpmd_gbps", "Gbit/s"),
    "e2e_vs_testpmd": ("lab", "e2e_dsr", None, "vs_testpmd", "ratio"),
    "e2e_l4lb_nat_gbps": ("lab", "e2e_nat", None, "l4lb_gbps", "Gbit/s"),
    "e2e_kernel_nat_gbps": ("lab", "e2e_nat", None, "kernel_gbps", "Gbit/s"),
    "e2e_nat_vs_kernel": ("lab", "e2e_nat", None, "vs_kernel", "ratio"),
}
# Exact instructions per packet (callgrind, one run each): every variant of perf/gate.py.
for v in ("dsr", "ipip", "gue", "nat", "dsr_ipv6", "dsr_udp", "dsr_1500b", "new_flows", "dsr_1m", "katran",
          "dsr_sync", "nat_new", "fullnat", "fullnat_proxy", "fullnat_new", "5tswap"):
    FIGURES[f"callgrind_{v}_ir_per_pkt"] = ("callgrind", "callgrind", v, "ir_per_pkt", "instructions")

# Katran's own XDP program on this machine (BPF_PROG_TEST_RUN, one hot established flow, IPIP, 100
# backends, 65537-slot ring), measured once, by hand: the reference for
# katran_vs_katran_xdp. Not re-measured by run.sh (Katran is not built here).
KATRAN_XDP_NS = 141.0

# name -> (numerator figure, denominator figure, unit): ratios of two figures, run by run (run i
# of one with run i of the other) when both have per-run values, e.g. IPv6's ratio to its own
# 5tswap baseline over IPv4's ratio to its own. "const:X" divides by a constant.
DERIVED = {
    "ipv6_vs_ipv4": ("fwd_10k_ipv6_vs_baseline", "fwd_10k_vs_baseline", "ratio"),
    "udp_vs_tcp": ("fwd_10k_udp_vs_baseline", "fwd_10k_vs_baseline", "ratio"),
    "1500b_vs_64b": ("fwd_10k_1500b_vs_baseline", "fwd_10k_vs_baseline", "ratio"),
    "fwd_1m_vs_10k": ("fwd_1m_vs_baseline", "fwd_10k_samepages_vs_baseline", "ratio"),
    "ipip_ir_vs_dsr": ("callgrind_ipip_ir_per_pkt", "callgrind_dsr_ir_per_pkt", "ratio"),
    "gue_ir_vs_dsr": ("callgrind_gue_ir_per_pkt", "callgrind_dsr_ir_per_pkt", "ratio"),
    "nat_ir_vs_dsr": ("callgrind_nat_ir_per_pkt", "callgrind_dsr_ir_per_pkt", "ratio"),
    "katran_xdp_vs_l4lb": (f"const:{KATRAN_XDP_NS}", "katran_ns_per_pkt", "ratio"),
    "fullnat_ir_vs_nat": ("callgrind_fullnat_ir_per_pkt", "callgrind_nat_ir_per_pkt", "ratio"),
}
# --- the whole worker on net_ring ports, and the multi-core model -------------------------------
FIGURES.update({
    "ports_l4lb_mpps": ("ports", "ports", "l4lb", "mpps", "Mpps"),
    "ports_testpmd_mpps": ("ports", "ports", "5tswap", "mpps", "Mpps"),
    "ports_vs_testpmd": ("ports", "ports", "l4lb", "vs_testpmd", "ratio"),
    "ports_l4lb_cycles_per_pkt": ("ports", "ports", "l4lb", "cycles_per_pkt", "TSC cycles"),
    "ports_testpmd_cycles_per_pkt": ("ports", "ports", "5tswap", "cycles_per_pkt", "TSC cycles"),
    "ports_io_mpps": ("ports", "ports", "io", "mpps", "Mpps"),
    "ports_gen_busy_share_l4lb": ("ports", "ports", "l4lb", "gen_busy_time_share", "ratio"),
    "ports_worker_idle_share_l4lb": ("ports", "ports", "l4lb", "worker_idle_time_share", "ratio"),
    "ports_wire_1w_l4lb_mpps": ("ports", "ports_wire_1w", "l4lb", "mpps", "Mpps"),
    "ports_wire_2w_l4lb_mpps": ("ports", "ports_wire_2w", "l4lb", "mpps", "Mpps"),
    "ports_wire_1w_testpmd_mpps": ("ports", "ports_wire_1w", "5tswap", "mpps", "Mpps"),
    "ports_wire_2w_testpmd_mpps": ("ports", "ports_wire_2w", "5tswap", "mpps", "Mpps"),
    "ports_wire_1w_l4lb_cycles_per_pkt": ("ports", "ports_wire_1w", "l4lb", "cycles_per_pkt", "TSC cycles"),
    "ports_wire_2w_l4lb_cycles_per_pkt": ("ports", "ports_wire_2w", "l4lb", "cycles_per_pkt", "TSC cycles"),
    "ports_wire_2w_busiest_worker_share": ("ports", "ports_wire_2w", "l4lb", "busiest_worker_share", "ratio"),
})
# Scaling: run i of 2 workers over run i of 1 (two processes back to back, perf/run.sh).
DERIVED["ports_l4lb_2w_vs_1w"] = ("ports_wire_2w_l4lb_mpps", "ports_wire_1w_l4lb_mpps", "ratio")
DERIVED["ports_testpmd_2w_vs_1w"] = ("ports_wire_2w_testpmd_mpps", "ports_wire_1w_testpmd_mpps", "ratio")
# --- end of the ports figures -----------------------------------------------------------------

for size in (65537, 655373):
    for n in (10, 100, 1000):
        # Thread CPU time (what the build costs); the _wall_ figures add other processes' slices.
        FIGURES[f"maglev_build_{size}x{n}_ms"] = ("maglev", f"maglev_{size}x{n}", None, "cpu_ms", "ms")
        FIGURES[f"maglev_build_{size}x{n}_weighted_ms"] = ("maglev", f"maglev_{size}x{n}_w", None, "cpu_ms", "ms")
        FIGURES[f"maglev_build_{size}x{n}_wall_ms"] = ("maglev", f"maglev_{size}x{n}", None, "ms", "ms")
        FIGURES[f"maglev_build_{size}x{n}_weighted_wall_ms"] = ("maglev", f"maglev_{size}x{n}_w", None, "ms", "ms")

# name -> (comparison, bound, text). Per-packet cost and parity first, then throughput, Maglev build,
# SYN flood, publish and end to end.
TARGETS = {
    "callgrind_dsr_ir_per_pkt": ("<=", 300, "DSR 10k flows <= 300 instructions/packet"),
    "fwd_10k_vs_baseline": (">=", 0.55, "DSR 10k flows >= 0.55 x 5tswap"),
    "ipv6_vs_ipv4": (">=", 0.85, "IPv6 >= 0.85 x IPv4 (each vs its 5tswap)"),
    "udp_vs_tcp": (">=", 0.95, "UDP >= 0.95 x TCP (each vs its 5tswap)"),
    "1500b_vs_64b": (">=", 0.95, "1500 B >= 0.95 x 64 B (each vs its 5tswap)"),
    "fwd_1m_vs_10k": (">=", 0.75, "1M flows >= 0.75 x 10k (each vs its 5tswap)"),
    "ipip_ir_vs_dsr": ("<=", 1.10, "IPIP within 10 % of DSR, instructions"),
    "gue_ir_vs_dsr": ("<=", 1.10, "GUE within 10 % of DSR, instructions"),
    "nat_ir_vs_dsr": ("<=", 1.10, "NAT within 10 % of DSR, instructions"),
    "ipip_vs_dsr": (">=", 0.85, "IPIP within 15 % of DSR, time"),
    "gue_vs_dsr": (">=", 0.85, "GUE within 15 % of DSR, time"),
    "nat_vs_dsr": (">=", 0.85, "NAT within 15 % of DSR, time"),
    "fullnat_ir_vs_nat": ("<=", 1.15, "full NAT within 15 % of two-arm NAT, instructions"),
    "fullnat_new_vs_nat_new": (">=", 0.7, "new full-NAT flows >= 0.7 x new NAT flows per second"),
    "katran_ns_per_pkt": ("<=", 28, "Katran's scenario <= 28 ns/packet"),
    "katran_xdp_vs_l4lb": (">=", 5, "... i.e. >= 5 x Katran's XDP (141 ns)"),
    "new_flows_mps": (">=", 20, "new flows >= 20 M/s"),
    "fwd_10k_mpps": (">=", 25, "10k flows, 64 B TCP, DSR >= 25 Mpps"),
    "fwd_1m_mpps": (">=", 12, "1M flows uniform >= 12 Mpps"),
    "maglev_build_65537x1000_ms": ("<=", 10, "Maglev 65537 x 1000 <= 10 ms"),
    "maglev_build_65537x1000_weighted_ms": ("<=", 10, "... weighted"),
    "flood_established_hit_rate": (">=", 1.0, "SYN flood: established flows' hit rate stays 100 %"),
    "flood_legit_tracked_rate": (">=", 0.99, "SYN flood: >= 99 % of legitimate new connections tracked"),
    "publish_p99_ms": ("<=", 1, "publish p99 <= 1 ms, worker busy"),
    "e2e_vs_testpmd": (">=", 0.9, "end to end >= 0.9 x testpmd on the same AF_XDP port"),
}


# The whole worker on ports.
TARGETS["ports_vs_testpmd"] = (">=", 0.8, "whole worker on ports >= 0.8 x testpmd 5tswap")


def main():
    raw, out = sys.argv[1], sys.argv[2]
    recs = []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    figures, missing, per_run = {}, [], {}
    for name, (bench, label, mode, field, unit) in FIGURES.items():
        vals = [r[field] for r in recs
                if r.get("bench") == bench and r.get("label") == label
                and (mode is None or r.get("mode") == mode) and r.get(field) is not None]
        if not vals:
            missing.append(name)
            continue
        per_run[name] = vals
        figures[name] = {"median": round(statistics.median(vals), 6), "min": round(min(vals), 6),
                         "max": round(max(vals), 6), "unit": unit, "runs": len(vals)}
    for name, (num, den, unit) in DERIVED.items():
        a = [float(num[6:])] if num.startswith("const:") else per_run.get(num)
        b = per_run.get(den)
        if not a or not b:
            missing.append(name)
            continue
        if len(a) == 1 or len(b) == 1 or len(a) != len(b):  # a constant, an exact count, or unpaired
            vals = [x / y for x in a for y in b] if (len(a) == 1 or len(b) == 1) else \
                [statistics.median(a) / statistics.median(b)]
        else:
            vals = [x / y for x, y in zip(a, b)]
        per_run[name] = vals
        figures[name] = {"median": round(statistics.median(vals), 6), "min": round(min(vals), 6),
                         "max": round(max(vals), 6), "unit": unit, "runs": len(vals),
                         "derived": f"{num} / {den}"}
    for name, (op, bound, text) in TARGETS.items():
        if name in figures:
            m = figures[name]["median"]
            figures[name]["target"] = {"op": op, "bound": bound, "text": text,
                                       "met": m >= bound if op == ">=" else m <= bound}
    result = {
        "machine": {
            "cpu": os.environ.get("PERF_CPU", ""),
            "cores": int(os.environ.get("PERF_CORES", "0")),
            "kernel": os.environ.get("PERF_KERNEL", ""),
            "load_average_at_start": os.environ.get("PERF_LOAD", ""),
            "note": "2 vCPUs (KVM) shared with other builds while measuring; worker pinned to core 1",
        },
        "dpdk": os.environ.get("PERF_DPDK", ""),
        "compiler": os.environ.get("PERF_CXX", ""),
        "commit": os.environ.get("PERF_COMMIT", ""),
        "figures": figures,
        "not_measured": {},
    }
    if missing:
        result["not_measured"]["missing_this_run"] = missing
    with open(out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=False)
        f.write("\n")

    print(f"{'figure':40s} {'median':>12s} {'min':>12s} {'max':>12s}  unit")
    for name, v in figures.items():
        print(f"{name:40s} {v['median']:12.4g} {v['min']:12.4g} {v['max']:12.4g}  {v['unit']}")
    print()
    print(f"{'target':40s} {'median':>12s}  verdict")
    failed = 0
    for name, (op, bound, text) in TARGETS.items():
        if name not in figures:
            print(f"{text:40s} {'-':>12s}  NOT MEASURED")
            continue
        m = figures[name]["median"]
        ok = m >= bound if op == ">=" else m <= bound
        failed += not ok
        print(f"{text:40s} {m:12.4g}  {'met' if ok else 'MISSED'}")
    if missing:
        print("\nnot measured this run: " + ", ".join(missing))
    print(f"\nwrote {out}: {len(figures)} figures, {len(TARGETS) - failed} of {len(TARGETS)} targets met")


if __name__ == "__main__":
    main()
