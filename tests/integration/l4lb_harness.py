"""Runs the real l4lb binary on net_pcap ports: golden packets in, expected bytes out, checked
by an independent parser (scapy).

One call to run_daemon() = one daemon run: it writes the config and one input pcap per port,
starts `l4lb -c cfg --stats-file stats.json`, waits until the output pcaps stop growing (the
daemon writes stats only on exit, so progress is observed on the output side), sends SIGINT,
expects exit 0 and returns the transmitted frames per port plus the parsed stats. The process,
the EAL runtime directory /var/run/dpdk/<file_prefix> (left behind with --no-huge) and the temp
directory are removed whatever happens.

Packets are decoded by the tests with scapy, so run everything with Debian's /usr/bin/python3.
Addresses: IPv4 only from 198.18.0.0/15, IPv6 only from 2001:db8::/32 (RFC 2544 / RFC 3849).
"""

import itertools
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO_ROOT, "tests", "common", "configs")  # shared with the C++ tests
BUILD_DIR = os.environ.get("L4LB_BUILD_DIR", os.path.join(REPO_ROOT, "build"))
DPDK_RUN_DIR = "/var/run/dpdk"

# Drop reasons and counters, in the order of include/l4lb/counters.h.
def _names_from_counters_h(macro):
    """The names in the X-macro list `macro` (L4LB_FOREACH_DROP / L4LB_FOREACH_CTR) of
    include/l4lb/counters.h, in order: the one list the daemon's stats and metrics use, so the
    harness never drifts from it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "l4lb", "counters.h")
    with open(path) as f:
        text = f.read()
    # The macro's body: its continuation lines, up to the first line without a trailing backslash.
    body = re.search(r"#define " + macro + r"\(X\)((?:.*\\\n)*.*)", text).group(1)
    names = tuple(re.findall(r'\bX\(\s*\w+\s*,\s*"([a-z0-9_]+)"\s*\)', body))
    assert names, f"no X(Enumerator, \"name\") entries in {macro} of {path}"
    return names


DROP_NAMES = _names_from_counters_h("L4LB_FOREACH_DROP")[1:]  # without "ok"
CTR_NAMES = _names_from_counters_h("L4LB_FOREACH_CTR")

STARTUP_TIMEOUT_S = 20.0   # EAL init with --no-huge takes ~0.25 s here
RUN_TIMEOUT_S = 30.0       # whole run after start-up
EXIT_TIMEOUT_S = 10.0      # SIGINT -> exit
SETTLE_S = 0.3             # output unchanged this long (and input consumed long ago) = done

_run_ids = itertools.count()


def _record(kind, value):
    """Tells run.sh what to clean up if this Python process is killed before its finally blocks
    run: the daemons it started (by pid), their EAL runtime directories and temp directories."""
    path = os.environ.get("L4LB_IT_CLEANUP_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{kind} {value}\n")


def l4lb_binary():
    return os.path.join(BUILD_DIR, "l4lb")


class DaemonError(AssertionError):
    """The daemon did not start, crashed, hung or exited non-zero. An AssertionError so that a
    test reports it as a failure, with the daemon's stderr in the message."""


# ---------------------------------------------------------------------------------------------
# pcap files (libpcap format, written and read here so every byte is under the test's control)
# ---------------------------------------------------------------------------------------------

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for i, fr in enumerate(frames):
            fr = bytes(fr)
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1_000_000, i % 1_000_000, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    """Frames of a pcap file; a record still being written (truncated) is left out."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if len(data) < 24:
        return []
    magic_le = struct.unpack_from("<I", data, 0)[0]
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        endian = "<"
    elif struct.unpack_from(">I", data, 0)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack_from(endian + "IIII", data, off)
        if off + 16 + incl > len(data):
            break
        if incl != orig:
            raise ValueError(f"{path}: frame {len(frames)} truncated by snaplen ({incl} of {orig})")
        frames.append(data[off + 16: off + 16 + incl])
        off += 16 + incl
    return frames


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------

def config_text(name, **fields):
    """The TOML file `name` of tests/common/configs/, its {fields} filled in when any are given."""
    with open(os.path.join(CONFIG_DIR, name)) as f:
        text = f.read()
    return text.format(**fields) if fields else text


def toml_str(s):
    # TOML basic strings accept JSON's escapes for the characters used here.
    return json.dumps(str(s))


@dataclass
class Port:
    name: str
    mac: str
    ipv4: str = None
    ipv6: str = None
    gateway4: str = None
    gateway6: str = None
    mtu: int = None
    rx: list = field(default_factory=list)   # frames (bytes or scapy packets) received here
    devargs: str = ""  # more net_pcap devargs, e.g. "infinite_rx=1" (replays rx forever)
    tx: bool = True    # False: no tx_pcap, the PMD drops what is sent (for endless traffic)
    # Several RX queues: one list of frames per queue (instead of rx), each queue's own rx_pcap.
    # With run_daemon(workers=N), worker w polls the queues q with q % N == w.
    rx_queues: list = None

    def in_queues(self):
        return self.rx_queues if self.rx_queues is not None else [self.rx]


@dataclass
class DaemonResult:
    out: dict           # port name -> list of transmitted frames (bytes), in order
    stats: dict         # stats.json as written by the daemon
    stderr: str
    config: str
    elapsed: float

    @property
    def drops(self):
        return self.stats["total"]["drops"]

    @property
    def counters(self):
        return self.stats["total"]["counters"]

    def nonzero_drops(self):
        return {k: v for k, v in self.drops.items() if v}


def make_config(ports, body, prefix, pcap_dir, flow_capacity=4096, flow_extra="", workers=1):
    # More workers than this machine's CPUs: every worker lcore shares CPU 1 (EAL --lcores).
    lcores = [f'lcores = "0@0,(1-{workers})@1"'] if workers > 1 else []
    lines = [
        "[eal]",
        "main_core = 0",
        f"worker_cores = [{', '.join(str(w) for w in range(1, workers + 1))}]",
        *lcores,
        "hugepages = false",
        "memory_mb = 512",
        f"file_prefix = {toml_str(prefix)}",
        'extra_args = ["--log-level=lib.eal:notice"]',
        "",
        "[flow_table]",
        f"capacity = {flow_capacity}",
        flow_extra,
        "",
    ]
    for i, p in enumerate(ports):
        nq = len(p.in_queues())
        dev = f"net_pcap{i}," + ",".join(f"rx_pcap={pcap_dir}/{p.name}.in{q if nq > 1 else ''}.pcap"
                                        for q in range(nq))
        if p.tx:  # one TX queue per worker
            dev += "".join(f",tx_pcap={pcap_dir}/{p.name}.out{w if workers > 1 else ''}.pcap"
                           for w in range(workers))
        if p.devargs:
            dev += "," + p.devargs
        lines += ["[[ports]]", f"name = {toml_str(p.name)}", f"device = {toml_str(dev)}",
                  f"mac = {toml_str(p.mac)}"]
        for key in ("ipv4", "ipv6", "gateway4", "gateway6"):
            if getattr(p, key) is not None:
                lines.append(f"{key} = {toml_str(getattr(p, key))}")
        if p.mtu is not None:
            lines.append(f"mtu = {p.mtu}")
        lines.append("")
    return "\n".join(lines) + "\n" + body.strip() + "\n"


class _RunFailed(str):
    """What a shared run raised, kept in place of its result."""


def shared_run(cache, key, make, what):
    """The result of make() for `key`, made once per process and kept in `cache` (a dict) for every
    test that reads it. A run that raised fails each of those tests with AssertionError
    ("the <what> failed: ..."), not only the first one."""
    if key not in cache:
        try:
            cache[key] = make()
        except Exception as e:  # noqa: BLE001 - any failure of the shared run fails its tests
            cache[key] = _RunFailed(f"{type(e).__name__}: {e}")
    r = cache[key]
    if isinstance(r, _RunFailed):
        raise AssertionError(f"the {what} failed: {r}")
    return r


def wait_for_pcap(path, n, timeout=20):
    """The frames of the pcap at `path` once it holds `n` (or what it holds after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and len(read_pcap(path)) >= n:
            break
        time.sleep(0.05)
    return read_pcap(path)


class DaemonProcess:
    """Start, log and stop of a daemon run by a test: its config file `cfg`, its output `err_path`,
    its EAL file prefix `prefix`; launch() sets `proc`."""

    def launch(self, env=None, wrap=()):
        """Runs l4lb -c `cfg` (behind the command `wrap`, e.g. ip netns exec NS), its output to
        `err_path`, and waits for its "started" line."""
        _record("prefix", self.prefix)
        with open(self.err_path, "wb") as f:
            self.proc = subprocess.Popen([*wrap, l4lb_binary(), "-c", self.cfg], stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=f, start_new_session=True, env=env)
        _record("pid", self.proc.pid)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while "l4lb info: started:" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise DaemonError(f"l4lb did not start:\n{log}")
            time.sleep(0.02)

    def log(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        _stop(self.proc)
        _record("reaped", self.proc.pid)
        _cleanup_runtime_dir(self.prefix)
        return self.proc.returncode


def _cleanup_runtime_dir(prefix):
    path = os.path.join(DPDK_RUN_DIR, prefix)
    # Only our own, uniquely named prefix.
    if prefix.startswith("l4lb_it_") and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def _stop(proc):
    """SIGINT, then SIGKILL of our own process (group) if it does not exit."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def run_daemon(ports, body, expect_tx=None, flow_capacity=4096, settle=SETTLE_S, env=None, workers=1):
    """Runs the daemon once. `body` is the TOML after [eal]/[flow_table]/[[ports]] ([[vips]],
    [[neighbours]]). `expect_tx`: total frames expected on all output pcaps; the run ends as soon
    as that many arrived and nothing more came for `settle` seconds (without it: as soon as the
    output is unchanged for `settle` seconds). Raises DaemonError on any daemon failure, and also
    when the stats show that not every input frame was received (the run would prove nothing).
    `env`: extra environment variables for the daemon (test hooks). `workers`: worker lcores
    (all on CPU 1 when more than one); a port's output is then its TX queues' frames, queue by
    queue."""
    prefix = f"l4lb_it_{os.getpid()}_{next(_run_ids)}"
    tmp = tempfile.mkdtemp(prefix="l4lb_it_")
    _record("tmpdir", tmp)
    proc = None
    t0 = time.monotonic()
    try:
        for p in ports:
            qs = p.in_queues()
            for q, frames in enumerate(qs):
                write_pcap(os.path.join(tmp, f"{p.name}.in{q if len(qs) > 1 else ''}.pcap"), frames)
        cfg_text = make_config(ports, body, prefix, tmp, flow_capacity, workers=workers)
        cfg = os.path.join(tmp, "l4lb.toml")
        with open(cfg, "w") as f:
            f.write(cfg_text)
        stats_path = os.path.join(tmp, "stats.json")
        err_path = os.path.join(tmp, "stderr.txt")
        out_paths = {p.name: [os.path.join(tmp, f"{p.name}.out{w if workers > 1 else ''}.pcap")
                              for w in range(workers)] for p in ports}
        _record("prefix", prefix)
        with open(err_path, "wb") as err_f:
            proc = subprocess.Popen([l4lb_binary(), "-c", cfg, "--stats-file", stats_path],
                                    stdin=subprocess.DEVNULL, stdout=err_f, stderr=err_f,
                                    start_new_session=True, env={**os.environ, **(env or {})})
        _record("pid", proc.pid)

        def stderr_text():
            with open(err_path, "rb") as f:
                return f.read().decode(errors="replace")

        # Start-up: the daemon logs "started:" once the workers run.
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while "l4lb info: started:" not in stderr_text():
            if proc.poll() is not None:
                raise DaemonError(f"l4lb exited with {proc.returncode} before starting:\n"
                                  f"{stderr_text()}\n--- config ---\n{cfg_text}")
            if time.monotonic() > deadline:
                raise DaemonError(f"l4lb did not start within {STARTUP_TIMEOUT_S} s:\n{stderr_text()}")
            time.sleep(0.02)

        # Run: wait for the output to reach expect_tx and then stay unchanged.
        deadline = time.monotonic() + RUN_TIMEOUT_S
        last, last_change = -1, time.monotonic()
        while True:
            if proc.poll() is not None:
                raise DaemonError(f"l4lb died while running (exit {proc.returncode}):\n{stderr_text()}")
            n = sum(len(read_pcap(pth)) for pths in out_paths.values() for pth in pths)
            now = time.monotonic()
            if n != last:
                last, last_change = n, now
            if (expect_tx is None or n >= expect_tx) and now - last_change >= settle:
                break
            if now > deadline:
                break  # let the assertions below say what is missing
            time.sleep(0.05)

        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DaemonError(f"l4lb did not exit within {EXIT_TIMEOUT_S} s of SIGINT:\n{stderr_text()}")
        if rc != 0:
            raise DaemonError(f"l4lb exited with {rc} after SIGINT:\n{stderr_text()}")
        with open(stats_path) as f:
            stats = json.load(f)
        out = {name: [f for pth in pths for f in read_pcap(pth)] for name, pths in out_paths.items()}
        n_in = sum(len(frames) for p in ports for frames in p.in_queues())
        rx = stats["total"]["counters"]["rx_packets"]
        if rx != n_in:
            raise DaemonError(f"daemon received {rx} of {n_in} input frames")
        return DaemonResult(out=out, stats=stats, stderr=stderr_text(), config=cfg_text,
                            elapsed=time.monotonic() - t0)
    finally:
        if proc is not None:
            _stop(proc)
            if proc.poll() is not None:
                _record("reaped", proc.pid)
        _cleanup_runtime_dir(prefix)
        if os.environ.get("L4LB_IT_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_cli(args, timeout=20):
    """Runs l4lb with `args`; returns (returncode, stdout, stderr)."""
    p = subprocess.run([l4lb_binary()] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------

def _gamma_q(a, x):
    """Regularized upper incomplete gamma Q(a, x) (Numerical Recipes 6.2)."""
    if x <= 0:
        return 1.0
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a))
    b, c, d = x + 1 - a, 1e300, 1 / (x + 1 - a)
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_p(observed, weights):
    """p-value of Pearson's chi-square goodness-of-fit test of `observed` counts against shares
    proportional to `weights` (df = len - 1)."""
    n = sum(observed)
    total_w = sum(weights)
    chi2 = sum((o - n * w / total_w) ** 2 / (n * w / total_w) for o, w in zip(observed, weights))
    return chi2, _gamma_q((len(observed) - 1) / 2.0, chi2 / 2.0)
