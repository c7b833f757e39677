"""Flow sync in the real daemon ([sync] enabled): the sync thread starts with it, binds
[sync] listen, sends authenticated heartbeats to its peers and refuses what it must, and the stats
file carries its counters.

The test plays a configured peer (a UDP socket on 127.0.0.1) and a stranger. It checks the
daemon's datagrams with an encoder of its own (struct + hmac: HMAC-SHA-512 truncated to 32
bytes is libsodium's crypto_auth), so the wire format is checked independently of
src/control/sync/sync_codec.cc, and sends the daemon: a datagram MACed with another key
(bad_mac), a valid one with one record (accepted: the negative control), the same again
(replay), the valid one from a stranger's port (unknown_peer) and a truncated one.
"""

import hashlib
import hmac
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import l4lb_harness as h  # noqa: E402

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
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

[[vips]]
address = "198.18.1.10"
port = 80
[[vips.backends]]
address = "198.18.0.11"
mac = "02:00:00:00:00:11"
"""
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


if __name__ == "__main__":
    unittest.main()
