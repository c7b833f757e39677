#!/usr/bin/python3
"""Real clients for the lab, run inside the client namespace; prints one JSON object.

  lab_client.py conns  VIP PORT N [THREADS [SPORT0]]  N new TCP connections, one HTTP GET each
                                               (from source ports SPORT0, SPORT0+1, ... if given:
                                               N distinct flows, no port reused)
  lab_client.py stream VIP PORT SECONDS RATE     new connections at RATE/s for SECONDS, each timed
  lab_client.py hold   VIP PORT N SECONDS [FILE]  N keep-alive connections, a GET on each every 0.2 s
                                               (FILE: once all are open, their local ADDR, PORT as JSON)
  lab_client.py udp    VIP PORT N [SPORT0]       N UDP flows (own source port each: SPORT0, SPORT0+1, ...
                                               if given), 3 requests each
  lab_client.py banner VIP PORT N [THREADS]      N connections to a server that speaks first
                                               (scripts/lib/proxy_banner.py): each sends nothing
                                               until the banner line has come, then "QUIT" and
                                               reads the goodbye; per connection its local address
                                               and port, the banner, the goodbye, seconds to the banner
  lab_client.py blob   VIP PORT N                N concurrent GET /blob, sha256 of each body
  lab_client.py sticky VIP PORT N SRC...         N connections from each source address
  lab_client.py held   VIP PORT SECONDS RATE HOLD  new connections at RATE/s for SECONDS, each kept
                                               HOLD seconds with 3 GETs (at open, HOLD/2, HOLD), every
                                               reply checked (status, body names the backend, one
                                               backend per connection)
  lab_client.py longlived VIP[,VIP...] PORT N SECONDS READY [UDP_PORT UDP_N]
                                               N long-lived TCP connections per VIP to an echo
                                               service (lab_server.py :7), each sending a message
                                               every 0.1 s and checking the echo byte for byte, and
                                               UDP_N UDP flows per VIP doing the same against the
                                               UDP echo (whose replies name the backend). READY is
                                               written once every connection has had its first
                                               echo; SECONDS more, then every connection closes
                                               cleanly. Per connection: bytes sent and verified,
                                               the first error (reset, stall, closed, mismatch) and
                                               when, the longest exchange; per UDP flow: replies,
                                               losses and backend changes.
"""
import asyncio
import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TIMEOUT = 3.0


def fam(vip):
    return socket.AF_INET6 if ":" in vip else socket.AF_INET


def get_once(vip, port, path="/", src=None, sport=0):
    """One new connection, one GET; returns (backend or None, error or None, seconds)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection(vip, port, timeout=TIMEOUT, source_address=(src, sport) if src else None)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            return None, f"status {r.status}", time.monotonic() - t0
        return r.getheader("X-Backend"), None, time.monotonic() - t0
    except Exception as e:  # refused, reset, timeout: all are failures the tests count
        return None, type(e).__name__ + ": " + str(e), time.monotonic() - t0
    finally:
        c.close()


def conns(vip, port, n, threads=8, sport0=0):
    res = {"ok": 0, "fail": 0, "backends": {}, "errors": []}
    src = "::" if ":" in vip else "0.0.0.0"
    with ThreadPoolExecutor(threads) as ex:
        for b, err, _ in ex.map(lambda i: get_once(vip, port, sport=sport0 + i if sport0 else 0, src=src if sport0 else None),
                                range(n)):
            if err:
                res["fail"] += 1
                if len(res["errors"]) < 10:
                    res["errors"].append(err)
            else:
                res["ok"] += 1
                res["backends"][b] = res["backends"].get(b, 0) + 1
    return res


def stream(vip, port, seconds, rate):
    out, lock = [], threading.Lock()
    t0 = time.time()

    def one(_):
        start = time.time()
        b, err, dt = get_once(vip, port)
        with lock:
            out.append({"t": start, "backend": b, "error": err, "s": round(dt, 4)})

    with ThreadPoolExecutor(16) as ex:
        i = 0
        while time.time() - t0 < seconds:
            ex.submit(one, i)
            i += 1
            time.sleep(max(0.0, t0 + i / rate - time.time()))
    out.sort(key=lambda r: r["t"])
    return {"requests": out}


def hold(vip, port, n, seconds, ports_file=None):
    conns_ = []
    for _ in range(n):
        c = http.client.HTTPConnection(vip, port, timeout=TIMEOUT)
        conns_.append({"c": c, "seq": [], "errors": []})
    end = time.time() + seconds
    while time.time() < end:
        for h in conns_:
            if h["errors"]:
                continue  # a broken connection stays broken: that is what the test looks for
            try:
                h["c"].request("GET", "/")
                r = h["c"].getresponse()
                r.read()
                b = r.getheader("X-Backend")
                if not h["seq"] or h["seq"][-1][0] != b:
                    h["seq"].append([b, 1])
                else:
                    h["seq"][-1][1] += 1
            except Exception as e:
                h["errors"].append(type(e).__name__ + ": " + str(e))
        if ports_file:
            # After the first round every connection is open: say which 5-tuples they are.
            with open(ports_file + ".tmp", "w") as f:
                json.dump([list(h["c"].sock.getsockname()[:2]) if h["c"].sock else None for h in conns_], f)
            os.rename(ports_file + ".tmp", ports_file)
            ports_file = None
        time.sleep(0.2)
    out = []
    for h in conns_:
        local = list(h["c"].sock.getsockname()[:2]) if h["c"].sock else None
        h["c"].close()
        out.append({"seq": h["seq"], "errors": h["errors"], "local": local})
    return {"connections": out}


def udp(vip, port, n, sport0=0):
    flows = []
    for i in range(n):
        s = socket.socket(fam(vip), socket.SOCK_DGRAM)
        s.settimeout(1.0)
        if sport0:
            s.bind(("::" if ":" in vip else "0.0.0.0", sport0 + i))
        s.connect((vip, port))
        got = []
        for k in range(3):
            try:
                s.send(f"q{i}.{k}".encode())
                data = s.recv(2048).decode()
                name, _, echo = data.partition(":")
                got.append(name if echo == f"q{i}.{k}" else "mismatch:" + data)
            except OSError as e:
                got.append("error:" + type(e).__name__)
        flows.append({"sport": s.getsockname()[1], "replies": got})
        s.close()
    return {"flows": flows}


def blob(vip, port, n):
    def one(_):
        c = http.client.HTTPConnection(vip, port, timeout=30)
        try:
            c.request("GET", "/blob")
            r = c.getresponse()
            h = hashlib.sha256()
            size = 0
            while True:
                chunk = r.read(65536)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
            return {"backend": r.getheader("X-Backend"), "size": size, "sha256": h.hexdigest(),
                    "length": int(r.getheader("Content-Length") or -1)}
        except Exception as e:
            return {"error": type(e).__name__ + ": " + str(e)}
        finally:
            c.close()

    with ThreadPoolExecutor(n) as ex:
        return {"transfers": list(ex.map(one, range(n)))}


BANNER_WAIT = 15.0  # banner: long enough for the balancer to resend a lost PROXY header


def banner_once(vip, port):
    rec = {"local": None, "banner": None, "bye": None, "s": None, "error": None}
    t0 = time.monotonic()
    try:
        with socket.create_connection((vip, port), timeout=TIMEOUT) as c:
            rec["local"] = list(c.getsockname()[:2])
            c.settimeout(BANNER_WAIT)
            f = c.makefile("rb")
            line = f.readline()
            rec["s"] = round(time.monotonic() - t0, 4)
            rec["banner"] = line.decode("latin-1").rstrip("\r\n")
            if not line.endswith(b"\n"):
                raise ValueError(f"no banner line: {line!r}")
            c.sendall(b"QUIT\r\n")
            rec["bye"] = f.readline().decode("latin-1").rstrip("\r\n")
    except Exception as e:  # timeout, reset, refused: failures the tests count
        rec["error"] = type(e).__name__ + ": " + str(e)
    return rec


def banner(vip, port, n, threads=8):
    with ThreadPoolExecutor(threads) as ex:
        return {"conns": list(ex.map(lambda _: banner_once(vip, port), range(n)))}


def sticky(vip, port, n, *srcs):
    out = {}
    with ThreadPoolExecutor(8) as ex:
        for src in srcs:
            seen = {}
            for b, err, _ in ex.map(lambda _: get_once(vip, port, src=src), range(n)):
                k = err if err else b
                seen[k] = seen.get(k, 0) + 1
            out[src] = seen
    return {"sources": out}


async def held_one(vip, port, hold, rec):
    """One connection of `held`: 3 keep-alive GETs over `hold` seconds; fills rec (open and close
    times in time.time(), backend, error). Any reset, timeout, short or wrong reply is an error."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), TIMEOUT)
        rec["local"] = list(writer.get_extra_info("sockname")[:2])
        for k in range(3):
            if k:
                await asyncio.sleep(hold / 2)
            writer.write(f"GET /?c={rec['i']}.{k} HTTP/1.1\r\nHost: vip\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            lines = head.decode("latin-1").split("\r\n")
            hdr = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in lines[1:] if ":" in h}
            body = await asyncio.wait_for(reader.readexactly(int(hdr.get("content-length", -1))), TIMEOUT)
            b = hdr.get("x-backend")
            if not lines[0].startswith("HTTP/1.1 200") or body != f"backend={b}\n".encode():
                raise ValueError(f"bad reply {lines[0]!r} {body[:40]!r}")
            if rec["backend"] not in (None, b):
                raise ValueError(f"backend changed {rec['backend']} -> {b}")
            rec["backend"] = b
            rec["replies"] = k + 1
    except Exception as e:  # reset, timeout, wrong bytes: all failures the tests count
        rec["error"] = type(e).__name__ + ": " + str(e)
    finally:
        rec["close"] = time.time()
        if writer is not None:
            writer.close()


async def held_async(vip, port, seconds, rate, hold):
    recs, tasks = [], []
    t0 = time.time()
    i = 0
    while time.time() - t0 < seconds:
        rec = {"i": i, "open": time.time(), "close": None, "backend": None, "replies": 0, "error": None}
        recs.append(rec)
        tasks.append(asyncio.ensure_future(held_one(vip, port, hold, rec)))
        i += 1
        await asyncio.sleep(max(0.0, t0 + i / rate - time.time()))
    await asyncio.gather(*tasks)
    return {"connections": recs}


def held(vip, port, seconds, rate, hold):
    return asyncio.run(held_async(vip, port, seconds, rate, hold))


INTERVAL = 0.1   # longlived: one exchange per connection every INTERVAL seconds
STALL = 3.0      # longlived: an echo not complete after this long is a stall (TCP retransmits
                 # a packet lost while a route moves within ~0.2-0.6 s)
UDP_WAIT = 1.0   # longlived: a UDP reply not back after this long is a loss


def ll_message(conn, seq):
    """The deterministic bytes of exchange `seq` on connection `conn` (32..543 bytes)."""
    n = 32 + (conn * 7919 + seq * 104729) % 512
    head = f"{conn}:{seq}:".encode()
    return (head + hashlib.sha256(head).digest() * (n // 32 + 1))[:n]


async def ll_tcp(vip, port, conn, state, rec):
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), STALL)
        rec["local"] = list(writer.get_extra_info("sockname")[:2])
        seq = 0
        await asyncio.sleep((conn % 10) * INTERVAL / 10)  # spread the exchanges over the interval
        while not state["stop"]:
            msg = ll_message(conn, seq)
            t = time.monotonic()
            writer.write(msg)
            rec["sent"] += len(msg)
            try:
                got = await asyncio.wait_for(reader.readexactly(len(msg)), STALL)
            except asyncio.TimeoutError:
                rec["error"], rec["error_t"] = "stall", time.time()
                return
            if got != msg:
                rec["error"], rec["error_t"] = "mismatch", time.time()
                return
            rec["verified"] += len(got)
            rec["exchanges"] += 1
            rec["max_s"] = max(rec["max_s"], round(time.monotonic() - t, 4))
            if seq == 0:
                state["ready"] += 1
            seq += 1
            await asyncio.sleep(max(0.0, t + INTERVAL - time.monotonic()))
        writer.close()
        await writer.wait_closed()
        writer = None
    except (ConnectionResetError, BrokenPipeError) as e:
        rec["error"], rec["error_t"] = "reset", time.time()
        rec["detail"] = type(e).__name__
    except asyncio.IncompleteReadError:
        rec["error"], rec["error_t"] = "closed", time.time()
    except Exception as e:  # refused, unreachable, timeout on connect: all failures
        rec["error"], rec["error_t"] = "other", time.time()
        rec["detail"] = type(e).__name__ + ": " + str(e)
    finally:
        if writer is not None:
            writer.close()


async def ll_udp(vip, port, flow, state, rec):
    loop = asyncio.get_running_loop()
    s = socket.socket(fam(vip), socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((vip, port))
    rec["local"] = list(s.getsockname()[:2])
    seq = 0
    await asyncio.sleep((flow % 10) * INTERVAL / 10)
    try:
        while not state["stop"]:
            t = time.monotonic()
            msg = f"u{flow}.{seq}"
            s.send(msg.encode())
            end = t + UDP_WAIT
            while True:
                try:
                    data = (await asyncio.wait_for(loop.sock_recv(s, 2048), max(0.001, end - time.monotonic()))).decode()
                except (asyncio.TimeoutError, OSError):
                    rec["lost"] += 1
                    break
                name, _, echo = data.partition(":")
                if echo != msg:
                    continue  # a late reply to an earlier request
                rec["replies"] += 1
                if rec["backends"] and rec["backends"][-1] != name:
                    rec["changes"] += 1
                if not rec["backends"] or rec["backends"][-1] != name:
                    rec["backends"].append(name)
                break
            seq += 1
            await asyncio.sleep(max(0.0, t + INTERVAL - time.monotonic()))
    finally:
        s.close()


async def longlived_async(vips, port, n, seconds, ready, udp_port=0, udp_n=0):
    state = {"stop": False, "ready": 0}
    tcp, udp_, tasks = [], [], []
    for k, vip in enumerate(vips):
        for i in range(n):
            rec = {"vip": vip, "local": None, "sent": 0, "verified": 0, "exchanges": 0, "max_s": 0.0,
                   "error": None, "error_t": None}
            tcp.append(rec)
            tasks.append(asyncio.ensure_future(ll_tcp(vip, port, k * n + i, state, rec)))
        for i in range(udp_n):
            rec = {"vip": vip, "local": None, "replies": 0, "lost": 0, "changes": 0, "backends": []}
            udp_.append(rec)
            tasks.append(asyncio.ensure_future(ll_udp(vip, udp_port, k * udp_n + i, state, rec)))
    t0 = time.time()
    while state["ready"] + sum(1 for r in tcp if r["error"]) < len(tcp) and time.time() - t0 < 15:
        await asyncio.sleep(0.02)
    t_ready = time.time()
    with open(ready + ".tmp", "w") as f:
        json.dump({"t": t_ready, "tcp": [r["local"] for r in tcp], "udp": [r["local"] for r in udp_]}, f)
    os.rename(ready + ".tmp", ready)
    await asyncio.sleep(seconds)
    state["stop"] = True
    await asyncio.gather(*tasks)
    return {"t_ready": t_ready, "interval": INTERVAL, "stall_s": STALL, "tcp": tcp, "udp": udp_}


def main():
    mode, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "longlived":
        a = sys.argv[4:]
        udp_args = (int(a[3]), int(a[4])) if len(a) > 4 else ()
        print(json.dumps(asyncio.run(longlived_async(vip.split(","), port, int(a[0]), float(a[1]), a[2], *udp_args))))
        return
    if mode == "sticky":
        print(json.dumps(sticky(vip, port, int(sys.argv[4]), *sys.argv[5:])))
        return
    if mode == "hold" and len(sys.argv) > 6:
        print(json.dumps(hold(vip, port, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])))
        return
    a = [float(x) if "." in x else int(x) for x in sys.argv[4:]]
    fn = {"conns": conns, "stream": stream, "hold": hold, "udp": udp, "blob": blob, "held": held,
          "banner": banner}[mode]
    print(json.dumps(fn(vip, port, *a)))


if __name__ == "__main__":
    main()
