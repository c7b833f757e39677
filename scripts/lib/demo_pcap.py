"""Demo: the real l4lb binary balancing generated flows on net_pcap ports, decoded by scapy."""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from scapy.all import IP, TCP, Ether, Raw, rdpcap, wrpcap  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
VIP = "198.18.1.10"
BACKENDS = [("198.18.2.11", "02:00:00:00:02:11", 1), ("198.18.2.12", "02:00:00:00:02:12", 2),
            ("198.18.2.13", "02:00:00:00:02:13", 3)]
FLOWS, PKTS_PER_FLOW = 3000, 3


def config(tmp, mode):
    backends = "".join(
        f'  [[vips.backends]]\n  address = "{a}"\n  mac = "{m}"\n  weight = {w}\n' for a, m, w in BACKENDS)
    return f"""[eal]
main_core = 0
worker_cores = [1]
hugepages = false
memory_mb = 512
file_prefix = "l4lb_demo_{os.getpid()}"
[flow_table]
capacity = 65536
[[ports]]
name = "p0"
device = "net_pcap0,rx_pcap={tmp}/in.pcap,tx_pcap={tmp}/out.pcap"
mac = "02:00:00:00:00:01"
ipv4 = "198.18.0.1/15"
[[vips]]
name = "web"
address = "{VIP}"
port = 80
forwarding = "{mode}"
{backends}"""


def run(mode):
    tmp = tempfile.mkdtemp(prefix="l4lb-demo-")
    prefix = f"l4lb_demo_{os.getpid()}"
    try:
        pkts = []
        for f in range(FLOWS):
            client = f"198.18.{100 + f // 250}.{f % 250 + 1}"
            for i in range(PKTS_PER_FLOW):
                flags = "S" if i == 0 else "A"
                pkts.append(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") /
                            IP(src=client, dst=VIP) / TCP(sport=20000 + f % 40000, dport=80, flags=flags) /
                            Raw(b"x" * 16))
        wrpcap(f"{tmp}/in.pcap", pkts)
        with open(f"{tmp}/l4lb.toml", "w") as fh:
            fh.write(config(tmp, mode))
        proc = subprocess.Popen([BIN, "-c", f"{tmp}/l4lb.toml", "--stats-file", f"{tmp}/stats.json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        if proc.returncode != 0:
            print(err)
            raise SystemExit(f"l4lb exited with {proc.returncode}")
        stats = json.load(open(f"{tmp}/stats.json"))["total"]
        out = rdpcap(f"{tmp}/out.pcap")
        per_backend = collections.Counter()
        flow_backend = {}
        for p in out:
            inner = p[IP] if mode == "dsr" else p[IP].payload
            key = (inner.src, inner[TCP].sport)
            dst = p[IP].dst if mode == "ipip" else {m: a for a, m, _ in BACKENDS}[p[Ether].dst]
            if flow_backend.setdefault(key, dst) != dst:
                raise SystemExit(f"flow {key} went to two backends")
            per_backend[dst] += 1
        flows_per_backend = collections.Counter(flow_backend.values())
        total_w = sum(w for _, _, w in BACKENDS)
        print(f"\nforwarding = {mode}: {len(pkts)} packets in, {stats['counters']['tx_packets']} out, "
              f"{stats['counters']['flow_new']} new flows, {stats['counters']['flow_hit']} flow-table hits, "
              f"drops {sum(stats['drops'].values())}")
        print(f"  {'backend':<14} {'weight':>6} {'expected':>9} {'flows':>6} {'share':>7}")
        ok = True
        for a, _, w in BACKENDS:
            share = flows_per_backend[a] / FLOWS
            want = w / total_w
            ok &= abs(share - want) <= 0.02
            print(f"  {a:<14} {w:>6} {want:>8.1%} {flows_per_backend[a]:>6} {share:>7.1%}")
        return ok and len(out) == len(pkts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


ok = all([run("dsr"), run("ipip")])
print("\ndemo:", "OK — every flow kept one backend, shares follow the weights" if ok else "FAILED")
sys.exit(0 if ok else 1)
