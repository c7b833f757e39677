#!/usr/bin/python3
"""The full-NAT demo (scripts/demo.sh --fullnat): private backends with no route to the client
network and no VIP configured, nginx on them logging the PROXY v2 header's client address
($proxy_protocol_addr) next to the TCP peer ($remote_addr); l4lb with forwarding = "fullnat" and
proxy_protocol = "v2" (the config `scripts/lab.sh config --topology fullnat` prints). Sends N
requests, counts in nginx's logs how many reached a backend with the client's real address,
prints `requests with the client's address: K of N` and exits non-zero if K < N (or if any step
did not happen).
Usage: demo_fullnat.py BUILD_DIR [N]"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab_nginx  # noqa: E402
from balancer_config import BalancerConfig  # noqa: E402
from demo_lab import HP, NEED_PAGES  # noqa: E402
from lab import Lab  # noqa: E402
from lab_common import Balancer, client, sh  # noqa: E402

PREFIX = "l4fn"


def say(msg=""):
    print(msg, flush=True)


def main():
    build = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    t_start = time.monotonic()
    lab = Lab(PREFIX, "fullnat", ipv6=True)
    pages0 = int(open(HP).read())
    lb = None
    try:
        say("== 1. the lab: private backends")
        if pages0 < NEED_PAGES:
            with open(HP, "w") as f:
                f.write(str(NEED_PAGES))
        Lab.down_prefix(PREFIX)
        lab.up()
        say(f"   client {lab.client4} -> VIP {lab.vip4}:80 -> l4lb (full NAT, from {lab.snat4[0]}) -> nginx :8080 "
            f"on b1..b3 {', '.join(lab.backend4)}")
        routes = sh("ip", "route", capture=True, ns=lab.ns_backends[0]).strip()
        say(f"   b1's only route: {routes}")
        if sh("ip", "route", "get", lab.client4, ns=lab.ns_backends[0], check=False) == 0:
            return fail(f"b1 has a route to the client {lab.client4}")
        say(f"   b1 -> {lab.client4}: no route (the backends are private)")

        say("== 2. l4lb: forwarding = \"fullnat\", proxy_protocol = \"v2\"")
        text = BalancerConfig(hugepages=True, file_prefix=f"l4lb_lab_{PREFIX}").toml(lab)
        lb = Balancer(lab, text, build_dir=build)
        lb.start(healthy_backends=text.count("[[vips.backends]]"), timeout=30)
        say(f"   started; every backend healthy ({text.count('[[vips.backends]]')} checks up)")

        say(f"== 3. {n} HTTP requests, each on a new connection")
        start = [lab_nginx.log_size(lab.state_dir, f"b{i + 1}") for i in range(lab.n)]
        t0 = time.monotonic()
        r = client(lab, "conns", lab.vip4, 80, n, 16, timeout=300)
        dt = time.monotonic() - t0
        say(f"   {r['ok']} ok, {r['fail']} failed in {dt:.1f} s; per backend {r['backends']}")
        lines = [x for i in range(lab.n)
                 for x in lab_nginx.read_log(lab.state_dir, f"b{i + 1}", "pp", start[i])]
        real = sum(1 for x in lines if x["pp_addr"] == lab.client4)
        peers = sorted({x["remote_addr"] for x in lines})
        say(f"   nginx logged {len(lines)} requests; TCP peer (remote_addr): {', '.join(peers) or '-'}")
        if lines:
            say(f"   one log line: {' '.join(lines[0][k] for k in lab_nginx.LOG_FIELDS)}")
        say(f"requests with the client's address: {real} of {n}")

        stats = lb.stop()
        lb = None
        c = stats["total"]["counters"]
        say(f"   l4lb: {c.get('fullnat_new', 0)} full-NAT sessions, {c.get('proxy_header_sent', 0)} PROXY headers sent")
        ok = real == n and r["fail"] == 0
        say(f"\nDemo {'passed' if ok else 'FAILED'} in {time.monotonic() - t_start:.0f} s.")
        return 0 if ok else 1
    finally:
        if lb is not None:
            lb.kill()
        lab.down()
        if pages0 < NEED_PAGES:
            with open(HP, "w") as f:
                f.write(str(pages0))


def fail(msg):
    say(f"\nDEMO FAILED: {msg}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
