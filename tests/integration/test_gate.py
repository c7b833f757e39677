"""The callgrind regression gate (perf/gate.py) decides on real counts: l4lb-bench of the build
under test runs under valgrind, against baselines written by the test around the committed one
(perf/baseline.json, recorded on the CI build). A figure 5 % above its baseline fails; 2 % above
passes; a baseline recorded with other arguments, or a variant missing from it, fails. About 10 s.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from l4lb_harness import BUILD_DIR  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATE = os.path.join(ROOT, "perf", "gate.py")
COMMITTED = os.path.join(ROOT, "perf", "baseline.json")
BENCH = os.path.join(BUILD_DIR, "perf", "l4lb-bench")


@unittest.skipUnless(shutil.which("valgrind") and os.access(BENCH, os.X_OK),
                     "needs valgrind and a build with -Dperf=true")
class Gate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(COMMITTED) as f:
            cls.base = json.load(f)
        cls.tmp = tempfile.mkdtemp(prefix="l4lb_it_gate.")
        # What this build counts now (the gate's own measurement, no baseline involved).
        report = os.path.join(cls.tmp, "now.jsonl")
        r = subprocess.run(["/usr/bin/python3", GATE, "--build", BUILD_DIR, "--only", "dsr", "--report", report],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        with open(report) as f:
            cls.now = json.loads(f.readline())["ir_per_pkt"]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def gate(self, variants):
        b = dict(self.base, variants=variants)
        path = os.path.join(self.tmp, "baseline.json")
        with open(path, "w") as f:
            json.dump(b, f)
        return subprocess.run(["/usr/bin/python3", GATE, "--build", BUILD_DIR, "--baseline", path, "--only", "dsr"],
                              capture_output=True, text=True, timeout=300)

    def dsr(self, ir, args=None):
        v = dict(self.base["variants"]["dsr"])
        v["ir_per_pkt"] = round(ir, 2)
        if args is not None:
            v["args"] = args
        return {"dsr": v}

    def test_counts_are_exact(self):
        # The same build counts the same instructions as the committed baseline (the gate's
        # premise: frozen clock, fixed flow-index key). The CI build is the one it was recorded on.
        if os.path.basename(os.path.normpath(BUILD_DIR)) != self.base["build"]:
            self.skipTest(f"baseline recorded on {self.base['build']}, this is {BUILD_DIR}")
        self.assertAlmostEqual(self.now, self.base["variants"]["dsr"]["ir_per_pkt"], delta=0.02)

    def test_five_percent_above_fails(self):
        r = self.gate(self.dsr(self.now / 1.05))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL: more than 3% above the baseline", r.stdout)
        self.assertTrue(r.stdout.rstrip().endswith("0 passed, 1 failed"), r.stdout)

    def test_two_percent_above_passes(self):
        r = self.gate(self.dsr(self.now / 1.02))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertTrue(r.stdout.rstrip().endswith("1 passed, 0 failed"), r.stdout)

    def test_other_arguments_fail(self):
        r = self.gate(self.dsr(self.now, args=["--modes", "dsr", "--flows", "20000"]))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("recorded with other arguments", r.stdout)

    def test_missing_variant_fails(self):
        r = self.gate({})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("not in baseline.json", r.stdout)


if __name__ == "__main__":
    unittest.main()
