#!/usr/bin/python3
"""A lab backend: HTTP on TCP port 80, a TCP echo on port 7 (RFC 862: every byte back, for
long-lived connections whose bytes the client verifies) and a UDP echo on port 5353, all
dual-stack.

Every HTTP reply names the backend ("backend=b1"). Behaviour is steered by files in STATE_DIR so
tests can break and heal a backend without restarting it:
  STATE_DIR/NAME.status  HTTP status to answer (default 200)
  STATE_DIR/NAME.delay   seconds to wait before answering (default 0): a slow backend
  STATE_DIR/NAME.blob    GET /blob returns this many bytes of a deterministic stream (default 1 MiB)
  STATE_DIR/NAME.rate    /blob sending rate in bytes per second (default unlimited): long transfers
It writes STATE_DIR/NAME.peers: every distinct client address it has seen (tests check where
health checks come from).
Usage: lab_server.py NAME STATE_DIR
"""
import http.server
import os
import socket
import socketserver
import struct
import sys
import threading
import time

NAME, STATE = sys.argv[1], sys.argv[2]


def knob(kind, default, cast):
    try:
        with open(os.path.join(STATE, f"{NAME}.{kind}")) as f:
            return cast(f.read().strip())
    except (OSError, ValueError):
        return default


PEERS, PEERS_LOCK = set(), threading.Lock()


def note_peer(addr):
    addr = addr[7:] if addr.startswith("::ffff:") else addr
    with PEERS_LOCK:
        if addr in PEERS:
            return
        PEERS.add(addr)
        tmp = os.path.join(STATE, f".{NAME}.peers")
        with open(tmp, "w") as f:
            f.write("\n".join(sorted(PEERS)) + "\n")
        os.replace(tmp, os.path.join(STATE, f"{NAME}.peers"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        note_peer(self.client_address[0])
        time.sleep(knob("delay", 0.0, float))
        status = knob("status", 200, int)
        if self.path.startswith("/blob"):
            n = knob("blob", 1 << 20, int)
            self.send_response(status)
            self.send_header("Content-Length", str(n))
            self.send_header("X-Backend", NAME)
            self.end_headers()
            chunk = bytes((i * 7 + 3) & 0xFF for i in range(65536))
            rate = knob("rate", 0.0, float)
            sent, t0 = 0, time.monotonic()
            while sent < n:
                part = chunk[: min(len(chunk), n - sent)]
                self.wfile.write(part)
                sent += len(part)
                if rate > 0:
                    time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
            return
        body = f"backend={NAME}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", NAME)
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


IP_PKTINFO = 8  # <linux/in.h>; Python's socket module lacks it


def udp_echo(family):
    """Replies from the address the request went to: with DSR that is a VIP on loopback, which
    the kernel would not pick as the source of an unbound socket's reply (the client's connected
    socket would drop it)."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.bind(("::", 5353))
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.bind(("0.0.0.0", 5353))
    while True:
        data, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(32))
        reply = []
        for level, kind, d in anc:
            if family == socket.AF_INET6 and (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO):
                reply = [(level, socket.IPV6_PKTINFO, d[:16] + struct.pack("=I", 0))]
            elif family == socket.AF_INET and (level, kind) == (socket.IPPROTO_IP, IP_PKTINFO):
                # struct in_pktinfo {ifindex, spec_dst, addr}: the source goes in spec_dst
                reply = [(level, IP_PKTINFO, struct.pack("=I", 0) + d[8:12] + bytes(4))]
        s.sendmsg([f"{NAME}:".encode() + data], reply, 0, peer)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        note_peer(self.client_address[0])
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


threading.Thread(target=udp_echo, args=(socket.AF_INET,), daemon=True).start()
threading.Thread(target=udp_echo, args=(socket.AF_INET6,), daemon=True).start()
threading.Thread(target=EchoServer(("::", 7), EchoHandler).serve_forever, daemon=True).start()
Server(("::", 80), Handler).serve_forever()
