"""Configuration errors at the boundary: `l4lb --check-config`
and the daemon itself must refuse a bad file with exit 1 and one exact
"file:line:col: key.path: message" line per problem (wording from src/control/config_schema.cc,
config_vips.cc and toml_reader.cc), in file order; the daemon must not start (no EAL, no runtime directory) on such a file; a device that does
not exist must give a clear error and exit 1.

Each bad config is the good base with one edit, so every expected line:col is easy to verify by
eye against BASE below.
"""

import os
import re
import shutil
import sys
import tempfile
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from l4lb_harness import DPDK_RUN_DIR, REPO_ROOT, config_text, run_cli, write_pcap  # noqa: E402

PREFIX = f"l4lb_it_cfg_{os.getpid()}"

# Line numbers matter: the expected messages below refer to them.
BASE = config_text("config_base.toml")
# 1-based line numbers in BASE.
L_WORKER_CORES, L_PORT_MAC, L_VIP, L_VIP_PORT, L_BACKEND_ADDR, L_WEIGHT = 3, 11, 15, 17, 21, 22

SECOND_VIP = config_text("config_second_vip.toml")


def replace_line(text, lineno, new):
    lines = text.split("\n")
    lines[lineno - 1] = new
    return "\n".join(lines)


def insert_after(text, lineno, new):
    lines = text.split("\n")
    lines.insert(lineno, new)
    return "\n".join(lines)


class ConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="l4lb_it_cfg_")
        cls.in_pcap = os.path.join(cls.tmp, "in.pcap")
        write_pcap(cls.in_pcap, [])
        cls.device = f"net_pcap0,rx_pcap={cls.in_pcap},tx_pcap={os.path.join(cls.tmp, 'out.pcap')}"
        cls.base = BASE.format(prefix=PREFIX, device=cls.device)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        shutil.rmtree(os.path.join(DPDK_RUN_DIR, PREFIX), ignore_errors=True)

    def tearDown(self):
        shutil.rmtree(os.path.join(DPDK_RUN_DIR, PREFIX), ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_rejected(self, name, text, expected_lines):
        """--check-config and the daemon both exit 1 printing exactly these lines (path-prefixed)."""
        path = self.write(name, text)
        want = "".join(f"{path}:{line}\n" for line in expected_lines)
        rc, out, err = run_cli(["--check-config", path])
        self.assertEqual((rc, out, err), (1, "", want), f"--check-config {name}")
        rc, out, err = run_cli(["-c", path])
        self.assertEqual((rc, out, err), (1, "", want), f"l4lb -c {name}")
        # Refused before the EAL ran: no runtime directory was created.
        self.assertFalse(os.path.exists(os.path.join(DPDK_RUN_DIR, PREFIX)))

    # ---- the good files --------------------------------------------------------------------

    def test_documented_example_config_is_valid(self):
        """config/l4lb.toml documents every key; it must load as is."""
        path = os.path.join(REPO_ROOT, "config", "l4lb.toml")
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        n_backends = sum(len(v.get("backends", [])) for v in doc["vips"])
        rc, out, err = run_cli(["--check-config", path])
        self.assertEqual((rc, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0], f"{path}: OK ({len(doc['ports'])} ports, {len(doc['vips'])} VIPs, "
                                   f"{n_backends} backends, {len(doc['eal']['worker_cores'])} workers)")
        # Then what each table and pool takes (control/memory_estimate.h).
        self.assertRegex(lines[-1], rf"^{re.escape(path)}: memory: about \d+ MiB: flow tables \d+ MiB \(2 workers x "
                                    r"\(IPv4 \d+ MiB \+ IPv6 \d+ MiB\)\), packet buffers \d+ MiB, outer fragments "
                                    r"\d+ MiB, rings \d+ MiB$")

    def test_base_config_is_valid(self):
        path = self.write("base.toml", self.base)
        rc, out, err = run_cli(["--check-config", path])
        self.assertEqual((rc, out.splitlines()[0], err), (0, f"{path}: OK (1 ports, 1 VIPs, 1 backends, 1 workers)", ""))

    # ---- one error each ----------------------------------------------------------------------

    def test_unknown_key_with_suggestion(self):
        text = replace_line(self.base, L_WEIGHT, "  wieght = 2")
        self.assert_rejected("unknown_key.toml", text,
                             [f'{L_WEIGHT}:3: vips[0].backends[0].wieght: unknown key, did you mean "weight"?'])

    def test_unknown_table(self):
        text = self.base + "\n[metricz]\nlisten = 9100\n"
        n = self.base.count("\n") + 2
        self.assert_rejected("unknown_table.toml", text, [f'{n}:2: metricz: unknown key, did you mean "metrics"?'])

    def test_duplicate_vip(self):
        text = self.base + SECOND_VIP
        n = self.base.count("\n") + 2
        self.assert_rejected("duplicate_vip.toml", text,
                             [f"{n}:1: vips[1]: duplicate of vips[0] (same address, port and protocol)"])

    def test_weight_negative(self):  # 0 is valid: a draining backend
        text = replace_line(self.base, L_WEIGHT, "  weight = -1")
        self.assert_rejected("weight_neg.toml", text, [f"{L_WEIGHT}:12: vips[0].backends[0].weight: must be 0..65535"])

    def test_weight_too_large(self):
        text = replace_line(self.base, L_WEIGHT, "  weight = 65536")
        self.assert_rejected("weight_big.toml", text,
                             [f"{L_WEIGHT}:12: vips[0].backends[0].weight: must be 0..65535"])

    def test_weight_not_an_integer(self):
        text = replace_line(self.base, L_WEIGHT, '  weight = "2"')
        self.assert_rejected("weight_str.toml", text,
                             [f"{L_WEIGHT}:12: vips[0].backends[0].weight: must be an integer"])

    def test_maglev_size_not_prime(self):
        text = insert_after(self.base, L_VIP_PORT, "maglev_table_size = 65535")
        self.assert_rejected("nonprime.toml", text,
                             [f"{L_VIP_PORT + 1}:21: vips[0].maglev_table_size: must be a prime number (e.g. 65537)"])

    def test_ipv6_backend_on_ipv4_dsr_vip(self):
        text = replace_line(self.base, L_BACKEND_ADDR, '  address = "2001:db8::11"')
        self.assert_rejected("v6_on_v4_dsr.toml", text, [
            f"{L_BACKEND_ADDR}:13: vips[0].backends[0].address: IPv6 backend for an IPv4 VIP needs forwarding ipip, gue or fullnat"])

    def test_worker_core_is_main_core(self):
        text = replace_line(self.base, L_WORKER_CORES, "worker_cores = [0, 1]")
        self.assert_rejected("core_main.toml", text,
                             [f"{L_WORKER_CORES}:17: eal.worker_cores[0]: core 0 is the main core"])

    def test_worker_core_listed_twice(self):
        text = replace_line(self.base, L_WORKER_CORES, "worker_cores = [1, 1]")
        self.assert_rejected("core_twice.toml", text,
                             [f"{L_WORKER_CORES}:20: eal.worker_cores[1]: core 1 is listed twice"])

    def test_syntax_error(self):
        text = replace_line(self.base, L_VIP_PORT, "port = 80 80")
        self.assert_rejected("syntax.toml", text, [
            f"{L_VIP_PORT}:11: syntax error: Error while parsing key-value pair: expected a comment or whitespace, saw '8'"])

    def test_syntax_error_unclosed_table_header(self):
        text = replace_line(self.base, L_VIP, "[[vips]")
        self.assert_rejected("syntax_header.toml", text, [
            f"{L_VIP}:8: syntax error: Error while parsing table header: expected ']', saw '\\n'"])

    def test_bad_mac(self):
        text = replace_line(self.base, L_PORT_MAC, 'mac = "01:00:00:00:00:01"')
        self.assert_rejected("mac.toml", text, [
            f'{L_PORT_MAC}:7: ports[0].mac: must be a unicast MAC address (got "01:00:00:00:00:01")'])

    def test_gue_port_without_gue(self):
        text = insert_after(self.base, L_VIP_PORT, "gue_port = 6080")
        self.assert_rejected("gue_port.toml", text,
                             [f"{L_VIP_PORT + 1}:12: vips[0].gue_port: only allowed with forwarding gue"])

    def test_via_unknown_port_with_suggestion(self):
        text = insert_after(self.base, L_WEIGHT, '  via = "p1"')
        self.assert_rejected("via.toml", text,
                             [f'{L_WEIGHT + 1}:9: vips[0].backends[0].via: no port named "p1", did you mean "p0"?'])

    # ---- several errors at once --------------------------------------------------------------

    def test_all_errors_reported_in_file_order(self):
        text = replace_line(self.base, L_WEIGHT, "  weight = 70000")
        text = replace_line(text, L_BACKEND_ADDR, '  address = "2001:db8::11"')
        text = replace_line(text, L_WORKER_CORES, "worker_cores = [1, 1]")
        text = replace_line(text, L_PORT_MAC, 'mac = "02:00:00:00:00"')
        text += SECOND_VIP.replace('"198.18.2.12"', '"198.18.2.12"\n  colour = "red"')
        n = self.base.count("\n") + 2
        self.assert_rejected("many.toml", text, [
            f"{L_WORKER_CORES}:20: eal.worker_cores[1]: core 1 is listed twice",
            f'{L_PORT_MAC}:7: ports[0].mac: must be a MAC address like 02:00:00:00:00:01 (got "02:00:00:00:00")',
            f"{L_BACKEND_ADDR}:13: vips[0].backends[0].address: IPv6 backend for an IPv4 VIP needs forwarding ipip, gue or fullnat",
            f"{L_WEIGHT}:12: vips[0].backends[0].weight: must be 0..65535",
            f"{n}:1: vips[1]: duplicate of vips[0] (same address, port and protocol)",
            f"{n + 7}:3: vips[1].backends[0].colour: unknown key",
        ])

    def test_missing_file(self):
        path = os.path.join(self.tmp, "does_not_exist.toml")
        want = f"{path}: cannot read: No such file or directory\n"
        self.assertEqual(run_cli(["--check-config", path]), (1, "", want))
        self.assertEqual(run_cli(["-c", path]), (1, "", want))

    # ---- valid TOML, but the daemon cannot run it --------------------------------------------

    def daemon_fails(self, name, text):
        path = self.write(name, text)
        rc, out, err = run_cli(["-c", path, "--stats-file", os.path.join(self.tmp, "stats.json")])
        self.assertNotIn("l4lb info: started", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "stats.json")))
        return rc, err

    def test_device_that_does_not_exist(self):
        text = self.base.replace(self.device, "0000:99:00.0")
        rc, err = self.daemon_fails("pci.toml", text)
        self.assertEqual(rc, 1)
        self.assertIn("l4lb error: ports[0] (p0, 0000:99:00.0): device not found (is it bound to a DPDK "
                      "driver, or is the vdev name right?)\n", err)

    def test_vdev_whose_pcap_cannot_be_opened(self):
        dev = f"net_pcap0,rx_pcap={self.tmp}/missing/in.pcap,tx_pcap={self.tmp}/out.pcap"
        rc, err = self.daemon_fails("pcap.toml", self.base.replace(self.device, dev))
        self.assertEqual(rc, 1)
        self.assertIn(f"l4lb error: ports[0] (p0, {dev}): device not found", err)

    def test_unknown_vdev_driver(self):
        rc, err = self.daemon_fails("vdev.toml", self.base.replace(self.device, "net_nosuchdriver0"))
        self.assertEqual(rc, 1)
        self.assertIn("l4lb error: EAL init (", err)
        self.assertIn("--vdev net_nosuchdriver0", err)

    def test_check_config_catches_what_the_daemon_rejects(self):
        """`--check-config` promises "validate FILE: exit 0, or 1 with messages"; a file it calls OK
        must not be refused by the daemon at start-up."""
        cases = [
            ("gateway_no_mac.toml", insert_after(self.base, L_PORT_MAC + 1, 'gateway4 = "198.18.0.254"'),
             "ports[0].gateway4: no MAC known for 198.18.0.254 (add a [[neighbours]] entry)"),
            ("nat_port0.toml", replace_line(replace_line(self.base, L_WEIGHT, "  port = 8080"), L_VIP_PORT,
                                            'port = 0\nforwarding = "nat"'),
             "vips[0].backends[0].port: must be 0 when the VIP's port is 0 (replies could not be mapped back)"),
            # Two ports, neither on-link with the backend nor with a gateway (one port would take it).
            ("unreachable.toml", insert_after(replace_line(self.base, L_BACKEND_ADDR, '  address = "203.0.113.5"'),
                                              L_PORT_MAC + 2, '[[ports]]\nname = "p1"\ndevice = "net_null1"\n'
                                                              'ipv4 = "10.9.0.1/24"'),
             "vips[0].backends[0]: no port reaches 203.0.113.5 (give a port a connected prefix or gateway for it, "
             "or set via)"),
        ]
        problems = []
        for name, text, msg in cases:
            rc, err = self.daemon_fails(name, text)
            self.assertEqual(rc, 1, f"{name}: the daemon must refuse it")
            self.assertIn(msg, err, name)
            path = os.path.join(self.tmp, name)
            rc, out, err = run_cli(["--check-config", path])
            # Placed in the file like the loader's own messages: path:line:col.
            if rc != 1 or not re.search(rf"^{re.escape(path)}:\d+:\d+: {re.escape(msg)}$", err, re.M):
                problems.append(f"--check-config {name} -> exit {rc}, {out.strip() or err.strip()!r}; "
                                f"the daemon refuses it with {msg!r} (and no line:col)")
        self.assertEqual(problems, [])

    def test_bad_command_line(self):
        rc, out, err = run_cli(["--bogus"])
        self.assertEqual(rc, 2)
        self.assertTrue(err.startswith("l4lb: unknown argument '--bogus'\nusage: l4lb"), err)
        rc, out, err = run_cli(["--check-config"])
        self.assertEqual((rc, err), (2, "l4lb: --check-config needs a value\n"))


if __name__ == "__main__":
    unittest.main()
