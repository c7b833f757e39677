#!/usr/bin/python3
"""Health-checker CPU at 1000 backends and a 1 s interval: the real HealthChecker
(tests/tools/health_driver) probing 1000 addresses over TCP in a network namespace for 10 s,
its user+system CPU time taken from wait4()'s rusage. Reuses tests/integration/test_health.py's
namespaces and servers. One JSON line per run for perf/aggregate.py.

usage: BUILD_DIR=... health_bench.py RUNS
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ.setdefault("L4LB_BUILD_DIR", os.environ.get("BUILD_DIR", "build"))
import test_health as th  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
DURATION_MS = 10_000


def main():
    th.setUpModule()
    try:
        srv = th.server("many", 8100)
        try:
            for run in range(RUNS):
                targets = [{"key": f"b{i}", "addr": f"198.19.{(i + 1) // 256}.{(i + 1) % 256}", "port": 8100,
                            "source": th.CLIENT_IP, "type": "tcp", "interval_ms": 1000, "timeout_ms": 500,
                            "rise": 1, "fall": 1, "jitter_pct": 10} for i in range(1000)]
                d = th.Driver(targets, ["--duration-ms", str(DURATION_MS)])
                t0 = time.monotonic()
                _, status, ru = os.wait4(d.proc.pid, 0)
                wall = time.monotonic() - t0
                d.reader.join(10)
                cpu = ru.ru_utime + ru.ru_stime
                print(json.dumps({"bench": "health", "label": "health_1000x1s", "run": run,
                                  "cpu_s": round(cpu, 4), "wall_s": round(wall, 3),
                                  "cpu_pct": round(100 * cpu / (DURATION_MS / 1000), 3), "exit": status}), flush=True)
        finally:
            th.stop_proc(srv)
    finally:
        th.tearDownModule()


if __name__ == "__main__":
    main()
