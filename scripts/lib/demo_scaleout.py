#!/usr/bin/python3
"""The scale-out demo (scripts/demo.sh --scale-out): three l4lb balancers behind an
ECMP router, each with its own BIRD; long-lived connections through them; one balancer killed
(SIGKILL, l4lb and its BIRD) while the survivors get a new backend and drain one. Prints
`connections reset: N` and exits non-zero if N > 0 (or if any step did not happen).
Usage: demo_scaleout.py BUILD_DIR"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ecmp_cluster import Cluster, scale_out_scenario  # noqa: E402
from ecmp_lab import EcmpLab  # noqa: E402

PREFIX = "l4so"
CONNS_PER_FAMILY, UDP_PER_FAMILY, AFTER_S = 100, 10, 10.0
VICTIM, ADD, DRAIN = 0, 3, 1


def say(msg=""):
    print(msg, flush=True)


def main():
    build = sys.argv[1]
    t_start = time.monotonic()
    lab = EcmpLab(PREFIX, balancers=3, ipv6=True, backends=5, announce="l4lb")
    cluster = None
    try:
        say("== 1. the ECMP lab")
        EcmpLab.down_prefix(PREFIX)
        lab.up()
        say(f"   client {lab.client4} / {lab.client6} -> router (BIRD, ECMP over BGP routes) -> balancers "
            + ", ".join(f"lb{i + 1} {a}" for i, a in enumerate(lab.lb4))
            + f" -> backends b1..b3 (DSR); VIPs {lab.vip4}, {lab.vip6}")

        say("== 2. l4lb and BIRD in every balancer")
        cluster = Cluster(lab, build, sync=True, bgp=True)
        cluster.start_all()
        for vip in cluster.vips():
            say(f"   router: {vip} via " + ", ".join(sorted(lab.nexthops(vip))))

        say(f"== 3. {2 * CONNS_PER_FAMILY} long-lived TCP connections (echo every 100 ms, every byte checked) "
            f"and {2 * UDP_PER_FAMILY} UDP flows; after 3 s: b4 added and b2 drained on lb2, lb3; lb1 killed")
        s = scale_out_scenario(cluster, VICTIM, ADD, DRAIN, CONNS_PER_FAMILY, UDP_PER_FAMILY, after=AFTER_S)
        s.pop("result")
        say(f"   faults within {s['fault_window_s']:.2f} s; the router dropped lb1 after "
            + ", ".join(f"{v:.2f} s ({k})" for k, v in s["withdrawn_s"].items())
            + f"; {s['victim_flows']} flows were on lb1")
        for name, v in s["survivors"].items():
            say(f"   {name}: {v['flow_peer_hit']} flows arrived from another balancer and were found in the state "
                f"a peer had sent (flow_peer_hit)")
        say(f"   {s['bytes_verified']} of {s['bytes_sent']} bytes echoed and verified; longest exchange "
            f"{s['max_exchange_s']:.3f} s; UDP: {s['udp_replies']} replies, {s['udp_lost']} lost, "
            f"{s['udp_backend_changes']} backend changes")
        say(f"   connections stalled: {s['stalled']}, wrong bytes: {s['mismatch']}, other failures: {s['other']}")
        say(f"connections reset: {s['reset']}")
        ok = s["failed"] == 0 and s["bytes_verified"] == s["bytes_sent"]
        say(f"\nDemo {'passed' if ok else 'FAILED'} in {time.monotonic() - t_start:.0f} s.")
        return 0 if ok else 1
    finally:
        if cluster is not None:
            cluster.stop_all()
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
