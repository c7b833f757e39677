"""End-to-end harness: the lab (scripts/lib/lab.py) with real servers, the real l4lb on
net_af_xdp ports in the balancer namespace, and real clients (lab_client.py) in the client
namespace. Every lab has a unique prefix and is removed, with its processes, whatever happens.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("L4LB_BUILD_DIR", os.path.join(REPO_ROOT, "build"))
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts", "lib"))
from lab import Lab, sh  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab_client.py")
_labs = iter(range(1, 10_000))


def _record(kind, value):
    path = os.environ.get("L4LB_IT_CLEANUP_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{kind} {value}\n")


def new_lab(topology="nat", ipv6=False, backends=3, exception="xdp"):
    """A lab with a prefix no other run uses (pid-derived), registered for run.sh's cleanup."""
    prefix = f"e{os.getpid() % 1000}{next(_labs)}"[:6]
    _record("lab", prefix)
    return Lab(prefix, topology, ipv6, backends, exception).up()


def client(lab, *args, timeout=120):
    out = sh("timeout", str(timeout), "/usr/bin/python3", CLIENT, *map(str, args), ns=lab.ns_client, capture=True)
    return json.loads(out)


class Balancer:
    """l4lb running in the lab's balancer namespace. Log lines are read from its stderr file."""

    def __init__(self, lab, config_text):
        self.lab = lab
        self.dir = lab.state_dir
        self.cfg = os.path.join(self.dir, "l4lb.toml")
        self.stats_path = os.path.join(self.dir, "stats.json")
        self.log_path = os.path.join(self.dir, "l4lb.log")
        self.write_config(config_text)
        m = re.search(r'file_prefix = "([^"]+)"', config_text)
        self.file_prefix = m.group(1) if m else None
        self.proc = None

    def write_config(self, text):
        tmp = self.cfg + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.cfg)

    def start(self, healthy_backends=None, timeout=30.0):
        """Starts l4lb; waits for "started" and, if given, for that many backends to come up."""
        if self.file_prefix:
            _record("prefix", self.file_prefix)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.lab.ns_lb, os.path.join(BUILD_DIR, "l4lb"),
                                      "-c", self.cfg, "--stats-file", self.stats_path],
                                     stdout=log, stderr=log, start_new_session=True)
        _record("pid", self.proc.pid)
        self.wait_log(r"l4lb info: started", timeout=timeout)
        if healthy_backends:
            end = time.monotonic() + timeout
            while len(re.findall(r"health \S+: unknown -> up", self.log())) < healthy_backends:
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
