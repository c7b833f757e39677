"""Flow sync in the real daemon ([sync] enabled): the sync thread starts with it, binds
[sync] listen, sends authenticated heartbeats to its peers and refuses what it must, and the stats
file carries its counters.

The test plays a configured peer (a UDP socket on 127.0.0.1) and a stranger. It checks the
daemon's datagrams with an encoder of its own (struct + hmac: HMAC-SHA-512 truncated to 32
bytes is libsodium's crypto_auth), so the wire format is checked independently of
src/control/sync/sync_codec.cc, and sends the daemon: a datagram MACed with another key
(bad_mac), a valid one with one record (accepted: the negative control), the same again
(replay), the valid one from a stranger's port (unknown_peer) and a truncated one.

With the workers' side of sync (src/dataplane/sync_rings.h, counters sync_*), two daemons: a TCP
flow that daemon A's worker confirms reaches daemon B's worker as an inserted peer entry; with
another key at B (negative control) it does not, and B counts bad_mac.
"""

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import l4lb_harness as h  # noqa: E402

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SYNC_VIP = h.config_text("sync_vip.toml")  # one VIP, one backend: what the sync daemons forward
MAGIC = b"L4SY"


def mac(key, body):
    return hmac.new(key, body, hashlib.sha512).digest()[:32]


def datagram(key, boot, seq, records, send_ms=None, version=1):
    send_ms = int(time.time() * 1000) if send_ms is None else send_ms
    body = MAGIC + struct.pack(">BBHQQQ", version, 0, len(records), boot, seq, send_ms) + b"".join(records)
    return body + mac(key, body)


def record(client, cport, vip, vport, backend, bport=0, proto=6, state=1, idle=0, gen=1):
    """One 72-byte record (IPv4 addresses, padded to 16 bytes)."""
    pad = lambda a: socket.inet_aton(a) + bytes(12)  # noqa: E731
    return (struct.pack(">BBBBHHHH", 4, proto, state, 4, cport, vport, bport, 0) + pad(client) + pad(vip) +
            pad(backend) + struct.pack(">IQ", idle, gen))


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def free_port():
    with udp_socket() as s:
        return s.getsockname()[1]


class SyncDaemonTest(unittest.TestCase):
    def test_heartbeats_and_refusals(self):
        tmp = tempfile.mkdtemp(prefix="l4lb_it_sync_")
        key_file = os.path.join(tmp, "sync.key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(KEY.hex() + "\n")
        peer, stranger = udp_socket(), udp_socket()
        peer.settimeout(5)
        pd, pt = free_port(), peer.getsockname()[1]
        unused = free_port()  # a second configured peer that never answers
        body = f"""
[sync]
listen = "127.0.0.1:{pd}"
peers = ["127.0.0.1:{pt}", "127.0.0.1:{unused}"]
key_file = {h.toml_str(key_file)}
announce_interval = 1

{SYNC_VIP}"""
        seen = {}

        def play():
            try:
                # The daemon's heartbeats, decoded and verified here.
                beats = []
                while len(beats) < 2:
                    d, src = peer.recvfrom(2048)
                    self.assertEqual(src, ("127.0.0.1", pd))
                    beats.append(d)
                for d in beats:
                    self.assertEqual(len(d), 64)
                    self.assertEqual(d[:4], MAGIC)
                    version, _, count, boot, seq, send_ms = struct.unpack(">BBHQQQ", d[4:32])
                    self.assertEqual((version, count), (1, 0))
                    self.assertLess(abs(send_ms - time.time() * 1000), 5000)
                    self.assertTrue(hmac.compare_digest(d[32:], mac(KEY, d[:32])))
                    self.assertFalse(hmac.compare_digest(d[32:], mac(OTHER_KEY, d[:32])))
                    seen.setdefault("boots", set()).add(boot)
                    seen.setdefault("seqs", []).append(seq)
                rec = record("198.18.41.5", 40000, "198.18.1.10", 80, "198.18.0.11")
                good = datagram(KEY, 0x5EED, 1, [rec])
                peer.sendto(datagram(OTHER_KEY, 0x5EED, 1, [rec]), ("127.0.0.1", pd))  # bad_mac
                peer.sendto(good, ("127.0.0.1", pd))                                  # accepted
                peer.sendto(good, ("127.0.0.1", pd))                                  # replay
                stranger.sendto(datagram(KEY, 0x5EED, 2, [rec]), ("127.0.0.1", pd))   # unknown_peer
                peer.sendto(datagram(KEY, 0x5EED, 3, [rec])[:-1], ("127.0.0.1", pd))  # truncated
                peer.sendto(datagram(KEY, 0x5EED, 4, [rec], version=9), ("127.0.0.1", pd))  # bad_version
                seen["done"] = True
            except Exception as e:  # reported by the main thread
                seen["error"] = e

        t = threading.Thread(target=play, daemon=True)
        t.start()
        try:
            port = h.Port("wan", "02:00:00:00:00:01", ipv4="198.18.0.1/24", rx=[], tx=False)
            res = h.run_daemon([port], body, settle=3.5)
        finally:
            t.join(10)
            peer.close()
            stranger.close()
            os.unlink(key_file)
            os.rmdir(tmp)
        self.assertNotIn("error", seen, seen.get("error"))
        self.assertTrue(seen.get("done"), "the peer's script did not finish")
        self.assertEqual(len(seen["boots"]), 1)
        self.assertEqual(seen["seqs"], sorted(set(seen["seqs"])))  # strictly increasing
        self.assertIn("sync: listening on 127.0.0.1:%d, 2 peers" % pd, res.stderr)

        s = res.stats["sync"]
        p = s["peers"][0]
        self.assertEqual(p["address"], f"127.0.0.1:{pt}")
        self.assertEqual((p["datagrams_in"], p["records_in"]), (1, 1))
        self.assertGreaterEqual(p["datagrams_out"], 2)
        rej = {k: v for k, v in p["rejected"].items() if v}
        self.assertEqual(rej, {"bad_mac": 1, "replay": 1, "truncated": 1, "bad_version": 1})
        self.assertIsNotNone(p["last_heard_ms_ago"])
        self.assertIsNone(s["peers"][1]["last_heard_ms_ago"])
        tot = s["totals"]
        self.assertEqual({k: v for k, v in tot["rejected"].items() if v},
                         {"bad_mac": 1, "replay": 1, "truncated": 1, "bad_version": 1, "unknown_peer": 1})
        self.assertEqual((tot["records_in"], tot["delivered"], tot["ring_full"]), (1, 1, 0))
        self.assertEqual(s["lag_ms"]["count"], 1)


    @unittest.skipUnless("sync_in_inserted" in h.CTR_NAMES, "needs the workers' side of flow sync (branch sync-dp)")
    def test_flow_confirmed_on_a_is_inserted_at_b(self):
        inserted, b_sync = self.pair(same_key=True)
        self.assertEqual(inserted, 1)
        self.assertEqual(b_sync["totals"]["records_in"], 1)
        # Negative control: B with another key refuses A's datagrams and inserts nothing.
        inserted, b_sync = self.pair(same_key=False)
        self.assertEqual(inserted, 0)
        self.assertEqual(b_sync["totals"]["records_in"], 0)
        self.assertGreaterEqual(b_sync["totals"]["rejected"]["bad_mac"], 1)

    def pair(self, same_key):
        from scapy.all import IP, TCP, Ether  # noqa: E402
        tmp = tempfile.mkdtemp(prefix="l4lb_it_sync_")
        keys = {}
        for name, k in (("a", KEY), ("b", KEY if same_key else OTHER_KEY)):
            keys[name] = os.path.join(tmp, f"{name}.key")
            with open(os.open(keys[name], os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(k.hex())
        pa, pb = free_port(), free_port()

        def body(me, peer, key):
            return f"""
[sync]
listen = "127.0.0.1:{me}"
peers = ["127.0.0.1:{peer}"]
key_file = {h.toml_str(key)}

{SYNC_VIP}"""
        port_mac = "02:00:00:00:00:01"
        prefix = f"l4lb_it_{os.getpid()}_syncb{int(same_key)}"
        bdir = tempfile.mkdtemp(prefix="l4lb_it_")
        h._record("tmpdir", bdir)
        proc, err = None, None
        try:
            # B first, so it listens when A's worker announces the flow.
            h.write_pcap(os.path.join(bdir, "wan.in.pcap"), [])
            cfg = os.path.join(bdir, "l4lb.toml")
            with open(cfg, "w") as f:
                f.write(h.make_config([h.Port("wan", port_mac, ipv4="198.18.0.1/24", tx=False)],
                                      body(pb, pa, keys["b"]), prefix, bdir))
            stats = os.path.join(bdir, "stats.json")
            err = open(os.path.join(bdir, "stderr.txt"), "wb")
            h._record("prefix", prefix)
            proc = subprocess.Popen([h.l4lb_binary(), "-c", cfg, "--stats-file", stats], stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, start_new_session=True)
            h._record("pid", proc.pid)
            deadline = time.monotonic() + h.STARTUP_TIMEOUT_S
            while b"l4lb info: started:" not in open(os.path.join(bdir, "stderr.txt"), "rb").read():
                self.assertIsNone(proc.poll(), open(os.path.join(bdir, "stderr.txt")).read())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            # A: a client's SYN, then its ACK (the flow is confirmed, and announced).
            tcp = lambda flags, seq: (Ether(src="02:00:00:00:00:99", dst=port_mac) /  # noqa: E731
                                      IP(src="198.18.41.5", dst="198.18.1.10") / TCP(sport=40000, dport=80, flags=flags, seq=seq))
            a = h.run_daemon([h.Port("wan", port_mac, ipv4="198.18.0.1/24", rx=[tcp("S", 1), tcp("A", 2)])],
                             body(pa, pb, keys["a"]), expect_tx=2, settle=1.0)
            self.assertEqual(a.counters["sync_announced"], 1)
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(h.EXIT_TIMEOUT_S), 0)
            with open(stats) as f:
                b = json.load(f)
            return b["total"]["counters"]["sync_in_inserted"], b["sync"]
        finally:
            if proc is not None:
                h._stop(proc)
            if err is not None:
                err.close()
            h._cleanup_runtime_dir(prefix)
            shutil.rmtree(bdir, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
