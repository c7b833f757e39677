#!/usr/bin/python3
"""A server-speaks-first backend behind a PROXY protocol v2 balancer (as SMTP, FTP, MySQL and SSH
are): it reads the PROXY v2 header that must open every connection, then speaks first with a
banner that names the client the header carried, and only then reads the client.

  S: 220 NAME client ADDR PORT via PEER_ADDR PEER_PORT\\r\\n    (the header's source; the TCP peer)
  C: any line
  S: 221 NAME bye\\r\\n                                       and the server closes

A connection whose first bytes are not a valid PROXY v2 header gets "554 NAME no PROXY v2
header: WHY\\r\\n" and is closed; a LOCAL header (a health check) is closed without a banner; no
header within HEADER_WAIT seconds is closed too. Each connection appends one line to
STATE/NAME.banner.log: "banner ADDR PORT PEER_ADDR PEER_PORT", "local PEER_ADDR PEER_PORT" or
"refused WHY PEER_ADDR PEER_PORT".

The header (PROXY protocol spec, section 2.2): the 12-byte signature, version and command (0x2_:
v2; 0x_0 LOCAL, 0x_1 PROXY), address family and transport, a 16-bit length of what follows,
then for TCP over IPv4 (0x11) source and destination address (4 bytes each) and ports (12
bytes), for TCP over IPv6 (0x21) the same with 16-byte addresses (36 bytes); TLVs may follow
within the length and are skipped.
Usage: proxy_banner.py NAME STATE_DIR [PORT]   (default port 8082, dual-stack)
"""
import ipaddress
import os
import socket
import socketserver
import struct
import sys
import threading

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PORT = 8082
HEADER_WAIT = 10.0


class BadHeader(ValueError):
    pass


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise BadHeader(f"closed after {len(buf)} of {n} bytes")
        buf += part
    return buf


def parse_proxy_v2(head, body):
    """`head`: the header's first 16 bytes; `body`: the `length` bytes after them. Returns
    {"command": "local"|"proxy", "family": 4|6|None, "src": (addr, port), "dst": (addr, port)}."""
    if head[:12] != SIGNATURE:
        raise BadHeader("bad signature " + head[:12].hex())
    ver_cmd, fam = head[12], head[13]
    if ver_cmd >> 4 != 2:
        raise BadHeader(f"version {ver_cmd >> 4}")
    if ver_cmd & 0xF == 0:
        return {"command": "local", "family": None, "src": None, "dst": None}
    if ver_cmd & 0xF != 1:
        raise BadHeader(f"command {ver_cmd & 0xF}")
    if fam == 0x11:
        if len(body) < 12:
            raise BadHeader(f"IPv4 address block of {len(body)} bytes")
        s, d, sp, dp = struct.unpack("!4s4sHH", body[:12])
        return {"command": "proxy", "family": 4, "src": (str(ipaddress.IPv4Address(s)), sp),
                "dst": (str(ipaddress.IPv4Address(d)), dp)}
    if fam == 0x21:
        if len(body) < 36:
            raise BadHeader(f"IPv6 address block of {len(body)} bytes")
        s, d, sp, dp = struct.unpack("!16s16sHH", body[:36])
        return {"command": "proxy", "family": 6, "src": (str(ipaddress.IPv6Address(s)), sp),
                "dst": (str(ipaddress.IPv6Address(d)), dp)}
    raise BadHeader(f"family/transport 0x{fam:02x} (want TCP over IPv4 0x11 or IPv6 0x21)")


def read_proxy_v2(sock):
    head = read_exact(sock, 16)
    if head[:12] != SIGNATURE:
        raise BadHeader("bad signature " + head[:12].hex())
    (length,) = struct.unpack("!H", head[14:16])
    return parse_proxy_v2(head, read_exact(sock, length))


def build_proxy_v2(src, dst, local=False):
    """A PROXY v2 header for TCP from `src` to `dst` ((addr, port) each), or a LOCAL one."""
    if local:
        return SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    a = ipaddress.ip_address(src[0])
    if a.version == 4:
        body = a.packed + ipaddress.IPv4Address(dst[0]).packed + struct.pack("!HH", src[1], dst[1])
        return SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body
    body = a.packed + ipaddress.IPv6Address(dst[0]).packed + struct.pack("!HH", src[1], dst[1])
    return SIGNATURE + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


def plain(addr):
    return addr[7:] if addr.startswith("::ffff:") else addr


class Handler(socketserver.BaseRequestHandler):
    def note(self, line):
        with self.server.log_lock, open(self.server.log_path, "a") as f:
            f.write(line + "\n")

    def handle(self):
        s, name = self.request, self.server.name
        peer = f"{plain(self.client_address[0])} {self.client_address[1]}"
        s.settimeout(HEADER_WAIT)
        try:
            h = read_proxy_v2(s)
        except (BadHeader, OSError) as e:
            why = str(e) if isinstance(e, BadHeader) else type(e).__name__
            self.note(f"refused {why.replace(' ', '_')} {peer}")
            try:
                s.sendall(f"554 {name} no PROXY v2 header: {why}\r\n".encode())
            except OSError:
                pass
            return
        if h["command"] == "local":
            self.note(f"local {peer}")
            return
        self.note(f"banner {h['src'][0]} {h['src'][1]} {peer}")
        s.sendall(f"220 {name} client {h['src'][0]} {h['src'][1]} via {peer}\r\n".encode())
        try:
            f = s.makefile("rb")
            if f.readline():
                s.sendall(f"221 {name} bye\r\n".encode())
        except OSError:
            pass


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    name, state = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else PORT
    srv = Server(("::", port), Handler)
    srv.name, srv.log_path, srv.log_lock = name, os.path.join(state, f"{name}.banner.log"), threading.Lock()
    srv.serve_forever()


if __name__ == "__main__":
    main()
