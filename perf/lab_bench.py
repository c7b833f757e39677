#!/usr/bin/python3
"""End-to-end throughput in the lab: iperf3 TCP through l4lb on the lab's AF_XDP
ports, next to
  - dpdk-testpmd on the same AF_XDP port (DSR lab; --forward-mode=mac toward one backend, which
    holds the VIP: the lab's I/O limit with no balancing at all), and
  - the kernel doing the same job (NAT lab: nftables DNAT with a source hash over the three
    backends, IP forwarding on, in the balancer's namespace),
each as a ratio measured back to back in the same run. Prints one JSON line per run for
perf/aggregate.py. iperf3 opens a control and a data connection, so the VIPs use source_hash
(one client, one backend) and the kernel rule hashes the source address.

usage: lab_bench.py BUILD_DIR RUNS SECONDS
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "lib"))
from balancer_config import BalancerConfig  # noqa: E402
from lab import Lab  # noqa: E402
from lab_common import Balancer, sh  # noqa: E402

BUILD, RUNS, SECS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
NOHC = {"type": "none"}
PREFIX = f"pb{os.getpid() % 10000}"


def iperf(lab, vip):
    """Client -> VIP:5201 for SECS seconds; returns received Gbit/s (0 on failure)."""
    out = subprocess.run(["ip", "netns", "exec", lab.ns_client, "timeout", str(SECS + 15), "iperf3", "-c", vip,
                          "-t", str(SECS), "-J", "--connect-timeout", "3000"], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError):
        return 0.0


def start_iperf_servers(lab):
    for ns in lab.ns_backends:
        sh("iperf3", "-s", "-D", "-p", "5201", ns=ns)
    time.sleep(0.5)


def vip_5201(lab):
    """An extra VIP, port 5201, source_hash over the lab's backends."""
    out = [f'[[vips]]\naddress = "{lab.vip4}"\nport = 5201\nprotocol = "tcp"\nscheduler = "source_hash"\n'
           f'forwarding = "{lab.topology}"\n']
    for b in lab.backend4:
        out.append(f'[[vips.backends]]\naddress = "{b}"\nweight = 1\n')
    return "\n".join(out)


def run_l4lb(lab):
    cfg = BalancerConfig(health=NOHC, udp=False, extra_vips=vip_5201(lab), file_prefix=f"l4lb_{PREFIX}")
    lb = Balancer(lab, cfg.toml(lab), build_dir=BUILD)
    try:
        lb.start()
        time.sleep(1.0)  # neighbours resolved
        return iperf(lab, lab.vip4)
    finally:
        try:
            lb.stop()
        finally:
            lb.kill()


def run_testpmd(lab):
    """testpmd on the balancer's AF_XDP port, MAC-forwarding everything to backend b1 (which
    holds the VIP on its loopback in the DSR lab)."""
    b1_mac = json.loads(sh("ip", "-j", "link", "show", f"{lab.prefix}b1", ns=lab.ns_backends[0], capture=True))[0]["address"]
    lb_mac = lab.lb_mac(lab.lan_if)
    # The client cannot ARP for the VIP (testpmd answers nothing): a static entry.
    sh("ip", "neigh", "replace", lab.vip4, "lladdr", lb_mac, "dev", f"{lab.prefix}c0", ns=lab.ns_client)
    prefix = f"tpmd_{PREFIX}"
    log_path = os.path.join(lab.state_dir, "testpmd.log")
    log = open(log_path, "w")
    p = subprocess.Popen(["ip", "netns", "exec", lab.ns_lb, "stdbuf", "-oL", "dpdk-testpmd", "-l", "0,1", "--no-huge", "-m", "1024",
                          "--no-pci", "--file-prefix", prefix, "--vdev", f"net_af_xdp0,iface={lab.lan_if}", "--",
                          "--forward-mode=mac", f"--eth-peer=0,{b1_mac}", "--auto-start", "--stats-period=0"],
                         stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 60  # EAL zeroes its 1 GB of --no-huge memory first
        while "Press enter to exit" not in open(log_path).read():
            if time.monotonic() > end or p.poll() is not None:
                raise RuntimeError("dpdk-testpmd did not start: " + open(log_path).read()[-2000:])
            time.sleep(0.1)
        time.sleep(0.5)
        return iperf(lab, lab.vip4)
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{prefix}"])
        sh("ip", "neigh", "del", lab.vip4, "dev", f"{lab.prefix}c0", ns=lab.ns_client, check=False)


def run_kernel(lab):
    """The balancer namespace's kernel as the balancer: VIP on the wan veth, DNAT by source hash."""
    ns = lab.ns_lb
    sh("ip", "addr", "add", f"{lab.vip4}/32", "dev", lab.wan_if, ns=ns)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=ns)
    rules = os.path.join(lab.state_dir, "kernel_lb.nft")
    with open(rules, "w") as f:
        f.write(f"""table ip l4lbbench {{
  chain pre {{
    type nat hook prerouting priority -100;
    ip daddr {lab.vip4} tcp dport 5201 dnat to jhash ip saddr mod 3 map {{ 0 : {lab.backend4[0]}, 1 : {lab.backend4[1]}, 2 : {lab.backend4[2]} }}
  }}
}}
""")
    sh("nft", "-f", rules, ns=ns)
    try:
        time.sleep(0.5)
        return iperf(lab, lab.vip4)
    finally:
        sh("nft", "delete", "table", "ip", "l4lbbench", ns=ns, check=False)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=0", ns=ns)
        sh("ip", "addr", "del", f"{lab.vip4}/32", "dev", lab.wan_if, ns=ns, check=False)


def main():
    for topo in ("dsr", "nat"):
        lab = Lab(PREFIX, topo, False, 3)
        try:
            lab.up()
            start_iperf_servers(lab)
            for run in range(RUNS):
                mine = run_l4lb(lab)
                other = run_testpmd(lab) if topo == "dsr" else run_kernel(lab)
                key = "testpmd" if topo == "dsr" else "kernel"
                print(json.dumps({"bench": "lab", "label": f"e2e_{topo}", "run": run, "l4lb_gbps": round(mine, 3),
                                  f"{key}_gbps": round(other, 3),
                                  f"vs_{key}": round(mine / other, 3) if other > 0 else 0.0}), flush=True)
        finally:
            lab.down()


if __name__ == "__main__":
    main()
