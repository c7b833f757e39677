"""End-to-end harness: the lab (scripts/lib/lab.py) with real servers, the real l4lb on
net_af_xdp ports in the balancer namespace, and real clients (lab_client.py) in the client
namespace. Every lab has a unique prefix and is removed, with its processes, whatever happens.
"""
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("L4LB_BUILD_DIR", os.path.join(REPO_ROOT, "build"))
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts", "lib"))
from balancer_config import BalancerConfig  # noqa: E402,F401
from lab import Lab  # noqa: E402
from lab_common import Balancer, _record, client, sh  # noqa: E402,F401

_labs = iter(range(1, 10_000))


def assert_transfers_complete(tc, result, size, on_drained, backend="b2"):
    """Every transfer of a `client(..., "blob", ...)` result got all `size` bytes, and `on_drained`
    (the transfers on `backend` when it was drained) is not empty: otherwise the test proves nothing."""
    for t in result["transfers"]:
        tc.assertNotIn("error", t, t)
        tc.assertEqual(t["size"], size, t)
    tc.assertGreater(len(on_drained), 0, f"no transfer landed on {backend}: the test proves nothing")


def start_balancer(lab, text, healthy_backends):
    """l4lb on `lab` with config `text`, started and with that many backends up; on a failure
    the balancer is killed and the lab removed before the error propagates."""
    lb = Balancer(lab, text)
    try:
        lb.start(healthy_backends=healthy_backends)
    except Exception:
        lb.kill()
        lab.down()
        raise
    return lb


def new_lab(topology="nat", ipv6=False, backends=3, exception="xdp"):
    """A lab with a prefix no other run uses (pid-derived), registered for run.sh's cleanup."""
    prefix = f"e{os.getpid() % 1000}{next(_labs)}"[:6]
    _record("lab", prefix)
    return Lab(prefix, topology, ipv6, backends, exception).up()


