#!/usr/bin/python3
"""The demo story on the lab (scripts/demo.sh): real HTTP clients and servers in network
namespaces, l4lb on net_af_xdp ports with config/lab.toml. Exits non-zero if any step of the
story did not happen as told."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Lab  # noqa: E402
from lab_common import Balancer, client  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HP = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
NEED_PAGES = 320  # config/lab.toml: memory_mb = 512 plus EAL overhead


def say(msg=""):
    print(msg, flush=True)


def fail(msg):
    say(f"\nDEMO FAILED: {msg}")
    sys.exit(1)


def main():
    build = sys.argv[1]
    t_start = time.monotonic()
    lab = Lab("l4lb", "nat")
    pages0 = int(open(HP).read())
    lb = None
    try:
        say("== 1. hugepages and the lab")
        if pages0 < NEED_PAGES:
            with open(HP, "w") as f:
                f.write(str(NEED_PAGES))
        say(f"   2 MB hugepages: {open(HP).read().strip()} reserved (was {pages0})")
        Lab.down_prefix("l4lb")
        lab.up()
        say(f"   client {lab.client4} -> VIP {lab.vip4}:80 -> l4lb (NAT, Maglev) -> backends "
            f"b1 {lab.backend4[0]} (weight 1), b2 {lab.backend4[1]} (2), b3 {lab.backend4[2]} (3)")

        say("== 2. l4lb with config/lab.toml")
        lb = Balancer(lab, open(os.path.join(REPO, "config", "lab.toml")).read(), build_dir=build)
        lb.start(healthy_backends=6, timeout=30)
        for line in re.findall(r"l4lb info: (health .*)", lb.log()):
            say("   " + line)

        say("== 3. 6000 HTTP requests, each on a new connection")
        t0 = time.monotonic()
        r = client(lab, "conns", lab.vip4, 80, 6000, 16)
        dt = time.monotonic() - t0
        if r["fail"]:
            fail(f"{r['fail']} of 6000 requests failed: {r['errors'][:3]}")
        say(f"   {r['ok']} ok, 0 failed, {r['ok'] / dt:.0f} requests/s")
        say("   backend  weight  expected  measured")
        ok = True
        for i, w in enumerate((1, 2, 3)):
            share = r["backends"].get(f"b{i + 1}", 0) / 6000
            off = abs(share - w / 6)
            ok = ok and off <= 0.03
            say(f"   b{i + 1}       {w}       {w / 6:6.1%}    {share:6.1%}")
        if not ok:
            fail("a share is more than 3 points off its weight")

        say("== 4. b2 dies while clients keep connecting (100 new connections/s for 6 s)")
        result = {}
        th = threading.Thread(target=lambda: result.update(client(lab, "stream", lab.vip4, 80, 6.0, 100)))
        th.start()
        time.sleep(1.0)
        pos = lb.log_size()
        killed = time.time()
        t_kill = time.monotonic()
        lab.stop_server(1)
        m, seen = lb.wait_log(r"health \S+/80/tcp\|198\.18\.30\.12:0: up -> down \(([^)]*)\)", pos, timeout=10)
        # l4lb logs the backend's state change once every worker has the new table.
        _, applied = lb.wait_log(r"backend 198\.18\.30\.12 of VIP 198\.18\.20\.100:80/tcp: healthy -> unhealthy", pos, timeout=5)
        detected = time.time() - (time.monotonic() - applied)
        say(f"   killed b2's server; l4lb marked it down after {seen - t_kill:.2f} s ({m.group(1)}), "
            f"in force after {applied - t_kill:.2f} s")
        th.join()
        reqs = result["requests"]
        before = [q for q in reqs if killed <= q["t"] < detected]
        after = [q for q in reqs if q["t"] >= detected]
        bad_before = sum(1 for q in before if q["error"])
        bad_after = [q for q in after if q["error"]]
        say(f"   {len(reqs)} requests: {bad_before} of {len(before)} failed in the detection window, "
            f"{len(bad_after)} of {len(after)} after it")
        if bad_after:
            fail(f"requests failed after b2 was marked down: {bad_after[:3]}")
        if any(q["backend"] == "b2" for q in after):
            fail("b2 got requests after it was marked down")

        say("== 5. b2 comes back")
        pos = lb.log_size()
        t_back = time.monotonic()
        lab.start_server(1)
        m, seen = lb.wait_log(r"health \S+/80/tcp\|198\.18\.30\.12:0: down -> up \(([^)]*)\)", pos, timeout=15)
        say(f"   b2 up again after {seen - t_back:.2f} s ({m.group(1)})")
        r = client(lab, "conns", lab.vip4, 80, 600, 16)
        if r["fail"] or r["backends"].get("b2", 0) == 0:
            fail(f"after b2's return: {r}")
        say(f"   600 more requests: {r['backends']}, 0 failed")

        say("== 6. stop")
        stats = lb.stop()
        lb = None
        c, d = stats["total"]["counters"], stats["total"]["drops"]
        say(f"   l4lb forwarded {c['tx_packets']} packets ({c['flow_new']} new flows, "
            f"{c['nat_reverse']} NAT replies), dropped {sum(d.values())}")
        say(f"\nDemo passed in {time.monotonic() - t_start:.0f} s.")
    finally:
        if lb is not None:
            lb.kill()
        lab.down()
        if pages0 < NEED_PAGES:
            with open(HP, "w") as f:
                f.write(str(pages0))


if __name__ == "__main__":
    main()
