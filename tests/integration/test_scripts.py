"""The operator's files: scripts/setup-hugepages.sh, scripts/bind-nic.sh, the systemd unit and
what `meson install` puts where.

Hugepages: --check is compared with the kernel's own numbers (/sys/kernel/mm/hugepages,
/proc/mounts), read here independently. The reservation test adds 4 x 2M pages to whatever the
host has, mounts hugetlbfs on a private directory, runs everything twice to show nothing changes
the second time, then restores the original count and unmounts (finally).

bind-nic.sh: this machine has no NIC DPDK could take, and eth0 is never an argument. The refusals
run in a network namespace of veths: one carrying an IPv4 default route, one an IPv6 default
route, one holding the local address of an SSH connection (from SSH_CONNECTION, and from an
established connection of a process named sshd, as `sudo` drops the variable), one that is plain
virtual. Every message is asserted whole.

systemd unit: `systemd-analyze verify` on the installed unit, its paths pointed into the DESTDIR
install (verify checks that the binaries exist), must print nothing; a broken copy must not.

Addresses: 198.18.7.0/24, 198.18.8.0/24, 2001:db8:7::/64, 2001:db8:8::/64 inside the namespace.
The namespace, temp directories, mount and helper process are removed in tearDown*, and
recorded for run.sh's cleanup in case this process is killed first.
"""

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from l4lb_harness import BUILD_DIR, REPO_ROOT, _record

SCRIPTS = os.path.join(REPO_ROOT, "scripts")
HUGE = os.path.join(SCRIPTS, "setup-hugepages.sh")
BIND = os.path.join(SCRIPTS, "bind-nic.sh")
SYSFS_HP = "/sys/kernel/mm/hugepages"
PY = "/usr/bin/python3"
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def run(args, env=None, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def fmt_kb(kb):
    if kb % 1048576 == 0:
        return f"{kb // 1048576}G"
    if kb % 1024 == 0:
        return f"{kb // 1024}M"
    return f"{kb}K"


def kb_of(text):
    """'2M' / '1024M' / '1G' (as /proc/mounts shows pagesize=) -> kB."""
    m = re.fullmatch(r"(\d+)([KMG])", text)
    return int(m.group(1)) * {"K": 1, "M": 1024, "G": 1048576}[m.group(2)]


def default_kb():
    with open("/proc/meminfo") as f:
        return int(next(line.split()[1] for line in f if line.startswith("Hugepagesize:")))


def pools():
    """{page kB: (total, free, reserved, surplus)} from sysfs."""
    out = {}
    for d in os.listdir(SYSFS_HP):
        kb = int(re.fullmatch(r"hugepages-(\d+)kB", d).group(1))
        vals = []
        for name in ("nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages"):
            with open(os.path.join(SYSFS_HP, d, name)) as f:
                vals.append(int(f.read()))
        out[kb] = tuple(vals)
    return out


def hugetlbfs_mounts():
    """[(dir, page kB)] in /proc/mounts order."""
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            dev, d, fstype, opts = line.split()[:4]
            if fstype == "hugetlbfs":
                size = [o[len("pagesize="):] for o in opts.split(",") if o.startswith("pagesize=")]
                out.append((d, kb_of(size[0]) if size else default_kb()))
    return out


def nr_hugepages(kb):
    with open(os.path.join(SYSFS_HP, f"hugepages-{kb}kB", "nr_hugepages")) as f:
        return int(f.read())


def expected_check(want=1):
    """What --check must print and return for the current kernel state, computed here."""
    p, mounts, dkb = pools(), hugetlbfs_mounts(), default_kb()
    lines = ["hugepages:"]
    for kb in sorted(p):
        t, fr, rs, su = p[kb]
        note = " (default size)" if kb == dkb else ""
        lines.append(f"  {fmt_kb(kb)}: {t} total, {fr} free, {rs} reserved, {su} surplus{note}")
    lines.append("hugetlbfs mounts:")
    lines += [f"  {d} pagesize={fmt_kb(kb)}" for d, kb in mounts] or ["  none"]
    usable = [kb for kb in p if p[kb][1] - p[kb][2] >= want and any(m[1] == kb for m in mounts)]
    return lines, bool(usable), (p, mounts)


class HugepagesCheckTest(unittest.TestCase):
    def check_matches_kernel(self, cmd_prefix):
        # Another process may change the pools while the script reads them: retry until the
        # state before and after the run agree.
        for _ in range(5):
            lines, usable, before = expected_check()
            r = run(cmd_prefix + [HUGE, "--check"])
            if expected_check()[2] == before:
                break
        out = r.stdout.splitlines()
        self.assertEqual(out[:len(lines)], lines, r.stdout)
        self.assertEqual(r.returncode, 0 if usable else 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")
        if usable:
            self.assertEqual(len(out), len(lines) + 1)
            self.assertTrue(out[-1].startswith("usable: "), out[-1])
        else:
            self.assertEqual(out[len(lines)], "not usable:")
            self.assertEqual(len(out), len(lines) + 1 + len(before[0]))  # one reason per size
        return r

    def test_check_reports_this_machine(self):
        r = self.check_matches_kernel([])
        print(f"\n    --check here: exit {r.returncode}, {r.stdout.splitlines()[-1]}")

    def test_check_needs_no_root(self):
        self.check_matches_kernel(NOBODY)

    def test_check_amount_not_available(self):
        dkb = default_kb()
        size = fmt_kb(dkb)
        t, fr, rs, _ = pools()[dkb]
        r = run([HUGE, "--check", "--size", size, "1000000"])
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stdout.splitlines()[-2:], [
            "not usable:",
            f"  {size}: {fr - rs} pages available, 1000000 needed "
            f"(reserve with: setup-hugepages.sh --size {size} {fmt_kb(1000000 * dkb)})"])


class HugepagesErrorsTest(unittest.TestCase):
    def assertUsage(self, args, message):
        r = run([HUGE] + args)
        self.assertEqual(r.returncode, 2, f"{args}: {r.stdout} {r.stderr}")
        self.assertEqual(r.stdout, "")
        first, rest = r.stderr.split("\n", 1)
        self.assertEqual(first, f"setup-hugepages.sh: {message}", args)
        self.assertTrue(rest.startswith("usage: setup-hugepages.sh [options] AMOUNT"), args)

    def test_bad_arguments_exit_2_with_usage(self):
        before = pools()
        cases = [
            ([], "AMOUNT is required (or --check)"),
            (["xyz"], "bad AMOUNT 'xyz' (a page count like 512, or memory like 1G / 512M)"),
            (["12.5G"], "bad AMOUNT '12.5G' (a page count like 512, or memory like 1G / 512M)"),
            (["-1"], "unknown option '-1'"),
            (["--bogus", "4"], "unknown option '--bogus'"),
            (["4", "5"], "one AMOUNT only (got '4' and '5')"),
            (["--size", "3X", "4"], "bad page size '3X' (2M or 1G)"),
            (["--size"], "--size needs a value"),
            (["--check", "--persist"], "--check takes only --size and AMOUNT"),
            (["--check", "--exact", "4"], "--check takes only --size and AMOUNT"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertUsage(args, message)
        self.assertEqual(pools(), before)

    def test_help(self):
        r = run([HUGE, "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: setup-hugepages.sh [options] AMOUNT"))

    def test_not_root(self):
        r = run(NOBODY + [HUGE, "4"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "setup-hugepages.sh: must run as root (it writes "
                         "/sys/kernel/mm/hugepages and mounts hugetlbfs); --check needs no root\n")

    def test_not_enough_memory(self):
        before = nr_hugepages(2048)
        r = run([HUGE, "--no-mount", "1000T"])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^setup-hugepages.sh: not enough memory: \d+ more 2M pages need "
                                   r"\d+ MB, \d+ MB is available and 512 MB stays for the system\n$")
        self.assertEqual(nr_hugepages(2048), before)

    def test_unsupported_page_size(self):
        sizes = " ".join(fmt_kb(kb) for kb in sorted(pools()))
        r = run([HUGE, "--size", "16M", "4"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"setup-hugepages.sh: 16M pages are not supported by this kernel; "
                                   f"supported sizes: {sizes}\n")

    def test_1g_pages_unsupported(self):
        if 1048576 in pools():
            self.skipTest("this machine supports 1G pages (the unsupported-size path is "
                          "test_unsupported_page_size)")
        r = run([HUGE, "--size", "1G", "1"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("1G pages are not supported here", r.stderr)


class HugepagesReserveTest(unittest.TestCase):
    """Adds 4 x 2M pages and mounts hugetlbfs on a private directory; everything twice."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="l4lb_it_ops_")
        _record("tmpdir", self.tmp)
        self.mnt = os.path.join(self.tmp, "huge")
        self.etc = os.path.join(self.tmp, "etc")
        os.mkdir(self.etc)
        self.original = nr_hugepages(2048)
        self.target = self.original + 4
        self.ours = set()  # pool sizes our runs left behind

    def tearDown(self):
        now = nr_hugepages(2048)
        # A size no run of ours produced means another process changed the pool: leave it be.
        if now != self.original and now in self.ours:
            r = run([HUGE, "--size", "2M", "--exact", "--no-mount", str(self.original)])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(nr_hugepages(2048), self.original)
        if any(d == self.mnt for d, _ in hugetlbfs_mounts()):
            subprocess.run(["umount", self.mnt], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def huge(self, *args):
        r = run([HUGE] + list(args))
        self.ours.add(nr_hugepages(2048))
        return r

    def mounts_here(self):
        return [kb for d, kb in hugetlbfs_mounts() if d == self.mnt]

    def test_reserve_twice_then_restore(self):
        o, t, m = self.original, self.target, self.mnt
        r = self.huge("--size", "2M", "--mount", m, str(t))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        self.assertRegex(out[0], rf"^2M pages: {o} -> {t} reserved \(\d+ free\)$")
        self.assertEqual(out[1:], [
            f"hugetlbfs for 2M pages: mounted at {m}",
            "to keep this after a reboot (or run again with --persist):",
            f"  /etc/sysctl.d/80-l4lb-hugepages.conf:  vm.nr_hugepages = {t}",
            "  kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub):  "
            f"hugepagesz=2M hugepages={t}",
            f"  /etc/fstab:  nodev {m} hugetlbfs pagesize=2M 0 0"])
        self.assertEqual(nr_hugepages(2048), t)
        self.assertEqual(self.mounts_here(), [2048])

        # Again, by count and by memory (t pages = 2t MB; 2t-1 MB rounds up to t pages): nothing
        # changes, the mount is not stacked.
        for amount in (str(t), f"{2 * t}M", f"{2 * t - 1}M"):
            r = self.huge("--size", "2M", "--mount", m, amount)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines()[:2], [
                f"2M pages: {t} reserved, nothing to change",
                f"hugetlbfs for 2M pages: already mounted at {m}"], amount)
            self.assertEqual(nr_hugepages(2048), t)
            self.assertEqual(self.mounts_here(), [2048])
        # A smaller amount leaves a larger pool alone unless --exact.
        r = self.huge("--size", "2M", "--mount", m, "1")
        self.assertEqual(r.stdout.splitlines()[0], f"2M pages: {t} reserved, nothing to change")
        self.assertEqual(nr_hugepages(2048), t)

        # Now usable: the private mount has our free pages (unless someone took them since).
        r = self.huge("--check", "--size", "2M", "8M")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout.splitlines()[-1], rf"^usable: 2M: \d+ pages available \(\d+[MG]\) at .*{re.escape(m)}")
        self.assertIn(f"  {m} pagesize=2M", r.stdout.splitlines())

        # --persist writes into --etc, twice: the second run changes nothing.
        sysctl = os.path.join(self.etc, "sysctl.d", "80-l4lb-hugepages.conf")
        fstab = os.path.join(self.etc, "fstab")
        with open(fstab, "w") as f:
            f.write("# existing\nUUID=1234 / ext4 defaults 0 1\n")
        args = ["--size", "2M", "--mount", m, "--persist", "--etc", self.etc, str(t)]
        r = self.huge(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[2:], [
            f"persist: wrote {sysctl} (vm.nr_hugepages = {t})",
            f"persist: added to {fstab}: nodev {m} hugetlbfs pagesize=2M 0 0"])
        r = self.huge(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[2:], [
            f"persist: {sysctl} unchanged",
            f"persist: {fstab} already has: nodev {m} hugetlbfs pagesize=2M 0 0"])
        with open(sysctl) as f:
            self.assertEqual(f.read(), f"# Written by l4lb setup-hugepages.sh: {t} x 2M hugepages "
                                       f"for DPDK.\nvm.nr_hugepages = {t}\n")
        with open(fstab) as f:
            self.assertEqual(f.read(), "# existing\nUUID=1234 / ext4 defaults 0 1\n"
                                       f"nodev {m} hugetlbfs pagesize=2M 0 0\n")

        # The mount point already holds hugetlbfs of another size: refused.
        if 1048576 in pools():
            r = self.huge("--size", "1G", "--mount", m, "0")
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, f"setup-hugepages.sh: {m} is a hugetlbfs mount of 2M pages, "
                                       "not 1G; pick another --mount\n")
        # --exact shrinks back (what tearDown also does): the original count.
        r = self.huge("--size", "2M", "--exact", "--no-mount", str(o))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(nr_hugepages(2048), o)


# ---------------------------------------------------------------------------------------------
# bind-nic.sh in a network namespace
# ---------------------------------------------------------------------------------------------

NS = f"l4lb-it-ops-{os.getpid()}{random.randrange(1000):03d}"
DEFAULT_MSG = ("bind-nic.sh: refusing to bind {ifc}: it carries the default route ({route}); DPDK "
               "would take it from the kernel and cut this machine off. Move the default route to "
               "another interface first (--force does not override this)\n")
SSH_MSG = ("bind-nic.sh: refusing to bind {ifc}: it holds {local}, the local address of an SSH "
           "connection from {peer}; binding it would drop the session. Use --force if you reach "
           "this machine another way (console, another NIC)\n")
VIRTUAL_MSG = ("bind-nic.sh: {ifc} is a virtual interface (veth) with no PCI address: only PCI NICs "
               "can be bound to vfio-pci. Use it through AF_XDP instead: device = "
               "\"net_af_xdp0,iface={ifc}\" in l4lb.toml\n")
# A process that looks like sshd to ss(8): named sshd, with an established connection whose
# local end is 198.18.8.2 (peer 198.18.8.9). Exits when its stdin closes.
FAKE_SSHD = r"""
import socket, sys
open("/proc/self/comm", "w").write("sshd")
srv = socket.socket(); srv.bind(("198.18.8.2", 2222)); srv.listen()
cli = socket.socket(); cli.bind(("198.18.8.9", 0)); cli.connect(("198.18.8.2", 2222))
conn, _ = srv.accept()
print("ready", flush=True)
sys.stdin.read()
"""


def ns_sh(*args):
    subprocess.run(["ip", "netns", "exec", NS] + list(args), check=True, capture_output=True)


class BindNicTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        subprocess.run(["ip", "netns", "add", NS], check=True)
        _record("netns", NS)
        try:
            for a, b in (("mgmt0", "mgmt0p"), ("mgmt6", "mgmt6p"), ("data0", "data0p"),
                         ("data1", "data1p")):
                ns_sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
                ns_sh("ip", "link", "set", a, "up")
                ns_sh("ip", "link", "set", b, "up")
            ns_sh("ip", "link", "set", "lo", "up")
            ns_sh("ip", "addr", "add", "198.18.7.2/24", "dev", "mgmt0")
            ns_sh("ip", "route", "add", "default", "via", "198.18.7.1", "dev", "mgmt0")
            ns_sh("ip", "-6", "addr", "add", "2001:db8:7::2/64", "dev", "mgmt6", "nodad")
            ns_sh("ip", "-6", "route", "add", "default", "via", "2001:db8:7::1", "dev", "mgmt6")
            ns_sh("ip", "addr", "add", "198.18.8.2/24", "dev", "data0")
            ns_sh("ip", "-6", "addr", "add", "2001:db8:8::2/64", "dev", "data0", "nodad")
            ns_sh("ip", "addr", "add", "198.18.8.9/24", "dev", "data0p")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["ip", "netns", "del", NS], check=False)

    def bind(self, *args, ssh=None, prefix=()):
        env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
        if ssh:
            env["SSH_CONNECTION"] = ssh
        return run(["ip", "netns", "exec", NS] + list(prefix) + [BIND] + list(args), env=env)

    def assertRefused(self, r, stderr, stdout=""):
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, stderr)
        self.assertEqual(r.stdout, stdout)

    def test_default_route_refused_even_with_force(self):
        v4 = DEFAULT_MSG.format(ifc="mgmt0", route="default via 198.18.7.1 dev mgmt0")
        for args in (["mgmt0"], ["--force", "mgmt0"], ["--dry-run", "--force", "mgmt0"]):
            with self.subTest(args=args):
                self.assertRefused(self.bind(*args), v4)
        # IPv6 default route; the route's text is ip(8)'s, which names the interface.
        for args in (["mgmt6"], ["--force", "mgmt6"]):
            r = self.bind(*args)
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr, r"^bind-nic.sh: refusing to bind mgmt6: it carries the default "
                                       r"route \(default via 2001:db8:7::1 dev mgmt6[^)]*\); DPDK would")
            self.assertTrue(r.stderr.endswith("(--force does not override this)\n"))

    def test_ssh_connection_refused_unless_force(self):
        for ssh, local, peer in (("198.18.8.77 50022 198.18.8.2 22", "198.18.8.2", "198.18.8.77"),
                                 ("2001:db8:8::77 50022 2001:db8:8::2 22", "2001:db8:8::2", "2001:db8:8::77")):
            with self.subTest(ssh=ssh):
                self.assertRefused(self.bind("data0", ssh=ssh), SSH_MSG.format(ifc="data0", local=local, peer=peer))
        # --force passes the SSH and busy checks (with warnings), then meets the next refusal:
        # a veth has no PCI address.
        r = self.bind("--force", "data0", ssh="198.18.8.77 50022 198.18.8.2 22")
        self.assertRefused(r, "bind-nic.sh: warning: data0 holds 198.18.8.2, the local address of an SSH "
                              "connection from 198.18.8.77 (--force)\n"
                              "bind-nic.sh: warning: data0 is in use by the kernel (routes: 198.18.8.0/24 "
                              "2001:db8:8::/64) (--force)\n" + VIRTUAL_MSG.format(ifc="data0"))

    def test_sshd_connection_without_ssh_connection_variable(self):
        p = subprocess.Popen(["ip", "netns", "exec", NS, PY, "-c", FAKE_SSHD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            self.assertRefused(self.bind("data0"), SSH_MSG.format(ifc="data0", local="198.18.8.2", peer="198.18.8.9"))
            r = self.bind("--status")
            self.assertIn("data0: SSH connection 198.18.8.2 <- 198.18.8.9 (refused unless --force)",
                          r.stdout.splitlines())
        finally:
            p.stdin.close()
            p.wait(10)

    def test_interface_in_use_refused(self):
        self.assertRefused(self.bind("data0"), "bind-nic.sh: refusing to bind data0: the kernel is using it "
                                               "(routes: 198.18.8.0/24 2001:db8:8::/64); take it out of use "
                                               "first (ip link set data0 down), or use --force\n")

    def test_virtual_interface_has_no_pci_address(self):
        for args in (["data1"], ["--dry-run", "data1"], ["--unbind", "ixgbe", "data1"]):
            with self.subTest(args=args):
                self.assertRefused(self.bind(*args), VIRTUAL_MSG.format(ifc="data1"))

    def test_unknown_devices(self):
        cases = [
            (["nosuch0"], "bind-nic.sh: no interface nosuch0 in this network namespace (ip link lists "
                          "them; a NIC already bound to DPDK has no interface: use its PCI address)\n"),
            (["0000:ff:1f.7"], "bind-nic.sh: no PCI device 0000:ff:1f.7 (bind-nic.sh --status lists the NICs)\n"),
            (["FF:1F.7"], "bind-nic.sh: no PCI device 0000:ff:1f.7 (bind-nic.sh --status lists the NICs)\n"),
            (["bad name!"], "bind-nic.sh: 'bad name!' is neither a PCI address (0000:01:00.0) nor an "
                            "interface name\n"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                self.assertRefused(self.bind(*args), msg)

    def test_pci_device_that_is_not_a_nic(self):
        for addr in sorted(os.listdir("/sys/bus/pci/devices")):
            with open(f"/sys/bus/pci/devices/{addr}/class") as f:
                cls = f.read().strip()
            if not cls.startswith("0x02"):
                break
        else:
            self.skipTest("every PCI device here is a network controller")
        self.assertRefused(self.bind("--dry-run", addr),
                           f"bind-nic.sh: {addr} is not a network controller (PCI class {cls}): refusing\n")

    def test_not_root(self):
        self.assertRefused(self.bind("data1", prefix=NOBODY),
                           "bind-nic.sh: must run as root (it rebinds PCI drivers)\n")

    def test_bad_arguments_exit_2_with_usage(self):
        cases = [
            ([], "DEVICE is required"),
            (["--unbind"], "--unbind needs a kernel DRIVER"),
            (["--unbind", "vfio-pci", "data1"],
             "--unbind gives a NIC back to a kernel driver; to bind to vfio-pci leave --unbind out"),
            (["--unbind", "bad/drv", "data1"], "bad driver name 'bad/drv'"),
            (["--unbind", "ixgbe", "--noiommu", "data1"], "--noiommu is for binding to vfio-pci"),
            (["data0", "data1"], "one DEVICE only (got 'data0' and 'data1')"),
            (["--bogus", "data1"], "unknown option '--bogus'"),
            (["--status", "data1"], "--status takes no other argument"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                r = self.bind(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                first, rest = r.stderr.split("\n", 1)
                self.assertEqual(first, f"bind-nic.sh: {msg}")
                self.assertTrue(rest.startswith("usage: bind-nic.sh [--force] [--noiommu] [--dry-run] DEVICE"))
        r = self.bind("--help")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: bind-nic.sh"))

    def test_status_lists_management_interfaces(self):
        r = self.bind("--status", ssh="198.18.8.77 50022 198.18.8.2 22")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        i = out.index("Management interfaces (bind-nic.sh refuses them)")
        self.assertEqual(out[i + 1], "=" * len(out[i]))
        self.assertEqual(out[i + 2:i + 6], [
            "mgmt0: default route",
            "mgmt6: default route",
            "data0: SSH connection 198.18.8.2 <- 198.18.8.77 (refused unless --force)",
            ""])
        # dpdk-devbind.py's own table comes first.
        self.assertIn("Network devices using kernel driver", out[:i])


# ---------------------------------------------------------------------------------------------
# meson install and the systemd unit
# ---------------------------------------------------------------------------------------------

class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="l4lb_it_ops_install_")
        _record("tmpdir", cls.dest)
        r = run(["meson", "install", "-C", BUILD_DIR, "--destdir", cls.dest, "--quiet"], timeout=600)
        if r.returncode != 0:
            raise AssertionError(f"meson install failed:\n{r.stdout}\n{r.stderr}")
        opts = json.loads(run(["meson", "introspect", "--buildoptions", BUILD_DIR]).stdout)
        o = {x["name"]: x["value"] for x in opts}
        prefix = o["prefix"]
        cls.bindir = os.path.join(prefix, o["bindir"])
        cls.config = os.path.join(prefix, o["sysconfdir"], "l4lb", "l4lb.toml")
        cls.unit = os.path.join(prefix, "lib", "systemd", "system", "l4lb.service")
        cls.sbindir = os.path.join(prefix, o["sbindir"])
        cls.docdir = os.path.join(prefix, o["datadir"], "doc", "l4lb")
        cls.expected = {
            os.path.join(cls.bindir, "l4lb"),
            cls.config,
            cls.unit,
            os.path.join(prefix, o["libdir"], "l4lb", "l4lb_xdp.o"),
            os.path.join(cls.sbindir, "l4lb-setup-hugepages"),
            os.path.join(cls.sbindir, "l4lb-bind-nic"),
            os.path.join(cls.docdir, "OPERATIONS.md"),
            os.path.join(prefix, o["mandir"], "man8", "l4lb.8"),
            os.path.join(prefix, o["mandir"], "man8", "l4lbctl.8"),
            os.path.join(prefix, o["mandir"], "man5", "l4lb.toml.5"),
            os.path.join(prefix, o["datadir"], "l4lb", "grafana", "l4lb.json"),
            os.path.join(prefix, o["datadir"], "bash-completion", "completions", "l4lbctl"),
        }
        # The operator CLI (l4lbctl), when this build has it.
        if os.path.exists(os.path.join(BUILD_DIR, "l4lbctl")):
            cls.expected.add(os.path.join(cls.bindir, "l4lbctl"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def inst(self, path):
        return self.dest + path

    def test_installed_files_exactly(self):
        got = set()
        for root, dirs, files in os.walk(self.dest):
            for f in files:
                got.add(os.path.join(root, f)[len(self.dest):])
        print("\n    installed: " + " ".join(sorted(got)))
        self.assertEqual(got, self.expected)
        for exe in (os.path.join(self.bindir, "l4lb"), os.path.join(self.sbindir, "l4lb-setup-hugepages"),
                    os.path.join(self.sbindir, "l4lb-bind-nic")):
            self.assertEqual(os.stat(self.inst(exe)).st_mode & 0o777, 0o755, exe)
        for name, src in (("l4lb-setup-hugepages", HUGE), ("l4lb-bind-nic", BIND)):
            with open(src, "rb") as a, open(self.inst(os.path.join(self.sbindir, name)), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        with open(os.path.join(REPO_ROOT, "config", "l4lb.toml"), "rb") as a, open(self.inst(self.config), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_unit_paths_and_directives(self):
        with open(self.inst(self.unit)) as f:
            text = f.read()
        self.assertNotIn("@", text.replace("$MAINPID", ""))  # every placeholder filled
        lines = text.splitlines()
        l4lb = os.path.join(self.bindir, "l4lb")
        for want in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30",
                     f"ExecStartPre={l4lb} --check-config {self.config}",
                     f"ExecStart={l4lb} -c {self.config}",
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "Restart=on-failure",
                     "LimitMEMLOCK=infinity",
                     "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_SYS_RAWIO",
                     f"Documentation=file://{self.docdir}/OPERATIONS.md",
                     "WantedBy=multi-user.target"):
            self.assertIn(want, lines)
        # What ExecStartPre runs passes on the shipped example configuration.
        r = run([self.inst(l4lb), "--check-config", self.inst(self.config)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], f"{self.inst(self.config)}: OK (2 ports, 3 VIPs, 6 backends, 2 workers)")

    def systemd_analyze(self):
        exe = shutil.which("systemd-analyze")
        if exe is None and shutil.which("apt-get"):
            subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd"],
                           capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            exe = shutil.which("systemd-analyze")
        if exe is None:
            self.skipTest("systemd-analyze is missing and apt-get could not install systemd")
        return exe

    def test_unit_verifies(self):
        exe = self.systemd_analyze()
        with open(self.inst(self.unit)) as f:
            text = f.read()
        # verify checks that ExecStart's binaries exist: point them at the DESTDIR install, so
        # this also proves the unit names the files where meson put them.
        l4lb = os.path.join(self.bindir, "l4lb")
        text = text.replace(l4lb, self.inst(l4lb)).replace(self.config, self.inst(self.config))
        vdir = tempfile.mkdtemp(prefix="l4lb_it_ops_unit_")
        _record("tmpdir", vdir)
        good = os.path.join(vdir, "l4lb.service")
        with open(good, "w") as f:
            f.write(text)
        r = run([exe, "verify", good])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # The check can fail: a misspelt directive and a wrong path are reported.
        bad = os.path.join(vdir, "l4lb-bad.service")
        with open(bad, "w") as f:
            f.write(text.replace("Type=notify", "Tpye=notify").replace(self.inst(l4lb) + " -c", "/nonexistent/l4lb -c"))
        r = run([exe, "verify", bad])
        self.assertIn("Unknown key 'Tpye'", r.stdout + r.stderr)
        self.assertIn("/nonexistent/l4lb", r.stdout + r.stderr)
        shutil.rmtree(vdir)


if __name__ == "__main__":
    unittest.main()
