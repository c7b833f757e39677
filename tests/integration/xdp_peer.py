"""Traffic from a test network namespace, for test_xdp.py (run as
`ip netns exec NS /usr/bin/python3 xdp_peer.py CMD ...`; prints one JSON line):

  ping ADDR COUNT WAIT_S   ICMP / ICMPv6 echo requests 0.1 s apart over a raw socket;
                           {"sent": N, "replies": N}
  tcp ADDR PORT            connects, sends a line, expects it back; {"echoed": true|false, ...}
  serve ADDR PORT          accepts one connection and echoes one line (prints "listening" first)
"""
import json
import select
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(addr, count, wait_s):
    v6 = ":" in addr
    if v6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        req_type, rep_type = 128, 129
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        req_type, rep_type = 8, 0
    ident = 0x4c4c
    seen = set()

    def drain(until):
        while True:
            left = until - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return
            data, src = sock.recvfrom(2048)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]  # IPv4 raw sockets include the IP header
            if len(icmp) >= 8 and icmp[0] == rep_type and src[0] == addr:
                rid, seq = struct.unpack("!HH", icmp[4:8])
                if rid == ident:
                    seen.add(seq)

    for seq in range(count):
        body = struct.pack("!BBHHH", req_type, 0, 0, ident, seq) + b"l4lb-xdp" * 4
        if not v6:  # the kernel fills ICMPv6 checksums of raw sockets itself (RFC 3542 §3.1)
            body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        sock.sendto(body, (addr, 0))
        drain(time.monotonic() + 0.1)
    drain(time.monotonic() + wait_s)
    return {"sent": count, "replies": len(seen)}


def tcp(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((addr, port))
        msg = b"hello through the kernel path\n"
        s.sendall(msg)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            got += chunk
        return {"echoed": got == msg, "got": got.decode(errors="replace")}


def serve(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as ls:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, port))
        ls.listen(1)
        ls.settimeout(20)
        print("listening", flush=True)
        conn, _ = ls.accept()
        with conn:
            conn.settimeout(5)
            got = b""
            while not got.endswith(b"\n"):
                chunk = conn.recv(100)
                if not chunk:
                    break
                got += chunk
            conn.sendall(got)
    return {"served": True}


def main(argv):
    cmd = argv[1]
    if cmd == "ping":
        out = ping(argv[2], int(argv[3]), float(argv[4]))
    elif cmd == "tcp":
        out = tcp(argv[2], int(argv[3]))
    elif cmd == "serve":
        out = serve(argv[2], int(argv[3]))
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv)
