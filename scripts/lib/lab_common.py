"""What every lab (scripts/lib/lab.py, scripts/lib/ecmp_lab.py) is made of, and running l4lb and
clients in one: `sh`, the namespaces-and-veths base class NetnsLab, Balancer (l4lb in a lab
namespace), `client` (tests/e2e/lab_client.py in the client namespace).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_DIR = "/run/l4lb-lab"
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(REPO_ROOT, "tests", "e2e", "lab_client.py")


def sh(*cmd, check=True, ns=None, capture=False):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout if capture else r.returncode


class NetnsLab:
    """Network namespaces joined by veths and a switch namespace's bridge, backends running
    scripts/lib/lab_server.py. A subclass sets the names and addresses, namespaces() and up().
    Names derive from the prefix (at most 6 characters), so labs with different prefixes coexist."""

    def __init__(self, prefix, ipv6, backends):
        if not (1 <= len(prefix) <= 6) or not prefix.replace("-", "").isalnum():
            raise ValueError("prefix: 1..6 letters or digits")
        if not (1 <= backends <= 9):
            raise ValueError("backends: 1..9")
        self.prefix, self.ipv6, self.n = prefix, ipv6, backends
        self.state_dir = os.path.join(RUN_DIR, prefix)
        self.ns_backends = [f"{prefix}-b{i}" for i in range(1, backends + 1)]

    def path(self, name):
        return os.path.join(self.state_dir, name)

    # -- helpers -----------------------------------------------------------------------------
    def _veth(self, a, ns_a, b, ns_b):
        sh("ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", b, "netns", ns_b)
        for name, ns in ((a, ns_a), (b, ns_b)):
            sh("ip", "link", "set", name, "up", ns=ns)
            sh("ethtool", "-K", name, "tx", "off", ns=ns, check=False)

    def _addr(self, ns, ifname, v4, plen4, v6=None, plen6=64):
        sh("ip", "addr", "add", f"{v4}/{plen4}", "dev", ifname, ns=ns)
        if self.ipv6 and v6:
            sh("ip", "addr", "add", f"{v6}/{plen6}", "dev", ifname, "nodad", ns=ns)

    def _namespaces_and_switch(self):
        """Every namespace of the lab (loopback up; no DAD with IPv6) and the switch's bridge."""
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            if self.ipv6:
                sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=ns)
                sh("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", ns=ns)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.ns_sw)
        sh("ip", "link", "set", "br0", "up", ns=self.ns_sw)

    def _bridge(self, port):
        sh("ip", "link", "set", port, "master", "br0", ns=self.ns_sw)

    def namespaces(self):
        raise NotImplementedError

    def start_server(self, i):
        name = f"b{i + 1}"
        log = open(os.path.join(self.state_dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns_backends[i], "/usr/bin/python3",
                                 os.path.join(HERE, "lab_server.py"), name, self.state_dir],
                                stdout=log, stderr=log, start_new_session=True)
        with open(os.path.join(self.state_dir, f"{name}.pid"), "w") as f:
            f.write(str(proc.pid))

    def stop_server(self, i):
        """Kills backend i's server (the test's "backend died")."""
        for pid in sh("ip", "netns", "pids", self.ns_backends[i], capture=True, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass

    def wait_servers(self, timeout=10.0):
        end = time.monotonic() + timeout
        for i, ns in enumerate(self.ns_backends):
            while sh("ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                     "import socket; socket.create_connection(('127.0.0.1', 80), 1).close()", check=False) != 0:
                if time.monotonic() > end:
                    raise RuntimeError(f"backend b{i + 1} server did not start")
                time.sleep(0.1)

    def set_knob(self, i, kind, value):
        """Backend i's HTTP status / delay (see lab_server.py); None removes the knob."""
        path = os.path.join(self.state_dir, f"b{i + 1}.{kind}")
        if value is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write(str(value))

    def is_up(self):
        have = set(sh("ip", "netns", "list", capture=True).split())
        return all(ns in have for ns in self.namespaces()) and os.path.exists(os.path.join(self.state_dir, "lab.json"))

    @staticmethod
    def down_prefix(prefix):
        have = [l.split()[0] for l in sh("ip", "netns", "list", capture=True).splitlines() if l.strip()]
        mine = [ns for ns in have if ns.startswith(prefix + "-")]
        for ns in mine:  # processes first (servers, a balancer), then the namespace
            for pid in sh("ip", "netns", "pids", ns, capture=True, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        for ns in mine:
            sh("ip", "netns", "del", ns, check=False)
        # The EAL runtime directories of the lab's balancers (ecmp: one per balancer).
        if os.path.isdir("/var/run/dpdk"):
            for f in os.listdir("/var/run/dpdk"):
                if f == f"l4lb_lab_{prefix}" or re.fullmatch(rf"l4lb_lab_{re.escape(prefix)}_lb\d+", f):
                    subprocess.run(["rm", "-rf", os.path.join("/var/run/dpdk", f)])
        d = os.path.join(RUN_DIR, prefix)
        if os.path.isdir(d):
            shutil.rmtree(d)  # with the fullnat lab's nginx prefixes

    def down(self):
        NetnsLab.down_prefix(self.prefix)


def _record(kind, value):
    """Tells tests/integration/run.sh what to clean up if the test process dies."""
    path = os.environ.get("L4LB_IT_CLEANUP_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{kind} {value}\n")


def client(lab, *args, timeout=120):
    """Runs tests/e2e/lab_client.py in the client namespace; returns its JSON."""
    out = sh("timeout", str(timeout), "/usr/bin/python3", CLIENT, *map(str, args), ns=lab.ns_client, capture=True)
    return json.loads(out)


class Balancer:
    """l4lb running in the lab's balancer namespace. Log lines are read from its stderr file."""

    def __init__(self, lab, config_text, build_dir=None, ns=None, name=None):
        """`ns`, `name`: the namespace and the file names' stem of one of several balancers
        (ecmp lab); default the lab's only balancer namespace, l4lb.toml, stats.json, l4lb.log."""
        self.lab = lab
        self.ns = ns or lab.ns_lb
        self.dir = lab.state_dir
        self.cfg = os.path.join(self.dir, f"{name or 'l4lb'}.toml")
        self.stats_path = os.path.join(self.dir, f"{name}.stats.json" if name else "stats.json")
        self.log_path = os.path.join(self.dir, f"{name or 'l4lb'}.log")
        self.write_config(config_text)
        m = re.search(r'file_prefix = "([^"]+)"', config_text)
        self.file_prefix = m.group(1) if m else None
        self.proc = None
        self.binary = os.path.join(build_dir or os.environ.get("L4LB_BUILD_DIR", os.path.join(REPO_ROOT, "build")), "l4lb")

    def write_config(self, text):
        tmp = self.cfg + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.cfg)

    def start(self, healthy_backends=None, timeout=30.0, env=None):
        """Starts l4lb; waits for "started" and, if given, for that many backends to come up.
        `env`: more environment variables for the daemon (test hooks)."""
        if self.file_prefix:
            _record("prefix", self.file_prefix)
        log = open(self.log_path, "ab")
        pos = log.tell()  # a second daemon in the same lab appends: wait for its own lines
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.binary,
                                      "-c", self.cfg, "--stats-file", self.stats_path],
                                     stdout=log, stderr=log, start_new_session=True,
                                     env=dict(os.environ, **env) if env else None)
        _record("pid", self.proc.pid)
        self.wait_log(r"l4lb info: started", pos, timeout=timeout)
        if healthy_backends:
            end = time.monotonic() + timeout
            while len(re.findall(r"health \S+: unknown -> up", self.log()[pos:])) < healthy_backends:
                if time.monotonic() > end:
                    raise AssertionError(f"backends did not come up; log:\n{self.log()[-4000:]}")
                self.check_alive()
                time.sleep(0.05)
        return self

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"l4lb exited with {self.proc.returncode}; log:\n{self.log()[-4000:]}")

    def wait_log(self, pattern, start=0, timeout=10.0):
        """Waits for `pattern` in the log after offset `start`; returns (match, monotonic time
        at which it was seen; polled every 10 ms)."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.log(), start)
            if m:
                return m, time.monotonic()
            self.check_alive()
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for /{pattern}/; log tail:\n{self.log()[-3000:]}")
            time.sleep(0.01)

    def log_size(self):
        return len(self.log())

    def reload(self, text=None):
        if text is not None:
            self.write_config(text)
        pos = self.log_size()
        os.kill(self.proc.pid, signal.SIGHUP)  # `ip netns exec` execs l4lb: same pid
        return pos

    def stop(self):
        """SIGINT, exit 0 expected; returns the stats file."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("l4lb did not stop on SIGINT")
        finally:
            self.proc = None
            if self.file_prefix:
                subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.file_prefix}"])
        if rc != 0:
            raise AssertionError(f"l4lb exited {rc}; log:\n{self.log()[-3000:]}")
        with open(self.stats_path) as f:
            return json.load(f)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.file_prefix:
            subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.file_prefix}"])
